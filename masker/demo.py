"""`make demo`: the local masker, a local agent phone, one probe call, the report.

Starts `masker serve` on free loopback ports with development keys in a
temporary directory, points its PBX side at a pjsua2 agent phone the probe
runs, places the probe call (test card keyed in-band, by RFC 4733 and by SIP
INFO), prints the report and shuts everything down.  Exit status: the probe's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from masker.phones.probe_call import ProbeSettings, run_probe
from masker.phones.service_process import ServiceError, ServiceProcess, free_port


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m masker.demo", description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print the probe report as JSON")
    p.add_argument(
        "--keep", metavar="DIR",
        help="keep the service's files and the probe's recordings (the test card as audio) in DIR",
    )  # fmt: skip
    args = p.parse_args(argv)
    if args.keep:
        return run_demo(Path(args.keep), args)
    with tempfile.TemporaryDirectory(prefix="masker-demo-") as tmp:
        return run_demo(Path(tmp), args)


def run_demo(workdir: Path, args: argparse.Namespace) -> int:
    agent_port = free_port()
    print(f"demo: starting masker serve (files in {workdir})", file=sys.stderr)
    try:
        service = ServiceProcess(pbx_port=agent_port, workdir=workdir / "service")
    except ServiceError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    with service:
        print(
            f"demo: masker on sip:{service.uri_host}, agent phone on 127.0.0.1:{agent_port};"
            " placing the probe call",
            file=sys.stderr,
        )
        report = run_probe(
            ProbeSettings(
                via=f"sip:payment@{service.uri_host}",
                agent=f"sip:agent@127.0.0.1:{agent_port}",
                api_url=service.api_url,
                api_key=service.api_key,
                workdir=workdir / "recordings" if args.keep else None,
            )
        )
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.render())
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
