"""`masker scrub SRC... --out DIR`: remove keyed digits from a whole recording archive.

WAV/FLAC/Ogg at any rate and pcap/pcapng captures; folders are walked, `@FILE`
reads a list of paths.  Each output is read back by spandsp before it is placed
(or, with --in-place, before it atomically replaces the original); a file from
which a digit is still recoverable is reported failed and not written.  A
manifest in the state folder makes reruns skip finished files.  Reports give
positions and counts, never digits.
"""

from __future__ import annotations

import argparse
import json

from masker.errors import UserError

MODES = ("tone", "silence")


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "scrub",
        help="mask keyed digits in every recording of an archive (WAV, FLAC, Ogg, pcap)",
        description="Mask every keypad tone, remove RFC 4733 events and blank SIP INFO "
        "digits in recordings and captures under SRC, verify each result with spandsp, and "
        "write it under --out (mirroring the tree) or in place.",
    )
    p.add_argument(
        "sources",
        nargs="+",
        metavar="SRC",
        help="file, folder (recursive) or @LIST (one path per line)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", metavar="DIR", help="write results here, mirroring the inputs")
    where.add_argument(
        "--in-place",
        action="store_true",
        help="replace each input atomically, only after its result is verified",
    )
    p.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=0,
        metavar="N",
        help="worker processes (default: all cores)",
    )
    p.add_argument("--mode", choices=MODES, default="tone", help="what replaces a key tone")
    p.add_argument("--lookahead-ms", type=int, default=40, metavar="N")
    p.add_argument(
        "--dry-run", action="store_true", help="only report where keys are; write nothing"
    )
    p.add_argument("--multimon", action="store_true", help="also verify with multimon-ng (slower)")
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help="manifest and reports (default: OUT/.masker-scrub, or ./.masker-scrub)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def run(args: argparse.Namespace) -> int:
    from masker.scrub.runner import Options
    from masker.scrub.runner import run as scrub_run

    if not args.dry_run and not args.out and not args.in_place:
        raise UserError("give --out DIR or --in-place (or --dry-run)")
    if args.jobs < 0:
        raise UserError("--jobs must be >= 0")
    if not 10 <= args.lookahead_ms <= 200:
        raise UserError("--lookahead-ms must be in [10, 200]")
    summ, results, report_path = scrub_run(
        Options(
            sources=args.sources,
            out=args.out,
            in_place=args.in_place,
            jobs=args.jobs,
            mode=args.mode,
            lookahead_ms=args.lookahead_ms,
            dry_run=args.dry_run,
            multimon=args.multimon,
            state_dir=args.state_dir,
            progress=False if args.no_progress else None,
        )
    )
    if args.json:
        print(
            json.dumps(
                {
                    "summary": summ,
                    "report": str(report_path) if report_path else None,
                    **({"files": results} if args.dry_run else {}),
                },
                indent=2,
            )
        )
    else:
        for r in results:
            if r["status"] not in ("clean", "skipped", "dry-run"):
                print(f"{r['status']:>11}  {r['input']}: {r.get('error') or 'digits recoverable'}")
            elif r["status"] == "dry-run":
                print(f"{'dry-run':>11}  {r['input']}: {r.get('keys_masked', 0)} key(s)")
        print(
            f"{summ['files']} file(s): {summ['clean']} clean, {summ['skipped']} skipped, "
            f"{summ['failed']} failed, {summ['error']} error(s), {summ['unsupported']} "
            f"unsupported; {summ['keys_masked']} key(s), {summ['audio_hours']:.3f} h audio, "
            f"{summ['wall_s']} s" + (f"; report {report_path}" if report_path else "")
        )
    bad = summ["failed"] + summ["error"] + summ["unsupported"]
    return 1 if bad else 0
