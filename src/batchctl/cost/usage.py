"""After a batch: the tokens it used and what they cost, from the Batch object or its output lines.

`summarize_results` streams result files line by line (a 1 GB output summarises in constant memory:
only the counters and one entry per model are kept). Chat and completions report `prompt_tokens`,
`completion_tokens`, `total_tokens` (with `prompt_tokens_details.cached_tokens` and
`completion_tokens_details.reasoning_tokens`); `/v1/responses` reports `input_tokens`/`output_tokens`
(with `input_tokens_details` / `output_tokens_details`); embeddings `prompt_tokens` and `total_tokens`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchctl.cost.prices import Price, PriceTable
from batchctl.results import iter_result_lines, parse_result, result_failed

TOKEN_FIELDS = ("input_tokens", "output_tokens", "total_tokens", "cached_tokens", "reasoning_tokens")


def _int(value: object) -> int:
    # type() rather than isinstance: a bool is not a count. Called for each field of each result line.
    return value if type(value) is int and value > 0 else 0  # type: ignore[return-value,operator]


def _detail(usage: dict, name: str, key: str) -> int:
    details = usage.get(name)
    return _int(details.get(key)) if type(details) is dict else 0


def tokens_of_usage(usage: dict) -> dict[str, int]:
    """A `usage` object of either shape as input/output/total/cached/reasoning tokens."""
    get = usage.get
    input_ = _int(get("prompt_tokens")) or _int(get("input_tokens"))
    output = _int(get("completion_tokens")) or _int(get("output_tokens"))
    cached = _detail(usage, "prompt_tokens_details", "cached_tokens") or _detail(usage, "input_tokens_details", "cached_tokens")
    reasoning = _detail(usage, "completion_tokens_details", "reasoning_tokens") or _detail(
        usage, "output_tokens_details", "reasoning_tokens"
    )
    return {
        "input_tokens": input_, "output_tokens": output, "total_tokens": _int(usage.get("total_tokens")) or input_ + output,
        "cached_tokens": cached, "reasoning_tokens": reasoning,
    }  # fmt: skip


@dataclass
class ModelUsage:
    model: str | None
    requests: int = 0  # lines with a usage object
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def add(self, tokens: dict[str, int], requests: int = 1) -> None:
        self.requests += requests
        self.input_tokens += tokens["input_tokens"]
        self.output_tokens += tokens["output_tokens"]
        self.total_tokens += tokens["total_tokens"]
        self.cached_tokens += tokens["cached_tokens"]
        self.reasoning_tokens += tokens["reasoning_tokens"]


@dataclass
class Usage:
    """Token totals of a batch (or several: a job), per model, and their cost at batch prices."""

    source: str = "output lines"  # or "batch object"
    lines: int = 0
    succeeded: int = 0
    failed: int = 0
    by_model: dict[str | None, ModelUsage] = field(default_factory=dict)
    prices: dict[str | None, Price | None] = field(default_factory=dict)

    def add_tokens(self, model: str | None, tokens: dict[str, int], requests: int = 1) -> None:
        entry = self.by_model.get(model)
        if entry is None:
            entry = self.by_model[model] = ModelUsage(model)
        entry.add(tokens, requests)

    def add_line(self, result: dict[str, Any] | None) -> None:
        """Count one result line: success or failure, and its response's usage."""
        response = result.get("response") if result is not None else None
        body = response.get("body") if isinstance(response, dict) else None
        if isinstance(body, dict):
            self.count(result is None or result_failed(result), body.get("model"), body.get("usage"))
        else:
            self.count(result is None or result_failed(result), None, None)

    def count(self, failed: bool, model: object, usage: object) -> None:
        """Count a result line from the parts `add_line` reads: failed or not, its response body's
        `model` and `usage` (None when there is none)."""
        self.lines += 1
        if failed:
            self.failed += 1
        else:
            self.succeeded += 1
        if type(usage) is dict:
            self.add_tokens(model if type(model) is str else None, tokens_of_usage(usage))

    def merge(self, other: Usage) -> None:
        """Add another batch's usage (the batches of one job)."""
        if not self.lines and not self.by_model:
            self.source = other.source
        elif other.source != self.source:
            self.source = "mixed"
        self.lines += other.lines
        self.succeeded += other.succeeded
        self.failed += other.failed
        for model, entry in other.by_model.items():
            self.add_tokens(model, {k: getattr(entry, k) for k in TOKEN_FIELDS}, entry.requests)

    def total(self, key: str) -> int:
        return sum(getattr(e, key) for e in self.by_model.values())

    def price_with(self, table: PriceTable) -> Usage:
        """Look up each model's price (a snapshot name falls back to its family); returns self."""
        self.prices = {model: table.lookup(model) for model in self.by_model}
        return self

    @property
    def unknown_models(self) -> list[str]:
        return sorted(str(m) for m, p in self.prices.items() if p is None)

    @property
    def currency(self) -> str | None:
        currencies = {p.currency for p in self.prices.values() if p is not None}
        return currencies.pop() if len(currencies) == 1 and not self.unknown_models and self.prices else None

    def cost(self, *, batch: bool = True) -> float | None:
        """What the tokens cost at batch (or real-time) prices; None if a price is unknown."""
        if self.currency is None:
            return None
        return sum(
            self.prices[m].cost(e.input_tokens, e.output_tokens, batch=batch)  # type: ignore[union-attr]
            for m, e in self.by_model.items()
        )

    def to_dict(self) -> dict:
        batch_cost, realtime = self.cost(), self.cost(batch=False)
        return {
            "source": self.source,
            "lines": self.lines,
            "succeeded": self.succeeded,
            "failed": self.failed,
            **{key: self.total(key) for key in TOKEN_FIELDS},
            "models": {
                str(m): {k: getattr(e, k) for k in ("requests", *TOKEN_FIELDS)} for m, e in self.by_model.items()
            },
            "unknown_models": self.unknown_models,
            "currency": self.currency,
            "cost": batch_cost,
            "realtime_cost": realtime,
            "saving": None if batch_cost is None or realtime is None else realtime - batch_cost,
            "prices": {str(m): p.to_dict() for m, p in self.prices.items() if p is not None},
        }


def summarize_lines(lines: Iterable[bytes], usage: Usage | None = None) -> Usage:
    """Add result lines (raw bytes, one JSON object each) to `usage` (a new one by default)."""
    usage = usage if usage is not None else Usage()
    for line in lines:
        usage.add_line(parse_result(line))
    return usage


def summarize_results(paths: Sequence[str | os.PathLike[str]]) -> Usage:
    """Token totals of result files (output files; error files add failures), streamed."""
    return summarize_lines(iter_result_lines([Path(p) for p in paths]))


def usage_from_batch(batch: Any) -> Usage | None:
    """The Batch object's own `usage` (OpenAI reports one), or None when the provider gives none."""
    raw = getattr(batch, "usage", None)
    if raw is None:
        return None
    data = raw.model_dump() if hasattr(raw, "model_dump") else dict(raw)
    tokens = tokens_of_usage(data)
    if not tokens["total_tokens"]:
        return None
    counts = getattr(batch, "request_counts", None)
    usage = Usage(source="batch object")
    usage.succeeded = _int(getattr(counts, "completed", 0))
    usage.failed = _int(getattr(counts, "failed", 0))
    usage.lines = usage.succeeded + usage.failed
    usage.add_tokens(getattr(batch, "model", None), tokens, usage.succeeded)
    return usage
