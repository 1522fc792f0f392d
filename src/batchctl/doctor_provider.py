"""`batchctl doctor` in the provider's words: a missing route explained as that provider's known gap
(New-API: files are not relayed; Gemini: the compatible layer has no file upload), and the one thing a
provider's users must know (azure: `model` is the deployment name). Read from the provider table
(`route_advice`, `doctor_note`), so no check asks which provider it is. Pure: no HTTP here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from batchctl.doctor import FAIL, OK, WARN, CheckResult, Probe, route_missing

if TYPE_CHECKING:
    from batchctl.provider_spec import ProviderSpec


def _not_served(p: Probe) -> bool:
    """The answer means the route is absent (404/405 without an object, or 501 not implemented)."""
    return p.status == 501 or p.code == "api_not_implemented" or route_missing(p)


def in_provider_words(spec: ProviderSpec | None, check: CheckResult, p: Probe) -> CheckResult:
    """`check` of a route probe, reworded when `spec` says why that route is missing and what to do."""
    if spec is None or check.status not in (FAIL, WARN) or not _not_served(p):
        return check
    collection = check.name.partition(":")[0]
    for route, words, hint in spec.route_advice:
        if route == collection:
            answer = f"{p.status}" + (f" {p.code}" if p.code else "")
            return CheckResult(check.name, check.status, f"{words} ({p.label} -> {answer})", hint)
    return check


def provider_line(spec: ProviderSpec | None) -> CheckResult | None:
    """The provider's own note as a doctor line, or None when it has none."""
    if spec is None or not spec.doctor_note:
        return None
    return CheckResult("provider", OK, f"{spec.name}: {spec.doctor_note}")
