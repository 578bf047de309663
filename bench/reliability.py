"""`make reliability`: the fault matrix with many trials, as a table (also written to bench/RELIABILITY.md)."""

from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings
from contextlib import redirect_stdout
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

from tests.support.fault_matrix import SCENARIOS, format_table, run_matrix

REPORT = Path(__file__).resolve().parent / "RELIABILITY.md"


CLEAN = "nothing lost, no duplicate ids, no transition committed twice, no invented events"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=10, help="trials per fault (default 10)")
    parser.add_argument("--only", default="", help="run only the faults whose name contains this text")
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    names = [name for name in SCENARIOS if arguments.only.lower() in name.lower()]

    started = time.monotonic()
    with redirect_stdout(StringIO()):  # the relay's JSON logs; the table is what matters here
        rows = run_matrix(arguments.trials, names, seed=arguments.seed)
    elapsed = time.monotonic() - started
    table = format_table(rows)
    clean = all(row.clean for row in rows)
    command = f"make reliability TRIALS={arguments.trials}"
    report = "\n".join(
        [
            "# Reliability report",
            "",
            f"Command: `{command}` (seed {arguments.seed}), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
            f"{platform.machine()} {platform.system()}, Python {platform.python_version()}, "
            f"{elapsed:.0f} s.",
            "",
            "Each trial builds random posts (1-4 accounts) in the Genviral emulator, drives the relay through",
            "the fault on loopback HTTP and moto, lets it settle, and audits both subscribers against what",
            "happened upstream. Dead-lettered events were refused for good by a target and parked with the",
            "reason; they count as handled, not lost.",
            "",
            table,
            "",
            f"Result: {CLEAN if clean else 'FAILURES above'}.",
            "",
        ]
    )
    print(report)
    if not arguments.only:
        REPORT.write_text(report)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
