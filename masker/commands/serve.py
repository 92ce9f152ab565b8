"""`masker serve` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse

from masker.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    return sub.add_parser("serve", help="(not yet available)")


def run(args: argparse.Namespace) -> int:
    raise UserError("'serve' is not available yet")
