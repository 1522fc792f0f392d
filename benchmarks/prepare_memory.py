"""Prepare a ~1 GB CSV into request JSONL and check `prepare` stays under 100 MB RSS.

    python benchmarks/prepare_memory.py [--size-mb 1024] [--limit-mb 100] [--id-column]

Generates a CSV (quoted fields with commas, newlines and Chinese text) in a temporary directory, then
runs in subprocesses (each measured alone): the anchor, a bare `csv.reader` loop counting rows, and
ours, what `preparing.prepare_requests` does: write one request line per row, then read the file back
for `validate`'s estimate (the two passes timed apart). Prints the times, their ratios and ours' peak RSS; exits 1 if that reaches the limit or the request count is not the row count.
`--id-column` takes the custom_ids from a column (a set of them is kept to refuse duplicates: memory
then grows with the number of rows).
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

from split_memory import mib, run  # the subprocess runner and RSS units (this folder is on sys.path)

ANCHOR = r"""
import csv, json, resource, sys, time
start = time.perf_counter()
rows = 0
with open(sys.argv[1], encoding="utf-8-sig", newline="") as f:
    for row in csv.reader(f):
        rows += 1
print(json.dumps({"seconds": time.perf_counter() - start, "rows": rows - 1,
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

OURS = r"""
import json, resource, sys, time
from pathlib import Path
from batchctl.cost.estimate import estimate_for_profile
from batchctl.prepare import PrepareSpec, Template
from batchctl.preparing import PrepareRequest, open_checked, write_prepared
from batchctl.providers import get_provider
source, output, id_column = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] or None
spec = PrepareSpec(template=Template.parse("Classify the review of {product} ({{one word}}): {review}"),
                   model="qwen-plus", system=Template.parse("You label reviews."), max_tokens=16, id_column=id_column)
request = PrepareRequest(source, spec, output=output)
# What prepare_requests does, timed in its two passes: write the requests, then validate's estimate.
start = time.perf_counter()
report = write_prepared(request, open_checked(request, get_provider("local")), output)
written = time.perf_counter()
estimate = estimate_for_profile(output, endpoint=spec.endpoint)
done = time.perf_counter()
print(json.dumps({"write_seconds": written - start, "estimate_seconds": done - written, "requests": report.requests,
                  "tokens": estimate.input_tokens, "method": estimate.method, "output_bytes": output.stat().st_size,
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def write_csv(path: Path, size: int) -> tuple[int, int]:
    """A CSV of about `size` bytes: id, product, review (quoted, with commas, a newline, Chinese text)."""
    reviews = ['Great, "really" great.\nWould buy again. ' * 4, "质量很好，物流也快，下次还会再买。" * 5, "Meh, it broke after a week. " * 6]
    rows = written = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "product", "review"])
        while written < size:
            chunk = [(f"r{n}", f"product {n % 97}", reviews[n % 3]) for n in range(rows, rows + 1000)]
            writer.writerows(chunk)
            rows += len(chunk)
            written = handle.tell()
    return path.stat().st_size, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the generated CSV (MiB)")
    parser.add_argument("--limit-mb", type=float, default=100.0, help="peak RSS prepare must stay under (MiB)")
    parser.add_argument("--id-column", action="store_true", help="custom_ids from the id column (kept for the duplicate check)")
    parser.add_argument("--quick", action="store_true", help="a 200 MiB CSV (for run_all.py)")
    args = parser.parse_args()
    if args.quick:
        args.size_mb = 200

    with tempfile.TemporaryDirectory(prefix="batchctl-prepare-") as tmp:
        source = Path(tmp) / "reviews.csv"
        size, rows = write_csv(source, args.size_mb * 1024 * 1024)
        print(f"input: {size:,} bytes, {rows:,} rows")
        run(ANCHOR, source)  # warm the page cache, so both timed runs read from memory
        anchor = run(ANCHOR, source)
        ours = run(OURS, source, Path(tmp) / "requests.jsonl", "id" if args.id_column else "")

    peak = mib(ours["peak_kib"])
    print(f"anchor (csv.reader loop): {anchor['seconds']:.2f} s, peak RSS {mib(anchor['peak_kib']):.1f} MB")
    total = ours["write_seconds"] + ours["estimate_seconds"]
    print(f"ours (prepare): write {ours['write_seconds']:.2f} s (ratio {ours['write_seconds'] / anchor['seconds']:.2f}) "
          f"+ estimate {ours['estimate_seconds']:.2f} s = {total:.2f} s (ratio {total / anchor['seconds']:.2f}); "
          f"{ours['requests']:,} requests, {ours['output_bytes']:,} bytes, ~{ours['tokens']:,} input tokens ({ours['method']})")  # fmt: skip
    print(f"ours: peak RSS {peak:.1f} MB (limit {args.limit_mb:g} MB)")
    ok = True
    if ours["requests"] != rows or anchor["rows"] != rows:
        print(f"FAIL: {ours['requests']:,} requests (anchor {anchor['rows']:,} rows) for {rows:,} rows")
        ok = False
    if peak >= args.limit_mb:
        print(f"FAIL: peak RSS {peak:.1f} MB reached the {args.limit_mb:g} MB limit")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
