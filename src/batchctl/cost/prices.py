"""Model prices: a built-in table, overridden and extended per profile (`[profiles.NAME.prices]`).

Prices are per 1M tokens in the provider's currency: USD for OpenAI, CNY for DashScope (Alibaba
Cloud Model Studio, mainland China; the international site bills in USD at other prices: override
them in that profile). Both providers charge Batch requests 50 % of the real-time price. Prices
change: every entry carries the date it was taken and the page it was taken from, and the estimate
shows that date. Tiered prices (by prompt length) use the first tier; cached input is billed as input.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from batchctl.errors import ConfigError

OPENAI_SOURCE = "https://platform.openai.com/docs/pricing"
DASHSCOPE_SOURCE = "https://help.aliyun.com/zh/model-studio/models"
BATCH_DISCOUNT = 0.5  # both providers: "50% of the real-time price" (their Batch docs)
TABLE_DATE = "2025-08-01"
CONFIRM_KEY = "confirm_above"  # [profiles.NAME.prices] confirm_above = 20: submit asks above that cost


@dataclass(frozen=True)
class Price:
    """One model's price per 1M tokens; `batch_discount` is the fraction a Batch request saves."""

    model: str
    input: float
    output: float
    currency: str
    batch_discount: float = BATCH_DISCOUNT
    as_of: str = TABLE_DATE
    source: str = ""

    @property
    def batch_factor(self) -> float:
        return 1.0 - self.batch_discount

    def cost(self, input_tokens: int, output_tokens: int, *, batch: bool = True) -> float:
        """What these tokens cost, at Batch prices (default) or real-time ones."""
        amount = (input_tokens * self.input + output_tokens * self.output) / 1_000_000
        return amount * self.batch_factor if batch else amount

    def to_dict(self) -> dict:
        return asdict(self)


def _openai(model: str, input_: float, output: float) -> Price:
    return Price(model, input_, output, "USD", source=OPENAI_SOURCE)


def _dashscope(model: str, input_: float, output: float) -> Price:
    return Price(model, input_, output, "CNY", source=DASHSCOPE_SOURCE)


BUILTIN_PRICES: dict[str, Price] = {
    p.model: p
    for p in (
        _openai("gpt-4o", 2.50, 10.00),
        _openai("gpt-4o-mini", 0.15, 0.60),
        _openai("gpt-4.1", 2.00, 8.00),
        _openai("gpt-4.1-mini", 0.40, 1.60),
        _openai("gpt-4.1-nano", 0.10, 0.40),
        _openai("o3", 2.00, 8.00),
        _openai("o4-mini", 1.10, 4.40),
        _openai("gpt-5", 1.25, 10.00),
        _openai("gpt-5-mini", 0.25, 2.00),
        _openai("gpt-5-nano", 0.05, 0.40),
        _openai("gpt-3.5-turbo", 0.50, 1.50),
        _openai("text-embedding-3-small", 0.02, 0.0),
        _openai("text-embedding-3-large", 0.13, 0.0),
        _openai("text-embedding-ada-002", 0.10, 0.0),
        # DashScope: non-thinking mode, first tier (input up to 128K tokens where tiered)
        _dashscope("qwen-turbo", 0.3, 0.6),
        _dashscope("qwen-plus", 0.8, 2.0),
        _dashscope("qwen-max", 2.4, 9.6),
        _dashscope("qwen-flash", 0.15, 1.5),
        _dashscope("qwen-long", 0.5, 2.0),
        _dashscope("text-embedding-v3", 0.5, 0.0),
        _dashscope("text-embedding-v4", 0.5, 0.0),
    )
}

# Dated snapshots and aliases cost what their family does: gpt-4o-2024-08-06, qwen-plus-2025-01-25,
# qwen-max-latest.
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{4}|latest)$")


