"""Before a batch: requests, input tokens, the output bound and the cost, in one streamed pass, offline.

`estimate_file` reads a Batch input file line by line (memory flat), counts each request's input
tokens with `tokens.count_tokens` (exact when a local tokenizer is installed, else the heuristic) plus
the chat format's overhead -- on a big file a sample of the requests, the rest scaled by their text's
size (`COUNT_FIRST`, `SAMPLE_SIZE`) -- and adds up `max_tokens` / `max_completion_tokens` / `max_output_tokens`
(times `n`) as the output's upper bound; a request without one leaves the bound "unbounded".
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from batchctl.cost.prices import Price, PriceTable, format_money
from batchctl.cost.tokens import HEURISTIC, REPLY_OVERHEAD, count_tokens, message_overhead
from batchctl.errors import BatchctlError
from batchctl.validation.checks import utf8_size
from batchctl.validation.jsonl import iter_request_lines

OUTPUT_LIMIT_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")
DEFAULT_CONFIRM_ABOVE = 10.0  # submit asks on a terminal above this batch cost (the price's currency)


def _text(value: object) -> str:
    """The text in a message content, input or prompt (strings, content parts, input items)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(t for t in (_text(v) for v in value) if t)
    if isinstance(value, dict):
        return _text(value.get("text")) + _text(value.get("content"))
    return ""


def _token_ids(value: object) -> int | None:
    """Tokens given as ids (embeddings/completions input): [1, 2, 3] or [[1, 2], [3]]; else None."""
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return len(value)
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        counts = [_token_ids(v) for v in value]
        return None if None in counts else sum(counts)  # type: ignore[arg-type]
    return None


def _request_texts(body: dict, url: str | None) -> tuple[list[str], int] | int:
    """(the texts of one request body whose tokens count, the messages or items the chat format wraps
    for `message_overhead`), or an int when the input is given as token ids."""
    messages = body.get("messages")
    if isinstance(messages, list):  # chat completions
        return [_text(m.get("content")) + _text(m.get("name")) for m in messages if isinstance(m, dict)], len(messages)
    if url == "/v1/responses" or "input" in body and "instructions" in body:
        value, extra = body.get("input"), _text(body.get("instructions"))
        items = len(value) if isinstance(value, list) else 1
        return [_text(value) + ("\n" + extra if extra else "")], items + (1 if extra else 0)
    value = body.get("input", body.get("prompt"))
    ids = _token_ids(value)
    if ids is not None:
        return ids
    return [_text(value)], 0


@dataclass
class ModelEstimate:
    """The requests of one model in the file, and what they cost if its price is known."""

    model: str | None
    requests: int = 0
    input_tokens: int = 0
    output_tokens_max: int = 0  # over the bounded requests
    unbounded_requests: int = 0
    price: Price | None = None
    # [tokens of the requests sampled past COUNT_FIRST, their texts' UTF-8 bytes, bytes of the texts not
    # counted]: what `EstimateTally` scales the requests not counted by
    sample: list[float] = field(default_factory=lambda: [0.0, 0.0, 0], repr=False, compare=False)

    # The chat format's overhead (`tokens.message_overhead`), added up at the end: messages in all, and
    # requests with any (each primes one reply)
    messages: int = field(default=0, repr=False, compare=False)
    wrapped: int = field(default=0, repr=False, compare=False)

    @property
    def per_message(self) -> int:
        return message_overhead(self.model, 1) - REPLY_OVERHEAD

    @property
    def output_bound(self) -> int | None:
        return None if self.unbounded_requests else self.output_tokens_max

    def costs(self) -> dict[str, float | None]:
        """Batch and real-time cost of the input, and of input plus the output bound (None: unbounded)."""
        p = self.price
        if p is None:
            return {}
        bound = self.output_bound
        return {
            "batch_input": p.cost(self.input_tokens, 0),
            "batch_max": None if bound is None else p.cost(self.input_tokens, bound),
            "realtime_input": p.cost(self.input_tokens, 0, batch=False),
            "realtime_max": None if bound is None else p.cost(self.input_tokens, bound, batch=False),
        }


