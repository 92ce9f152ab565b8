"""`masker` console script: dispatches to one module per sub-command.

Every sub-command module in masker/commands/ exposes
``add_parser(subparsers) -> argparse.ArgumentParser`` and ``run(args) -> int``.
Errors the user can act on raise ``masker.errors.UserError`` and become a
one-line message and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from masker.errors import UserError

COMMANDS = ("detect", "mask", "keys", "serve", "probe", "scrub")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="masker", description="DTMF payment masker: SIP B2BUA, token feed and WAV harness."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"masker.commands.{name}")
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"masker {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
