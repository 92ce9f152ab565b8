"""`masker mask IN.wav OUT.wav`: mask every keypad tone in a recording.

Runs the same streaming masker as a live call (20 ms frames, same look-ahead)
and writes OUT time-aligned with IN, in IN's rate, encoding and channels.  The
report gives where audio was masked and how many key presses, never the digits.
"""

from __future__ import annotations

import argparse
import json

from masker.errors import UserError
from masker.offline.harness import DEFAULT_LOOKAHEAD_MS, MASK_MODES, mask_file

#: Look-ahead bounds: below one sample nothing can be found in time; above
#: 200 ms the delay would be audible on a live call.
LOOKAHEAD_RANGE_MS = (0, 200)


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "mask",
        help="write a copy of a WAV file with every keypad tone masked",
        description="Mask every keypad tone of IN.wav into OUT.wav with the live-call "
        "streaming masker; OUT is sample-aligned with IN and keeps its format.",
    )
    p.add_argument("input", metavar="IN.wav")
    p.add_argument("output", metavar="OUT.wav")
    p.add_argument(
        "--mode", choices=MASK_MODES, default="tone", help="what replaces a tone (default: tone)"
    )
    p.add_argument(
        "--lookahead-ms",
        type=int,
        default=DEFAULT_LOOKAHEAD_MS,
        metavar="N",
        help=f"masker look-ahead in ms (default: {DEFAULT_LOOKAHEAD_MS})",
    )
    p.add_argument("--json", action="store_true", help="print a JSON report")
    return p


def run(args: argparse.Namespace) -> int:
    low, high = LOOKAHEAD_RANGE_MS
    if not low < args.lookahead_ms <= high:
        raise UserError(f"--lookahead-ms must be in ({low}, {high}], got {args.lookahead_ms}")
    report = mask_file(args.input, args.output, mode=args.mode, lookahead_ms=args.lookahead_ms)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        channels = len({s.channel for s in report.masked})
        print(
            f"{args.output}: masked {report.digits_masked} key press(es) in "
            f"{len(report.masked)} span(s) on {channels} channel(s) "
            f"(mode {report.mode}, look-ahead {report.lookahead_ms} ms)"
        )
    return 0