@dataclass
class Estimate:
    """What a Batch input file will cost, before it is sent."""

    path: str
    requests: int = 0
    input_tokens: int = 0
    output_tokens_max: int = 0
    unbounded_requests: int = 0
    counted_requests: int = 0  # requests whose tokens were counted; the others' were scaled (SAMPLE_SIZE)
    methods: set[str] = field(default_factory=set)
    by_model: dict[str | None, ModelEstimate] = field(default_factory=dict)
    confirm_above: float | None = DEFAULT_CONFIRM_ABOVE  # the profile's threshold for submit's question

    @property
    def method(self) -> str:
        """How the input was counted: one method's name, or "mixed: ..." when lines differ."""
        if not self.methods:
            return HEURISTIC
        return next(iter(self.methods)) if len(self.methods) == 1 else "mixed: " + ", ".join(sorted(self.methods))

    @property
    def output_bound(self) -> int | None:
        return None if self.unbounded_requests else self.output_tokens_max

    @property
    def unknown_models(self) -> list[str]:
        return sorted(str(m) for m, e in self.by_model.items() if e.price is None)

    @property
    def currency(self) -> str | None:
        """The one currency of every price involved; None if a price is unknown or currencies differ."""
        currencies = {e.price.currency for e in self.by_model.values() if e.price is not None}
        return currencies.pop() if len(currencies) == 1 and not self.unknown_models else None

    def cost(self, key: str) -> float | None:
        """A total over the models: batch_input, batch_max, realtime_input or realtime_max."""
        if self.currency is None or not self.by_model:
            return None
        values = [e.costs()[key] for e in self.by_model.values()]
        return None if None in values else sum(values)  # type: ignore[arg-type]

    def to_dict(self) -> dict:
        """The `estimate` of `validate --json`."""
        prices = {str(m): e.price.to_dict() for m, e in self.by_model.items() if e.price is not None}
        return {
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "input_tokens_method": self.method,
            "counted_requests": self.counted_requests,  # < requests: the others' tokens were scaled
            "output_tokens_max": self.output_bound,  # null: some requests set no limit
            "unbounded_requests": self.unbounded_requests,
            "models": sorted(str(m) for m in self.by_model),
            "unknown_models": self.unknown_models,
            "currency": self.currency,
            "cost": {
                key: self.cost(key) for key in ("batch_input", "batch_max", "realtime_input", "realtime_max")
            },
            "prices": prices,
            "prices_as_of": sorted({p["as_of"] for p in prices.values()}),
        }


# Counting a request's tokens costs far more than validating it (the heuristic looks at each character),
# so a big file is counted in part: the first COUNT_FIRST requests with text all, then a uniform random
# sample of the rest, drawn from a fixed seed (the same file gives the same estimate; lines repeating in
# a pattern are not all skipped as a fixed step would skip them), at the rate that makes it about
# SAMPLE_SIZE requests for the file's size (its requests estimated from its first MiB). A request not
# counted is given its text's UTF-8 size times the sample's ratio of tokens to bytes, per model; a
# uniform sample stands for the whole file, a file that changes along the way included.
# docs/cost.md gives the error this adds.
COUNT_FIRST = 200
SAMPLE_SIZE = 800
SAMPLE_SEED = 1729


