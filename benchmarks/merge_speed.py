"""`batchctl download --merge INPUT` of 50,000 results, next to `curl -o` plus a plain dict join.

The batch (50,000 chat requests, ~89 MB of output, 2 % failing into the error file) runs on
`python -m batchctl.server` (`--server serve`, default) or comes from the stand-in of
download_speed.py (`--server stub`, no error file there: its results are generated). Then, alternating,
each a fresh process:

  - anchor: `curl -o` of the output and of the error file, then a plain join in Python: each result
    line parsed once (`json.loads`) into a dict by custom_id, the input read in order, one line out
    per request (a `missing_result` line where there is none);
  - ours:   `batchctl download BATCH_ID --merge INPUT -o FILE`.

Prints both medians, the ratio and ours' peak RSS; exits 1 when the ratio is over --target (1.3).

    python benchmarks/merge_speed.py [--server serve|stub] [--lines 50000] [--repeat 5] [--target 1.3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from download_speed import bench_env, compare, finished_batch, generate_input, peak_rss, report, run_timed

JOIN = """
import json, subprocess, sys
base, out_id, err_id, input_path, target, work = sys.argv[1:7]
files = []
for file_id in (out_id, err_id):
    if file_id:
        path = f"{work}/anchor-{file_id}.jsonl"
        subprocess.run(["curl", "-s", "-f", "-H", "Authorization: Bearer sk-bench", "-o", path,
                        f"{base}/files/{file_id}/content"], check=True)
        files.append(path)
results = {}
for path in files:
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                results.setdefault(json.loads(line)["custom_id"], line.rstrip(b"\\r\\n"))
with open(input_path, "rb") as f, open(target, "wb") as out:
    for line in f:
        if not line.strip():
            continue
        cid = json.loads(line)["custom_id"]
        found = results.get(cid)
        if found is None:
            found = json.dumps({"id": None, "custom_id": cid, "response": None, "error": {"code": "missing_result",
                                "message": "the batch returned no result for this request"}}).encode()
        out.write(found + b"\\n")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=("serve", "stub"), default="serve")
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("-r", "--repeat", type=int, default=5)
    parser.add_argument("--target", type=float, default=1.3)
    args = parser.parse_args()
    if not shutil.which("curl"):
        sys.exit("curl is needed for the anchor (curl -o + a plain join); install it and run again")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with finished_batch(args.server, workdir, args.lines, 0) as (base, batch, input_path):
            if input_path is None:  # the stand-in's results come from request-0 .. request-N
                input_path = generate_input(workdir / "input.jsonl", args.lines)
            env = bench_env(workdir, base)
            merged, joined = workdir / "merged.jsonl", workdir / "joined.jsonl"
            anchor = [sys.executable, "-c", JOIN, base, batch["output_file_id"], batch.get("error_file_id") or "",
                      str(input_path), str(joined), str(workdir)]  # fmt: skip
            ours = [sys.executable, "-m", "batchctl", "download", batch["id"], "--merge", str(input_path),
                    "-o", str(merged), "--force"]  # fmt: skip
            a, o = compare(anchor, ours, env, workdir, args.repeat, [merged, joined])
            rss = peak_rss(ours, env, workdir)  # leaves ours' merged file
            run_timed(anchor, env, workdir)  # and the join's, to compare
            same = merged.read_bytes() == joined.read_bytes()
        print(f"{args.server}: {args.lines:,} requests merged; median of {args.repeat}, each a fresh process"
              + f"; merged file {'identical to' if same else 'DIFFERS from'} the plain join's")
        sys.exit(0 if report("download --merge", a, o, rss, args.target) else 1)


if __name__ == "__main__":
    from _bytecode import ensure_bytecode  # this directory is sys.path[0]

    ensure_bytecode()  # as an installed batchctl has it: no module compiled while timed
    main()
