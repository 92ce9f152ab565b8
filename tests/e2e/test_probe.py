"""`masker probe`: its report, its card handling, and real probe calls.

The probe calls are real: pjsua2 phones, and for the masked case a real
`masker serve`.  Without a masker in the path the probe must fail loudly.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time

import pytest

from masker.errors import UserError
from masker.phones.probe_call import (
    CallDropped,
    ProbeReport,
    analyse,
    keyed_signal,
    keys_for_card,
    parse_sip_uri,
)
from masker.phones.service_process import ServiceProcess, free_port

PAN = "4111111111111111"


def test_card_keys_end_each_field_with_hash_and_expire_in_the_future():
    pan, expiry, cvv = keys_for_card(PAN, today=dt.date(2026, 5, 1))
    assert pan == PAN + "#"
    assert expiry == "1229#"
    assert cvv == "123#"


def test_amex_test_card_gets_a_four_digit_cvv():
    assert keys_for_card("378282246310005")[2] == "1234#"


def test_non_numeric_card_is_a_usage_error():
    with pytest.raises(UserError):
        keys_for_card("4111-1111")


def test_sip_uri_parts_default_to_port_5060():
    assert parse_sip_uri("sip:agent@10.0.0.1") == ("agent", "10.0.0.1", 5060)
    assert parse_sip_uri("<sip:1000@127.0.0.1:5080;transport=udp>") == ("1000", "127.0.0.1", 5080)


def test_report_with_any_telephone_event_is_recoverable():
    report = ProbeReport(via="v", agent="a", connected=True, marker_found=True, telephone_events=1)
    assert report.recoverable
    assert not report.passed


def test_clean_report_passes():
    report = ProbeReport(via="v", agent="a", connected=True, marker_found=True, leaked_ms=[0.0])
    assert report.passed


def test_a_call_dropped_mid_probe_fails_the_report_and_says_when_and_where():
    report = ProbeReport(via="v", agent="a")
    obs = {"connected": True, "code": 200, "dropped": CallDropped(4.25, "keying in-band")}
    analyse(report, obs, keyed_signal(""))
    assert not report.passed
    assert report.render().endswith(
        "FAIL: the call dropped 4.2 s after it was placed, while keying in-band"
    )


def run_probe_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "masker.cli", "probe", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.e2e
@pytest.mark.timeout(150)
def test_probe_through_the_masker_passes_and_never_prints_the_card(tmp_path):
    agent_port = free_port()
    with ServiceProcess(pbx_port=agent_port, workdir=tmp_path / "svc") as service:
        proc = run_probe_cli(
            "--via", f"sip:payment@{service.uri_host}",
            "--agent", f"sip:agent@127.0.0.1:{agent_port}", "--json",
        )  # fmt: skip
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stdout
    assert report["passed"] and report["marker_found"]
    assert report["spandsp_digits"] == report["multimon_digits"] == 0
    assert report["telephone_events"] == report["info_with_digits"] == 0
    assert PAN not in proc.stdout + proc.stderr
    assert PAN[-8:] not in proc.stdout + proc.stderr


@pytest.mark.e2e
@pytest.mark.timeout(150)
def test_probe_without_a_masker_finds_every_digit_and_fails():
    agent_port = free_port()
    uri = f"sip:agent@127.0.0.1:{agent_port}"
    proc = run_probe_cli("--via", uri, "--agent", uri, "--no-baseline")
    assert proc.returncode == 1
    assert "FAIL: digits recoverable" in proc.stdout
    assert "spandsp decode:   17 digit(s)" in proc.stdout
    assert PAN not in proc.stdout + proc.stderr


@pytest.mark.e2e
@pytest.mark.timeout(150)
def test_probe_reports_a_service_killed_mid_call_without_a_traceback(tmp_path):
    agent_port = free_port()
    with ServiceProcess(pbx_port=agent_port, workdir=tmp_path / "svc") as service:
        probe = subprocess.Popen(
            [sys.executable, "-m", "masker.cli", "probe", "--no-baseline", "--json",
             "--via", f"sip:payment@{service.uri_host}",
             "--agent", f"sip:agent@127.0.0.1:{agent_port}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        service.wait_log("call.connected", timeout=60)
        time.sleep(1.5)  # the probe is keying the card in-band
        service.proc.kill()
        out, err = probe.communicate(timeout=120)
    report = json.loads(out)
    assert probe.returncode == 1
    assert "Traceback" not in err
    assert report["dropped"].startswith("the call dropped")
    assert PAN not in out + err