def _sample_rate(path: str, requests_so_far: int) -> float:
    """The rate that draws about SAMPLE_SIZE requests from what is left of the file at `path`."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(1 << 20)
    except OSError:
        return 0.1
    lines = max(head.count(b"\n"), 1) * size / max(len(head), 1)  # the file's lines, from its first MiB
    return min(1.0, SAMPLE_SIZE / max(lines - requests_so_far, 1.0))


class Counter(Protocol):
    """Counts request texts for an `EstimateTally`, somewhere else (`validation.second_core`)."""

    def count(self, model: str | None, texts: list, sampled: bool) -> bool: ...  # False: not taken


def count_texts(model: str | None, texts: list) -> tuple[int, str]:
    """(tokens, method) of one request's texts: strings, or JSON string literals (the fast lane's)."""
    from batchctl.validation.fastlane import decode_string

    tokens, method = 0, HEURISTIC
    for text in texts:
        n, method = count_tokens(text if type(text) is str else decode_string(text), model)
        tokens += n
    return tokens, method


class EstimateTally:
    """Adds up an estimate one request line at a time: `estimate_file`'s loop, and `validate_file`'s
    `tally` (so `validate` parses each line once). The totals, the scaled tokens and the prices come
    at the end (`priced`); nothing may be added after it."""

    def __init__(self, path: str | os.PathLike[str], *, endpoint: str | None = None, model_override: str | None = None):
        self.estimate = Estimate(path=str(path))
        self.endpoint, self.model_override = endpoint, model_override
        self._texts = 0  # requests with text so far: the next one's index in the sampling
        self._draw: Callable[[], float] | None = None  # the sample's random numbers, once sampling starts
        self._rate = 1.0  # the sample's, set when it starts
        self._finished = False
        self._elsewhere: Counter | None = None  # counts the texts instead of this process (`count_elsewhere`)

    def add(self, obj: dict, body: dict) -> None:
        """Count one request line (`obj`, its `body` already known to be an object)."""
        model = body.get("model") if isinstance(body.get("model"), str) else None
        url = obj.get("url") if isinstance(obj.get("url"), str) else self.endpoint
        texts = _request_texts(body, url)
        limits, n = tuple(map(body.get, OUTPUT_LIMIT_FIELDS)), body.get("n")
        if url is None and "embedding" in str(body.get("model", "")):  # no url anywhere: the model says
            url = "/v1/embeddings"
        if isinstance(texts, int):  # token ids: counted exactly, nothing to scale
            self.estimate.methods.add("exact (token ids)")
            self.add_texts(model, url, [], 0, 0, limits, n, tokens=texts)
        else:
            strings, items = texts
            self.add_texts(model, url, strings, utf8_size(strings), items, limits, n)

    def add_texts(
        self,
        model: str | None,
        url: str | None,
        texts: list,
        size: int,
        items: int,
        limits: tuple[object, ...],
        n: object,
        tokens: int = 0,
    ) -> None:
        """Count one request: its `texts` (strings, or JSON string literals as bytes-like, decoded only
        if counted: `validate_file`'s fast lane), their UTF-8 `size`, the `items` (messages) the chat
        format wraps, its `OUTPUT_LIMIT_FIELDS` values and `n` (absent ones as anything but an int), and
        `tokens` given as ids. Called for every line of a big file: kept to one call."""
        model = self.model_override or model
        per_model = self.estimate.by_model.get(model) or self._new_model(model)
        if not size:  # no text (or token ids, given): nothing to count or scale
            self.estimate.counted_requests += 1
        else:
            index = self._texts
            self._texts = index + 1
            sample = per_model.sample
            if index < COUNT_FIRST:
                tokens += self._count(model, texts, False)
            elif (self._draw or self._start_sampling())() < self._rate or not sample[1]:
                counted = self._count(model, texts, True)
                tokens += counted
                sample[0] += counted
                sample[1] += size
            else:  # scaled in `_finish`
                sample[2] += size
        per_model.requests += 1
        per_model.input_tokens += tokens
        if items:
            per_model.messages += items
            per_model.wrapped += 1
        if url == "/v1/embeddings":
            return  # embeddings produce no output tokens
        for value in limits:  # the first output limit set bounds the output, times n
            if type(value) is int and value >= 0:
                per_model.output_tokens_max += value * (n if type(n) is int and n > 1 else 1)
                return
        per_model.unbounded_requests += 1

    def _start_sampling(self) -> Callable[[], float]:
        import random

        self._draw = random.Random(SAMPLE_SEED).random
        self._rate = _sample_rate(self.estimate.path, self._texts)
        return self._draw

    def _count(self, model: str | None, texts: list, sampled: bool) -> int:
        """Tokens of one request's texts (strings, or JSON literals from the fast lane), counted here; 0
        when they are counted elsewhere (their totals come back through `add_counted`)."""
        self.estimate.counted_requests += 1
        if self._elsewhere is not None and self._elsewhere.count(model, texts, sampled):
            return 0
        tokens, method = count_texts(model, texts)
        self.estimate.methods.add(method)
        return tokens

    def count_elsewhere(self, counter: Counter | None) -> None:
        """Have `counter` count the texts from now on (`validation.second_core`: another process), or
        this process again (None)."""
        self._elsewhere = counter

    def add_counted(self, counted: dict[str | None, tuple[int, int]], methods: set[str]) -> None:
        """Add what was counted elsewhere: each model's (tokens of the first COUNT_FIRST requests, tokens
        of the sampled ones), and the methods used."""
        for model, (first, sampled) in counted.items():
            per_model = self.estimate.by_model[model]
            per_model.input_tokens += first + sampled
            per_model.sample[0] += sampled
        self.estimate.methods |= methods

    def reset(self) -> None:
        """Start again from nothing (a pass over the file that is run again)."""
        self.__init__(self.estimate.path, endpoint=self.endpoint, model_override=self.model_override)

    def _new_model(self, model: str | None) -> ModelEstimate:
        self.estimate.by_model[model] = ModelEstimate(model)
        return self.estimate.by_model[model]

    def _finish(self) -> None:
        """Scale the tokens of the requests that were not counted and add up the models (once)."""
        if self._finished:
            return
        self._finished = True
        estimate = self.estimate
        for per_model in estimate.by_model.values():
            tokens, size, uncounted = per_model.sample
            if uncounted:
                per_model.input_tokens += round(uncounted * tokens / size)
            per_model.input_tokens += per_model.messages * per_model.per_message + per_model.wrapped * REPLY_OVERHEAD
            estimate.requests += per_model.requests
            estimate.input_tokens += per_model.input_tokens
            estimate.output_tokens_max += per_model.output_tokens_max
            estimate.unbounded_requests += per_model.unbounded_requests

    def priced(self, prices: PriceTable) -> Estimate:
        """The estimate, with each model's price from `prices` and the profile's confirm threshold."""
        self._finish()
        estimate = self.estimate
        estimate.confirm_above = prices.confirm_above if prices.confirm_above is not None else DEFAULT_CONFIRM_ABOVE
        for model, per_model in estimate.by_model.items():
            per_model.price = prices.lookup(model)
        return estimate

    def for_profile(self, profile: str | None) -> Estimate:
        """`priced` with the built-in prices and `profile`'s overrides (what validate shows)."""
        from batchctl.cost.prices import price_table

        return self.priced(price_table(profile))


