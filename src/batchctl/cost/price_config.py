"""`batchctl profile price set/list/remove`: a profile's `[profiles.NAME.prices]` table in the config.

Use cases returning data: `set_price` and `remove_price` rewrite the config file the way `save_config`
always does (atomic, 0600); `list_prices` is the built-in table with the profile's overrides on top,
each entry with its date, source and whether the profile changed it.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any

from batchctl.cost.prices import BUILTIN_PRICES, CONFIRM_KEY, Price, PriceTable, parse_overrides, price_table
from batchctl.errors import BatchctlError

_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass
class PriceList:
    """The prices in force for a profile: each entry, and which ones the profile overrides."""

    profile: str
    table: PriceTable
    overridden: frozenset[str]

    def entries(self) -> list[dict[str, Any]]:
        return [
            {**price.to_dict(), "overridden": model in self.overridden}
            for model, price in sorted(self.table.prices.items())
        ]

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "confirm_above": self.table.confirm_above, "prices": self.entries()}


def _configured(profile: str):
    """The config and the profile as written in it (a built-in profile has no table to write to)."""
    from batchctl.config import load_config

    config = load_config()
    if profile not in config.profiles:
        config.get(profile)  # an unknown name: the ConfigError listing the known ones
        raise BatchctlError(
            f"profile {profile!r} is built in and has no entry in {config.path} to keep prices in",
            hint=f"Add it to the config first (batchctl profile add {profile} --preset {profile}), or use -p NAME.",
        )
    return config, config.profiles[profile]


def set_price(
    profile: str,
    model: str,
    *,
    input: float | None = None,
    output: float | None = None,
    currency: str | None = None,
    batch_discount: float | None = None,
    as_of: str | None = None,
) -> Price:
    """Add or change `model`'s price in `profile` (per 1M tokens); fields left out keep the earlier
    override's, else the built-in price's. Returns the price in force afterwards."""
    from batchctl.config import save_config

    if currency is not None and not _CURRENCY.match(currency.upper()):
        raise BatchctlError(f"{currency!r} is not a currency code", hint="Use a three-letter code: USD, CNY, EUR...")
    config, chosen = _configured(profile)
    earlier = chosen.prices.get(model)
    entry: dict[str, Any] = dict(earlier) if isinstance(earlier, dict) else {}
    given = {"input": input, "output": output, "currency": currency and currency.upper(), "batch_discount": batch_discount}
    builtin = BUILTIN_PRICES.get(model)
    kept_in = entry.get("currency") or (builtin.currency if builtin is not None else None)
    if given["currency"] and kept_in and given["currency"] != str(kept_in).upper():
        # A price kept from before is in its own currency: relabelled, ¥2 would read $2.
        missing = [f"--{key}" for key in ("input", "output") if given[key] is None]
        if missing:
            raise BatchctlError(
                f"{model}'s {' and '.join(m[2:] for m in missing)} price is in {kept_in}: --currency {given['currency']} "
                f"needs {' and '.join(missing)} too",
                hint=f"Give both: batchctl profile price set {model} --input N --output N --currency {given['currency']}",
            )
    entry.update({key: value for key, value in given.items() if value is not None})
    entry["as_of"] = as_of or datetime.date.today().isoformat()
    if model not in BUILTIN_PRICES:
        missing = [f"--{key}" for key in ("input", "output") if key not in entry]
        if missing:
            raise BatchctlError(f"{model!r} has no built-in price: give {' and '.join(missing)} (per 1M tokens)")
    where = f"[profiles.{profile}.prices] in {config.path}"
    parsed, _ = parse_overrides({model: entry}, where=where, label=f"profile {profile}")  # checks the entry
    chosen.prices = {**chosen.prices, model: entry}
    save_config(config)
    return parsed[model]


def remove_price(profile: str, model: str) -> Price | None:
    """Drop `profile`'s price for `model`; returns the price in force afterwards (the built-in one, or None)."""
    from batchctl.config import save_config

    config, chosen = _configured(profile)
    if model == CONFIRM_KEY or model not in chosen.prices:
        raise BatchctlError(
            f"profile {profile!r} sets no price for {model!r}", hint=f"See them with: batchctl -p {profile} profile price list"
        )
    chosen.prices = {k: v for k, v in chosen.prices.items() if k != model}
    save_config(config)
    return BUILTIN_PRICES.get(model)


def list_prices(profile: str) -> PriceList:
    """The built-in prices with `profile`'s overrides; an unknown profile is an error, a built-in one has none."""
    from batchctl.config import load_config

    config = load_config()
    config.get(profile)
    table = price_table(profile, config_file=config.path)
    chosen = config.profiles.get(profile)
    overridden = frozenset(k for k in (chosen.prices if chosen else {}) if k != CONFIRM_KEY)
    return PriceList(profile, table, overridden)
