"""How good is the token heuristic? Compare it with the exact tokenizers on a mixed English/Chinese sample.

    python benchmarks/token_estimate.py                  # needs `pip install -e '.[tokens]'`
    python benchmarks/token_estimate.py --write-fixture  # regenerate tests/fixtures/cost/token_counts.json

Prints, per vocabulary and language, the mean and max relative error of `heuristic_tokens` against the
exact count, and the error on the whole sample (what a batch file's total sees), for the sample the
heuristic's constants were fitted on and for a held-out one. Without the exact tokenizers installed it
compares against the committed fixture of exact counts instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from batchctl.cost.tokens import _exact_counter, heuristic_tokens  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "cost"
SAMPLES = {"fitted": FIXTURES / "token_sample.jsonl", "held-out": FIXTURES / "token_holdout.jsonl"}
FIXTURE = FIXTURES / "token_counts.json"
FAMILIES = ("o200k_base", "cl100k_base", "qwen")


def load_sample(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def exact_counts(sample: list[dict], name: str) -> dict[str, list[int]]:
    """Exact counts per vocabulary from the installed tokenizers, else from the committed fixture."""
    counts: dict[str, list[int]] = {}
    for family in FAMILIES:
        counter = _exact_counter(family)
        if counter is not None:
            counts[family] = [counter[0](row["text"]) for row in sample]
    if len(counts) < len(FAMILIES) and FIXTURE.exists():
        stored = json.loads(FIXTURE.read_text())["counts"].get(name, {})
        for family in FAMILIES:
            if family in stored:
                counts.setdefault(family, stored[family])
    return counts


def error_table(sample: list[dict], counts: dict[str, list[int]]) -> list[dict]:
    rows = []
    for family, exact in counts.items():
        guesses = [heuristic_tokens(row["text"], family) for row in sample]
        for lang in ("en", "zh", "mixed", "all"):
            picked = [i for i, row in enumerate(sample) if lang in ("all", row["lang"])]
            errors = [abs(guesses[i] - exact[i]) / exact[i] for i in picked]
            total_exact, total_guess = sum(exact[i] for i in picked), sum(guesses[i] for i in picked)
            rows.append({
                "vocabulary": family, "text": lang, "lines": len(picked),
                "mean_error": sum(errors) / len(errors), "max_error": max(errors),
                "total_error": (total_guess - total_exact) / total_exact,
            })  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-fixture", action="store_true", help="store the exact counts for the tests")
    parser.add_argument("--quick", action="store_true", help="accepted for run_all.py; the comparison is already quick")
    args = parser.parse_args(argv)
    samples = {name: load_sample(path) for name, path in SAMPLES.items()}
    if args.write_fixture:
        counts: dict[str, dict[str, list[int]]] = {name: {} for name in samples}
        methods = {}
        for family in FAMILIES:
            counter = _exact_counter(family)
            if counter is None:
                print(f"no exact tokenizer for {family}: pip install -e '.[tokens]'", file=sys.stderr)
                return 1
            methods[family] = counter[1]
            for name, sample in samples.items():
                counts[name][family] = [counter[0](row["text"]) for row in sample]
        lines = [f' "methods": {json.dumps(methods)},', ' "counts": {']
        lines += [f'  "{name}": {json.dumps(by_family)}' + ("," if i < len(counts) - 1 else "") for i, (name, by_family) in enumerate(counts.items())]
        FIXTURE.write_text("{\n" + "\n".join(lines) + "\n }\n}\n")
        print(f"wrote {FIXTURE.relative_to(ROOT)}")
        return 0
    started = time.perf_counter()
    print(f"{'sample':<9} {'vocabulary':<12} {'text':<6} {'lines':>5} {'mean err':>9} {'max err':>8} {'total err':>9}")
    for name, sample in samples.items():
        for r in error_table(sample, exact_counts(sample, name)):
            print(
                f"{name:<9} {r['vocabulary']:<12} {r['text']:<6} {r['lines']:>5} {r['mean_error']:>8.1%} "
                f"{r['max_error']:>8.1%} {r['total_error']:>+9.1%}"
            )
    elapsed = time.perf_counter() - started
    print(f"({sum(map(len, samples.values()))} texts; exact and heuristic counts in {elapsed * 1000:.0f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