def estimate_file(
    path: str | os.PathLike[str], *, endpoint: str | None = None, model_override: str | None = None, prices: PriceTable
) -> Estimate:
    """Estimate a Batch input file in one streamed pass; lines that are not requests are skipped."""
    tally = EstimateTally(path, endpoint=endpoint, model_override=model_override)
    for _, obj in iter_request_lines(path):
        body = obj.get("body")
        if isinstance(body, dict):
            tally.add(obj, body)
    return tally.priced(prices)


def estimate_for_profile(
    path: str | os.PathLike[str], *, endpoint: str | None = None, model_override: str | None = None, profile: str | None = None
) -> Estimate:
    """`estimate_file` with the built-in prices and `profile`'s overrides (what validate shows)."""
    from batchctl.cost.prices import price_table

    return estimate_file(path, endpoint=endpoint, model_override=model_override, prices=price_table(profile))


def check_before_submit(
    path: str | os.PathLike[str],
    *,
    endpoint: str | None = None,
    model_override: str | None = None,
    profile: str | None = None,
    max_cost: float | None = None,
    confirm: Callable[[str], bool] | None = None,
    tally: EstimateTally | None = None,
) -> Estimate:
    """`submit`'s cost gate, before anything is uploaded: the estimate (from `tally`, filled in the
    validation pass, else a pass of its own); raises the `--max-cost` refusal, and asks
    `confirm(question)` (None: never ask, e.g. --yes or no terminal) above the profile's threshold,
    raising when the answer is no."""
    if tally is not None:
        estimate = tally.for_profile(profile)
    else:
        estimate = estimate_for_profile(path, endpoint=endpoint, model_override=model_override, profile=profile)
    error = check_max_cost(estimate, max_cost)
    if error is not None:
        raise error
    question = confirmation_question(estimate, estimate.confirm_above)
    if question is not None and confirm is not None and not confirm(question):
        raise BatchctlError("not submitted: the estimated cost was not confirmed; nothing was uploaded",
                            "Check the estimate with batchctl validate FILE; --yes skips the question.")  # fmt: skip
    return estimate


