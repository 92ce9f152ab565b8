"""`masker detect FILE.wav`: list the keypad digits in a recording.

Digits are shown masked (`*`); `--reveal` prints them, for test fixtures only.
"""

from __future__ import annotations

import argparse
import json

from masker.offline.harness import detect_file


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "detect",
        help="list the keypad (DTMF) digits found in a WAV file",
        description="List the keypad digits in a WAV file (8/16 kHz; PCM, mu-law or A-law), "
        "per channel, with their start and end. Digits are masked unless --reveal.",
    )
    p.add_argument("file", metavar="FILE.wav", help="recording to scan")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.add_argument(
        "--reveal", action="store_true", help="show the digits in clear (test fixtures only)"
    )
    return p


def run(args: argparse.Namespace) -> int:
    report = detect_file(args.file)
    doc = report.to_json(reveal=args.reveal)
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    n = sum(len(c["digits"]) for c in doc["channels"])
    print(
        f"{doc['file']}: {doc['sample_rate']} Hz, {len(doc['channels'])} channel(s), {n} digit(s)"
    )
    for channel in doc["channels"]:
        keys = "".join(d["digit"] for d in channel["digits"])
        print(f"channel {channel['channel']}: {keys or '(none)'}")
        for d in channel["digits"]:
            print(
                f"  {d['digit']}  {d['start_ms']:10.1f} ms - {d['end_ms']:10.1f} ms  {d['source']}"
            )
    return 0
