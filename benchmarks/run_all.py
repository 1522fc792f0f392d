"""Run every benchmark in this folder and print one table: script, pass or miss, seconds.

Scripts are found by glob (`benchmarks/*.py`, this one and `_*.py` left out), so a new benchmark is
included by being here. Each runs in its own process with `--quick` when its `--help` mentions it (the
convention of benchmarks/README.md: smaller data, fewer repeats, the same targets), one after another
(they measure time and share two cores), each within a time limit. A script passes when it exits 0:
every benchmark exits non-zero on a miss. Exits 1 when any missed, failed or ran out of time.

    python benchmarks/run_all.py                    # every script, quick (under 10 minutes)
    python benchmarks/run_all.py --full             # every script at its full size
    python benchmarks/run_all.py -k watch -k journal
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PER_SCRIPT_LIMIT_S = 240.0


def scripts(patterns: list[str]) -> list[Path]:
    found = sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name and not p.name.startswith("_"))
    return [p for p in found if not patterns or any(k in p.stem for k in patterns)]


def supports_quick(script: Path) -> bool:
    try:
        shown = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return False
    return "--quick" in shown.stdout


def run(script: Path, quick: bool, limit: float) -> tuple[str, float, str]:
    """(verdict, seconds, output) of one script: `pass`, `MISS` (exit 1), `error N` or `timeout`."""
    argv = [sys.executable, str(script), *(["--quick"] if quick else [])]
    started = time.perf_counter()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=limit, cwd=HERE.parent)
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return "timeout", time.perf_counter() - started, output
    seconds = time.perf_counter() - started
    verdict = {0: "pass", 1: "MISS"}.get(done.returncode, f"error {done.returncode}")
    # A miss prints its figures on stdout; a crash (also exit 1: an uncaught exception, SystemExit("...")) says why on stderr.
    return verdict, seconds, done.stdout + (done.stderr[-4000:] if done.returncode != 0 else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="run each script at its full size (no --quick)")
    parser.add_argument("-k", dest="patterns", action="append", default=[], help="only scripts whose name contains this")
    parser.add_argument("--limit", type=float, default=PER_SCRIPT_LIMIT_S, help="seconds one script may take")
    args = parser.parse_args()
    rows = []
    started = time.perf_counter()
    for script in scripts(args.patterns):
        quick = not args.full and supports_quick(script)
        print(f"== {script.name}{' --quick' if quick else ''}", flush=True)
        verdict, seconds, output = run(script, quick, args.limit)
        print(output.rstrip(), flush=True)
        rows.append((script.name + (" --quick" if quick else ""), verdict, seconds))
    width = max((len(name) for name, _, _ in rows), default=10)
    print(f"\n{'script':{width}}  {'result':8}  seconds")
    for name, verdict, seconds in rows:
        print(f"{name:{width}}  {verdict:8}  {seconds:7.1f}")
    print(f"{'total':{width}}  {'':8}  {time.perf_counter() - started:7.1f}")
    failed = [name for name, verdict, _ in rows if verdict != "pass"]
    print(f"{len(rows) - len(failed)} passed, {len(failed)} missed" + (f": {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
