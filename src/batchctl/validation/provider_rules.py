"""Per-provider line checks beyond what every provider shares (issue #18): the parameters a provider
refuses (moonshot), inputs summed over an embeddings batch (openai: 50,000), a lower request limit for
one endpoint (zhipu embeddings: 10,000), and what to write instead of an endpoint the provider does not
serve (zhipu: `/v4/chat/completions`, not `/v1/...`).

`checks.py` asks `rules_for(spec)` once per file; a provider with none of these rules gets None, and
its lines cost nothing more. Everything read from the spec, so no check asks which provider it is.
"""

from __future__ import annotations

import json
import re

from batchctl.provider_spec import ProviderSpec
from batchctl.validation.report import INVALID_VALUE, TOO_MANY_REQUESTS, Problem

REFUSED_PARAMETER = "refused_parameter"
TOO_MANY_EMBEDDING_INPUTS = "too_many_embedding_inputs"

_VERSION_PREFIX = re.compile(r"/v[0-9]+(?=/)")


def endpoint_hint(spec: ProviderSpec, url: object) -> str:
    """"; use "/v4/chat/completions"" when `url` is a supported endpoint under another version prefix."""
    if type(url) is not str:
        return ""
    tail = _VERSION_PREFIX.sub("", url, count=1)
    for endpoint in spec.endpoints:
        if endpoint != url and _VERSION_PREFIX.sub("", endpoint, count=1) == tail:
            return f"; use {json.dumps(endpoint)} instead ({spec.name}'s path for it)"
    return ""


def _embedding_inputs(value: object) -> int:
    """How many inputs one embeddings `input` holds: a string or a token array is one, an array of them many."""
    if isinstance(value, list):
        if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return 1  # one input given as token ids
        return len(value)
    return 1 if value is not None else 0


class ProviderRules:
    """The per-line rules of one provider, and what they found in one file."""

    def __init__(self, spec: ProviderSpec) -> None:
        self.spec = spec
        self.refused = frozenset(spec.refused_params)
        self.embedding_endpoints = frozenset(e for e in spec.endpoints if e.endswith("/embeddings"))
        self.max_inputs = spec.max_embedding_inputs
        self.embedding_inputs = 0
        self.refused_seen: dict[str, list[int]] = {}  # parameter -> [first line, line count]

    def check_line(self, n: int, url: str | None, body: dict) -> None:
        refused = self.refused
        if refused and not refused.isdisjoint(body):
            for name in refused.intersection(body):
                seen = self.refused_seen.setdefault(name, [n, 0])
                seen[1] += 1
        if self.max_inputs is not None and url in self.embedding_endpoints:
            self.embedding_inputs += _embedding_inputs(body.get("input"))

    def finish(self, endpoint: str | None, requests: int) -> tuple[list[Problem], list[Problem]]:
        """(problems, warnings) found over the whole file."""
        spec = self.spec
        problems: list[Problem] = []
        warnings: list[Problem] = []
        for path, limit in spec.endpoint_max_requests:
            if endpoint == path and requests > limit:
                problems.append(
                    Problem(
                        None,
                        TOO_MANY_REQUESTS,
                        f"the file has {requests:,} requests to {path}, {requests - limit:,} over {spec.name}'s "
                        f"limit of {limit:,} per batch for that endpoint; split it into files of at most {limit:,}",
                    )
                )
        if self.max_inputs is not None and self.embedding_inputs > self.max_inputs:
            problems.append(
                Problem(
                    None,
                    TOO_MANY_EMBEDDING_INPUTS,
                    f"the file has {self.embedding_inputs:,} embedding inputs, over {spec.name}'s limit of "
                    f"{self.max_inputs:,} inputs per batch (summed over every line's `input`); split it",
                    "body.input",
                )
            )
        for name, (first, count) in sorted(self.refused_seen.items(), key=lambda item: item[1][0]):
            more = f" (and on {count - 1:,} more line{'s' if count > 2 else ''})" if count > 1 else ""
            if spec.refused_params_verified:  # validate_file prefixes "line N: " to problems
                problems.append(
                    Problem(first, INVALID_VALUE, f"body.{name} is refused by {spec.name}; remove it{more}", f"body.{name}")
                )
            else:
                message = (
                    f"line {first}: body.{name} may be refused by {spec.name}{more} "
                    "(reported, not verified); remove it if the batch fails"
                )
                warnings.append(Problem(first, REFUSED_PARAMETER, message, f"body.{name}"))
        return problems, warnings


def rules_for(spec: ProviderSpec) -> ProviderRules | None:
    """The per-line rules of `spec`'s provider, or None when it has none (most providers)."""
    if spec.refused_params or spec.max_embedding_inputs is not None or spec.endpoint_max_requests:
        return ProviderRules(spec)
    return None
