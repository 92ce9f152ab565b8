"""Interop: SIPp (Debian's sip-tester, the usual SIP load and conformance tool) drives
calls through the real masker with its built-in UAC and UAS scenarios.

SIPp is strict: a provisional response arriving after the final one, or any
request the B2BUA cannot send (its scenarios put `transport=UDP`, upper case, in
their Contact URIs), fails a call.
"""

from __future__ import annotations

import shutil
import signal
import subprocess

import pytest

from masker.phones.service_process import ServiceProcess, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

CALLS = 20


def test_sipp_is_installed():
    # `make test` installs sip-tester: a missing peer must fail the suite, not skip it.
    assert shutil.which("sipp")


@pytest.fixture(scope="module")
def sipp_run(tmp_path_factory):
    """SIPp UAC -> masker -> SIPp UAS, CALLS calls at 10 per second; (uac, service stats)."""
    wd = tmp_path_factory.mktemp("e2e-sipp")
    pbx_port = free_port()
    uas = subprocess.Popen(
        ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(pbx_port), "-nostdin", "-trace_err"],
        cwd=wd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    svc = ServiceProcess(pbx_port=pbx_port, workdir=wd / "service", api=False)
    try:
        uac = subprocess.run(
            [
                "sipp",
                "-sn",
                "uac",
                "-i",
                "127.0.0.1",
                "-p",
                str(free_port()),
                "-nostdin",
                "-m",
                str(CALLS),
                "-r",
                "10",
                "-l",
                "10",
                "-timeout",
                "60s",
                "-trace_err",
                "-trace_stat",
                "-stf",
                "uac.csv",
                f"127.0.0.1:{svc.sip_port}",
            ],
            cwd=wd,
            capture_output=True,
            text=True,
            timeout=90,
        )
        since = len(svc.log_lines)
        svc.proc.send_signal(signal.SIGUSR1)
        stats = svc.wait_log("stats", timeout=5, since=since)
        alive = svc.alive()
    finally:
        svc.stop()
        uas.terminate()
        uas.wait(10)
    errors = "".join(p.read_text() for p in wd.glob("uac_*_errors.log"))
    return uac, errors, stats, alive


def test_every_sipp_call_completes_through_the_masker(sipp_run):
    uac, errors, _stats, _alive = sipp_run
    assert uac.returncode == 0, errors[-2000:]  # 0: every call succeeded


def test_sipp_counts_all_calls_as_successful(sipp_run):
    uac, _errors, _stats, _alive = sipp_run
    summary = [ln for ln in uac.stdout.splitlines() if "Successful call" in ln]
    assert summary and summary[-1].split("|")[-1].split()[0] == str(CALLS)


def test_the_service_raised_no_sip_error_and_stayed_up(sipp_run):
    _uac, _errors, stats, alive = sipp_run
    assert alive
    assert stats.get("sip_errors", 0) == 0