@dataclass(frozen=True)
class PriceTable:
    """The prices in force: the built-in table with a profile's overrides on top."""

    prices: Mapping[str, Price]
    confirm_above: float | None = None
    overridden_by: str | None = None  # the profile whose [prices] changed the table

    def lookup(self, model: str | None) -> Price | None:
        """The price of `model` (a dated snapshot falls back to its family), or None if unknown."""
        if not model:
            return None
        name = model.rsplit("/", 1)[-1]
        for candidate in (model, name, name.lower(), _SNAPSHOT.sub("", name.lower())):
            if candidate in self.prices:
                return self.prices[candidate]
        return None

    @property
    def dates(self) -> list[str]:
        return sorted({p.as_of for p in self.prices.values()})


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def parse_overrides(
    table: Mapping[str, object], *, where: str = "[prices]", label: str = "config"
) -> tuple[dict[str, Price], float | None]:
    """Prices from a profile's `prices` table: `MODEL = {input = .., output = .., currency = ..}`
    (any of these, plus `batch_discount`, `as_of`, `source`), and the `confirm_above` threshold.
    A model in the built-in table keeps the fields an override leaves out."""
    prices: dict[str, Price] = {}
    confirm = None
    for model, entry in table.items():
        if model == CONFIRM_KEY:
            if not _number(entry):
                raise ConfigError(f"{where}: {CONFIRM_KEY} must be a number, not {entry!r}")
            confirm = float(entry)  # type: ignore[arg-type]
            continue
        hint = f'Write it as "{model}" = {{ input = 0.5, output = 1.5, currency = "USD" }} (per 1M tokens).'
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where}: the price of {model!r} must be a table", hint=hint)
        unknown = sorted(set(entry) - {"input", "output", "currency", "batch_discount", "as_of", "source"})
        if unknown:
            raise ConfigError(f"{where}: unknown keys for {model!r}: {', '.join(unknown)}", hint=hint)
        base = BUILTIN_PRICES.get(model)
        for key in ("input", "output"):
            if key in entry and not _number(entry[key]) or base is None and key not in entry:
                raise ConfigError(f"{where}: {model!r} needs {key} as a number (per 1M tokens)", hint=hint)
        discount = entry.get("batch_discount", BATCH_DISCOUNT)
        if not _number(discount) or discount > 1:  # type: ignore[operator]
            raise ConfigError(f"{where}: batch_discount of {model!r} must be between 0 and 1 (0.5 is 50 %)")
        fields = {k: entry[k] for k in ("input", "output", "currency", "batch_discount", "as_of", "source") if k in entry}
        fields.setdefault("as_of", label)  # shown as "prices of profile NAME"
        fields.setdefault("source", where)
        if base is not None:
            prices[model] = replace(base, **fields)  # type: ignore[arg-type]
        else:
            fields.setdefault("currency", "USD")
            prices[model] = Price(model=model, **fields)  # type: ignore[arg-type]
    return prices, confirm


def price_table(profile: str | None = None, *, config_file: Path | None = None) -> PriceTable:
    """The built-in prices with `profile`'s `[profiles.NAME.prices]` table applied (reads the config)."""
    if not profile:
        return PriceTable(BUILTIN_PRICES)
    from batchctl.config import load_config

    config = load_config(config_file)
    chosen = config.profiles.get(profile)
    table = getattr(chosen, "prices", None) if chosen is not None else None
    if not table:
        return PriceTable(BUILTIN_PRICES)
    where = f"[profiles.{profile}.prices] in {config.path}"
    overrides, confirm = parse_overrides(table, where=where, label=f"profile {profile}")
    return PriceTable({**BUILTIN_PRICES, **overrides}, confirm_above=confirm, overridden_by=profile)


def format_money(amount: float | None, currency: str) -> str:
    """`$1.23`, `¥0.0041`, `12.50 EUR`: enough digits to tell small amounts apart."""
    if amount is None:
        return "unknown"
    if 0 < amount < 0.0001:
        return "< " + format_money(0.0001, currency)
    if amount >= 1 or amount == 0:
        number = f"{amount:,.2f}"
    else:  # three significant digits, at least two decimals: 0.70, 0.0123, 0.000456
        number = f"{amount:.{2 - math.floor(math.log10(amount))}f}".rstrip("0")
        number += "0" * max(0, 2 - len(number.split(".")[1]))
    symbol = {"USD": "$", "CNY": "¥"}.get(currency)
    return f"{symbol}{number}" if symbol else f"{number} {currency}"
