"""Startup of offline commands: `batchctl validate small.jsonl` and `batchctl --help` against a minimal
Typer app doing the same kind of thing.

The anchor is a Typer app generated into a temporary directory: two commands, one taking a file and an
option that counts the file's lines (what any Typer CLI pays to start, parse and run a command), run as
`python mini.py validate small.jsonl` and `python mini.py --help`. Ours is `python -m batchctl ...` on
the same one-request file, with stdout and stderr to /dev/null (not a terminal). The two alternate,
pair by pair, after a warm-up; the figure is the median of the pair ratios (a drifting load hits both).

Targets (issue 14): `validate small.jsonl` <= 1.3x the minimal app running its command; `--help` <=
1.3x the minimal app's `--help`. Exits 1 on a miss. `python -X importtime -m batchctl validate FILE`
shows where the rest goes.

    python benchmarks/startup.py            # 15 pairs each
    python benchmarks/startup.py --quick    # 7 pairs each
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 1.3

MINIMAL_APP = '''
from pathlib import Path

import typer

app = typer.Typer()


@app.command()
def validate(path: Path, strict: bool = typer.Option(False, "--strict", help="Be strict.")) -> None:
    """Count the lines of a file."""
    with path.open() as lines:
        print(f"{path}: {sum(1 for _ in lines)} lines")


@app.command()
def other() -> None:
    """Another command, so that the app is a group like batchctl."""


if __name__ == "__main__":
    app()
'''


def run(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}")
    return elapsed


def compare(ours: list[str], anchor: list[str], cwd: Path, pairs: int) -> tuple[float, float, float]:
    """(median anchor s, median ours s, median of the pair ratios), after one warm-up of each."""
    run(ours, cwd), run(anchor, cwd)
    a_times, o_times, ratios = [], [], []
    for _ in range(pairs):
        a = run(anchor, cwd)
        o = run(ours, cwd)
        a_times.append(a)
        o_times.append(o)
        ratios.append(o / a)
    return statistics.median(a_times), statistics.median(o_times), statistics.median(ratios)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-r", "--pairs", type=int, default=15, help="runs of each, in turn (default 15)")
    parser.add_argument("--quick", action="store_true", help="7 pairs (for run_all.py)")
    args = parser.parse_args()
    pairs = 7 if args.quick else args.pairs
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "mini.py").write_text(MINIMAL_APP)
        request = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
                   "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}  # fmt: skip
        (cwd / "small.jsonl").write_text(json.dumps(request) + "\n")
        cases = {
            "validate small.jsonl": ([python, "-m", "batchctl", "validate", "small.jsonl"], [python, "mini.py", "validate", "small.jsonl"]),
            "--help": ([python, "-m", "batchctl", "--help"], [python, "mini.py", "--help"]),
        }
        results = {name: compare(ours, anchor, cwd, pairs) for name, (ours, anchor) in cases.items()}
    print(f"startup, median of {pairs} pairs run in turn (stdout to /dev/null)")
    misses = []
    for name, (anchor, ours, ratio) in results.items():
        print(f"  {name:22} anchor (minimal Typer app) {anchor * 1000:6.0f} ms   ours {ours * 1000:6.0f} ms   ratio {ratio:.2f}")
        if ratio > TARGET_RATIO:
            misses.append(f"{name} {ratio:.2f}x > {TARGET_RATIO}x")
    print("MISS: " + "; ".join(misses) if misses else "OK")
    return 1 if misses else 0


if __name__ == "__main__":
    from _bytecode import ensure_bytecode  # this directory is sys.path[0]

    ensure_bytecode()  # as an installed batchctl has it: no module compiled while timed
    sys.exit(main())
