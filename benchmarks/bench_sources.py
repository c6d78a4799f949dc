"""Reading a Salesforce export: seconds and peak memory, against parsing its files alone.

Synthesises canonical CRM tables (numpy, deterministic), writes them as a Salesforce export
with the package's writer, then, each in a fresh process so that peak RSS is its own:

* (a) ``load_salesforce``: read every object, map it, validate the canonical tables;
* (b) the reference: ``pandas.read_csv`` of the same files, every column as text (the floor any
  reader pays), done independently of the package.

It prints seconds, rows/s and peak RSS for both and the ratio (a)/(b), and checks that (a) read
every lead. Only that check is judged (exit 1); the numbers are reported.

    python benchmarks/bench_sources.py --leads 1000000 --events 5000000   # the issue's size
    python benchmarks/bench_sources.py --smoke                             # seconds, for CI
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared benchmark modules

import common
import numpy as np
import synthetic

SEED = 20261201
_MEASURE = """
import json, resource, sys, time
from pathlib import Path
start = time.perf_counter()
if sys.argv[1] == "ours":
    from leadscore.features.config import load_feature_config
    from leadscore.features.sources.salesforce import load_salesforce
    crm = load_salesforce(Path(sys.argv[2]), load_feature_config())
    leads, rows = len(crm.leads), 0
else:
    import pandas as pd
    rows = leads = 0
    for path in sorted(Path(sys.argv[2]).glob("*.csv")):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        rows += len(frame)
        leads = len(frame) if path.stem == "Lead" else leads
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mib": peak, "leads": leads, "rows": rows}))
"""


def measure(which: str, export: Path) -> dict[str, float]:
    """One reading, in a fresh process."""
    done = subprocess.run([sys.executable, "-c", _MEASURE, which, str(export)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{which} failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--smoke", action="store_true", help="2,000 leads, 10,000 events")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    if args.smoke:
        args.leads, args.events = 2_000, 10_000
    from leadscore.features.config import load_feature_config
    from leadscore.features.sources.salesforce import write_salesforce

    config = load_feature_config()
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "salesforce"
        started = time.perf_counter()
        raw = synthetic.synth_tables(np.random.default_rng(SEED), args.leads, args.events, config)
        write_salesforce(synthetic.to_crm(raw, config), export, config)
        written = time.perf_counter() - started
        size = sum(p.stat().st_size for p in export.iterdir()) / 2**20
        ours, reference = measure("ours", export), measure("reference", export)
    ratio = ours["seconds"] / reference["seconds"]
    total = int(reference["rows"])  # rows of the export's files: what both readers go through
    rows = [
        (name, r["seconds"], common.rate(total, r["seconds"]), r["peak_mib"])
        for name, r in (("load_salesforce", ours), ("read_csv (reference)", reference))
    ]
    print(f"Salesforce export of {args.leads:,} leads and {args.events:,} events: "
          f"{size:,.0f} MiB of CSV (written in {written:.0f} s)")  # fmt: skip
    common.print_table([("reader", 22), ("seconds", 9, ".1f"), ("rows/s", 12, ",.0f"),
                        ("peak MiB", 10, ",.0f")], rows)  # fmt: skip
    print(f"ratio load_salesforce / read_csv: {ratio:.2f}x the time, "
          f"{ours['peak_mib'] / reference['peak_mib']:.2f}x the memory")
    problems = [] if ours["leads"] == args.leads else [
        f"read {ours['leads']:,} leads of {args.leads:,}"
    ]  # fmt: skip
    if args.json_out:
        common.write_json(args.json_out, {
            "leads": args.leads, "events": args.events, "csv_mib": size, "ours": ours,
            "reference": reference, "ratio_seconds": ratio, "problems": problems,
        })  # fmt: skip
    return common.verdict(problems, "every lead read")


if __name__ == "__main__":
    sys.exit(main())
