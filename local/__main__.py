"""`python -m local demo|serve`: the local stack of `make demo` (Genviral emulator + moto), from a checkout.

The harness lives beside the project, not in the installed package: it needs the development dependencies
(moto) and the template, which a deployment has neither of. Run it from the project's root.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local", description="The local stack (Genviral emulator + moto), run from the project's root."
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    demo = actions.add_parser("demo", help="the demo of `make demo`", description="The demo of `make demo`.")
    demo.add_argument("--verbose", action="store_true", help="show the handlers' JSON logs and metrics inline")
    serve = actions.add_parser(
        "serve",
        help="keep the local stack running with sample posts",
        description="Keep the local stack running with sample posts, and print the environment variables that "
        "point the genviral-relay CLI at it.",
    )
    serve.add_argument("--tick", type=float, default=60.0, metavar="SECONDS", help="poller interval (default: 60)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.action == "demo":
        from local import demo

        code: int = demo.run(args.verbose)
        if code != 0:
            print("the demo did not go as expected (see above)", file=sys.stderr)
        return code
    from local import serve

    try:
        serve.serve(tick_seconds=args.tick, stop=threading.Event())
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
