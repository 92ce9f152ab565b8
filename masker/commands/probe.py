"""`masker probe`: place a real test call through a deployed masker and judge the agent side.

Exit status: 0 when no digit is recoverable at the agent, 1 when one is (or the
probe could not complete), 2 for a usage error.  The test card never appears in
the output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "probe",
        help="real test call through a masker: is any keyed digit recoverable at the agent?",
        description=(
            "Call VIA with a pjsua2 phone, key a test card in-band, by RFC 4733 and by SIP "
            "INFO, answer and record at a local agent phone listening at AGENT, and report "
            "whether any digit is recoverable there, leaked tone, added delay and token events."
        ),
    )
    p.add_argument("--via", required=True, metavar="SIP_URI", help="the masker's trunk side")
    p.add_argument(
        "--agent", required=True, metavar="SIP_URI",
        help="where the masker sends the agent leg; the probe's agent phone listens there",
    )  # fmt: skip
    p.add_argument(
        "--card", default="4111111111111111", metavar="TEST_PAN",
        help="test PAN to key (default: the Visa test card); never printed",
    )  # fmt: skip
    p.add_argument("--api", metavar="URL", help="service API base URL, to read token events")
    p.add_argument(
        "--api-key-env", default="MASKER_PROBE_API_KEY", metavar="VAR",
        help="environment variable holding a supervisor API key (default %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--tls", metavar="CERT_DIR",
        help="SIP over TLS for both phones (--via gets ;transport=tls): CERT_DIR/ca.pem is"
        " trusted; the agent phone listens for TLS at the --agent port with"
        " CERT_DIR/server.pem and server.key (`make tls-certs` makes all three)",
    )  # fmt: skip
    p.add_argument("--srtp", action="store_true", help="both phones require SDES-SRTP")
    p.add_argument(
        "--codec", default="PCMU", type=str.upper, choices=("PCMU", "PCMA", "G722"),
        help="the caller's only codec, the agent phone's first (default %(default)s)",
    )  # fmt: skip
    p.add_argument("--no-baseline", action="store_true", help="skip the direct call to the agent")
    p.add_argument("--keep", metavar="DIR", help="keep recordings in DIR")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def run(args: argparse.Namespace) -> int:
    from masker.phones.client import PhoneError
    from masker.phones.probe_call import ProbeSettings, run_probe  # heavy: pjsua2, scipy

    settings = ProbeSettings(
        via=args.via,
        agent=args.agent,
        card=args.card,
        api_url=args.api,
        api_key=os.environ.get(args.api_key_env) if args.api else None,
        baseline=not args.no_baseline,
        workdir=Path(args.keep) if args.keep else None,
        tls_dir=Path(args.tls) if args.tls else None,
        srtp=args.srtp,
        codec=args.codec,
    )
    try:
        report = run_probe(settings)
    except PhoneError as exc:  # a phone gave up on a step not covered by the report
        print(f"masker probe: FAIL: probe incomplete: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.render())
    return 0 if report.passed else 1
