"""``python -m tests.faults --seed N --schedules K``: the seeded fault suite on the lab (``make faults``)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tests.faults.nemesis import KINDS
from tests.faults.report import write_report
from tests.faults.suite import Suite, as_json, findings, summarize, table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--schedules", type=int, default=20)
    ap.add_argument("--only", type=int, action="append", help="run only this schedule index (repeatable)")
    ap.add_argument("--short", action="store_true", help="one fast fault per schedule (the smoke test's kind)")
    ap.add_argument("--kinds", help="comma-separated fault kinds to draw from (default: all)")
    ap.add_argument("--lock", help="flock this file around each schedule (the shared lab lock)")
    ap.add_argument("--report", help="write the Markdown report here (e.g. docs/reliability.md)")
    ap.add_argument("--json", help="write every schedule's raw result here")
    args = ap.parse_args(argv)
    kinds = tuple(k for k in (args.kinds or "").split(",") if k)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        ap.error(f"--kinds: unknown {', '.join(unknown)} (kinds: {', '.join(KINDS)})")
    suite = Suite(args.seed, short=args.short, lock=args.lock, say=lambda m: print(m, flush=True), kinds=kinds)
    started = time.time()
    indexes = args.only or list(range(args.schedules))
    extra = (" --short" if args.short else "") + (f" --kinds {args.kinds}" if kinds else "")
    for n, i in enumerate(indexes, 1):
        suite.run_schedule(i)
        if args.report and n < len(indexes):  # a partial report survives an interrupted run
            write_report(Path(args.report), summarize(suite.results), findings(suite.results, args.seed, extra),
                         seed=args.seed, schedules=args.schedules, short=args.short, started=started,
                         results=suite.results, progress=f"{n} of {len(indexes)} schedules so far")
    summary = summarize(suite.results)
    print()
    print(table(summary))
    found = findings(suite.results, args.seed, extra)
    if found:
        print("\nFindings:\n" + "\n".join(found))
    if args.json:
        Path(args.json).write_text(as_json(suite.results))
    if args.report:
        write_report(Path(args.report), summary, found, seed=args.seed, schedules=args.schedules, short=args.short,
                     started=started, results=suite.results)
        print(f"\nreport: {args.report}")
    bad = summary["lost"] or summary["unverified"] or summary["split_brain"] or summary["failed_recoveries"] \
        or summary["node_diff"] or summary["config_problems"] or summary["not_struck"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
