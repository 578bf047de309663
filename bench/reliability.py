"""`make reliability`: the fault matrix with many trials, as two tables (also written to bench/RELIABILITY.md): the
check path's faults, then the webhooks'."""

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
from tests.support.webhook_faults import WEBHOOK_SCENARIOS, format_webhook_table, run_webhook_matrix

REPORT = Path(__file__).resolve().parent / "RELIABILITY.md"


CLEAN = "nothing lost, no duplicate ids, no transition committed twice, no invented events"
WEBHOOKS_CLEAN = "no delivery lost, none under two ids, no forged body signed, every delivery verified"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=10, help="trials per fault (default 10)")
    parser.add_argument("--only", default="", help="run only the faults whose name contains this text")
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    names = [name for name in SCENARIOS if arguments.only.lower() in name.lower()]
    webhook_names = [name for name in WEBHOOK_SCENARIOS if arguments.only.lower() in name.lower()]

    started = time.monotonic()
    with redirect_stdout(StringIO()):  # the relay's JSON logs; the tables are what matters here
        rows = run_matrix(arguments.trials, names, seed=arguments.seed) if names else []
        webhook_rows = run_webhook_matrix(arguments.trials, webhook_names, seed=arguments.seed) if webhook_names else []
    elapsed = time.monotonic() - started
    table = format_table(rows)
    webhooks_clean = all(row.clean for row in webhook_rows)
    clean = all(row.clean for row in rows) and webhooks_clean
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
            f"Result: {CLEAN if all(row.clean for row in rows) else 'FAILURES above'}.",
            "",
            "## Webhook faults",
            "",
            "Each trial registers 2-4 loopback endpoints (some for every type, some for one or two), each verifying",
            "every delivery with the reference `standardwebhooks` library; builds 1-3 posts of 1-3 accounts, posted",
            "or failed at random, checked through the API; drives the webhook functions through the fault; then",
            "settles: the fault cleared, the relay's clock moved through the whole retry schedule, every queued or",
            "delayed message delivered. A delivery is received when the endpoint verified it and answered 2xx in",
            "full; none of these faults may park one, so a parked delivery counts as lost. Forged bodies signed:",
            "verified deliveries whose body is not, byte for byte, a document the relay stored under that id.",
            "Endpoints with health off: after settling, `attempts_pending` is not 0, or the endpoint is still",
            "failing or has no success recorded (reported, not part of the result: see docs/reliability-and-cost.md).",
            "",
            format_webhook_table(webhook_rows),
            "",
            f"Result: {WEBHOOKS_CLEAN if webhooks_clean else 'FAILURES above'}.",
            "",
        ]
    )
    print(report)
    if not arguments.only:
        REPORT.write_text(report)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