def check_max_cost(estimate: Estimate, amount: float | None) -> BatchctlError | None:
    """The error `submit --max-cost AMOUNT` stops with before uploading, or None when within it."""
    if amount is None:
        return None
    if estimate.unknown_models:
        return BatchctlError(
            f"cannot check --max-cost: no price for model {', '.join(estimate.unknown_models)}",
            f"Add its price: batchctl profile price set {estimate.unknown_models[0]} --input N --output N --currency USD "
            "(per 1M tokens; docs/cost.md), or drop --max-cost.",
        )
    currency = estimate.currency or ""
    if estimate.output_bound is None:
        return BatchctlError(
            f"cannot check --max-cost: {estimate.unbounded_requests} of {estimate.requests} requests set no "
            "max_tokens, so the output cost has no upper bound",
            "Set max_tokens (max_completion_tokens, max_output_tokens on /v1/responses) in every request, or drop --max-cost.",
        )
    bound = estimate.cost("batch_max") or 0.0
    if bound > amount:
        return BatchctlError(
            f"the batch may cost up to {format_money(bound, currency)}, more than --max-cost "
            f"{format_money(amount, currency)}; nothing was uploaded",
            "Lower max_tokens, split the file, or raise --max-cost (batchctl validate FILE shows the estimate).",
        )
    return None


def confirmation_question(estimate: Estimate, threshold: float | None = DEFAULT_CONFIRM_ABOVE) -> str | None:
    """The question `submit` asks on a terminal when the estimate exceeds `threshold`, or None.

    An unbounded output counts the input's cost alone; unknown prices never ask (nothing to compare).
    """
    if threshold is None or estimate.currency is None:
        return None
    bound = estimate.cost("batch_max")
    amount = bound if bound is not None else estimate.cost("batch_input")
    if amount is None or amount <= threshold:
        return None
    money = format_money(amount, estimate.currency)
    what = f"up to {money}" if bound is not None else f"at least {money} (output unbounded)"
    return f"This batch may cost {what} at batch prices. Submit it?"


def _count(n: int) -> str:
    return f"{n:,}"


def _at_most(money: str) -> str:
    """"≤ $0.02", or "< $0.0001" for an amount too small to show (format_money says "< $0.0001")."""
    return money if money.startswith("< ") else f"≤ {money}"


def _at_least(money: str) -> str:
    """"≥ $0.02", or "from < $0.0001" for an amount too small to show."""
    return f"from {money}" if money.startswith("< ") else f"≥ {money}"


def estimate_line(estimate: Estimate) -> str:
    """`12 requests, ~3,400 input tokens (heuristic), output up to 6,000 tokens; batch ≤ $0.02 (real time
    $0.04; prices of 2025-08-01)`: what the file will cost, in one line."""
    from batchctl.cost.prices import format_money

    noun = "request" if estimate.requests == 1 else "requests"
    method = estimate.method
    if estimate.counted_requests < estimate.requests:
        method += f"; {estimate.counted_requests:,} requests counted, the rest scaled by size"
    parts = [f"{estimate.requests:,} {noun}", f"~{_count(estimate.input_tokens)} input tokens ({method})"]
    bound = estimate.output_bound
    if bound is None:
        n = estimate.unbounded_requests
        parts.append(f"output unbounded ({n:,} {'request sets' if n == 1 else 'requests set'} no max_tokens)")
    elif bound == 0:
        parts.append("no output tokens")
    else:
        parts.append(f"output up to {_count(bound)} tokens")
    text = ", ".join(parts)
    currency = estimate.currency
    if currency is None:
        unknown = estimate.unknown_models
        return text + (f"; no price for {', '.join(unknown)}: tokens only" if unknown else "")
    if bound is None:
        batch = f"batch {_at_least(format_money(estimate.cost('batch_input'), currency))} for the input"
        realtime = format_money(estimate.cost("realtime_input"), currency)
    else:
        batch = f"batch {_at_most(format_money(estimate.cost('batch_max'), currency))}"
        realtime = format_money(estimate.cost("realtime_max"), currency)
    dates = ", ".join(estimate.to_dict()["prices_as_of"])
    return f"{text}; {batch} (real time {realtime}; prices of {dates})"
