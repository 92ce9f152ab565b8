"""`masker probe`: one real test call through a deployed masker, judged at the agent.

A pjsua2 caller keys a test card (PAN in-band as audio, expiry by RFC 4733,
CVV by SIP INFO) towards `via`; a local pjsua2 agent phone listening at the
`agent` address answers and records.  The report says whether any digit is
recoverable at the agent (spandsp and multimon-ng on the recording,
telephone-events, INFO bodies), how many ms of each keyed tone leaked, the
one-way delay (and the delay the masker adds over a direct call), and what the
service published about the capture (token events, via its API when given).

The report holds counts and masked values only: the card is never printed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import structlog

from masker.errors import UserError
from masker.offline.receivers import multimon_digits, spandsp_digits
from masker.phones.analysis import (
    accepted_marker,
    best_marker_match,
    leaked_ms,
    round_trip_samples,
)
from masker.phones.client import PhoneClient, PhoneError
from masker.phones.tones import RATE, KeyedSignal, keyed_signal

log = structlog.get_logger()

DEFAULT_CARD = "4111111111111111"
SIP_URI = re.compile(r"^sips?:(?:(?P<user>[^@;]+)@)?(?P<host>[^:;>]+)(?::(?P<port>\d+))?")
INFO_DIGIT = re.compile(r"(?i)signal\s*=\s*[0-9a-d*#]|^\s*[0-9a-d*#]\s*$", re.MULTILINE)
#: A tone counts as leaking when at least this much of it is audible at the agent.
LEAK_ALARM_MS = 10.0


def keys_for_card(pan: str, today: dt.date | None = None) -> tuple[str, str, str]:
    """(PAN#, MMYY#, CVV#): the three fields a caller keys, each ended by '#'.

    The expiry is December three years ahead; the CVV has the brand's length
    (4 for American Express, 3 otherwise).
    """
    if not pan.isdigit() or not 12 <= len(pan) <= 19:
        raise UserError("--card must be 12 to 19 digits")
    year = (today or dt.date.today()).year + 3
    cvv = "1234" if pan[:2] in ("34", "37") else "123"
    return pan + "#", f"12{year % 100:02d}#", cvv + "#"


def parse_sip_uri(uri: str) -> tuple[str, str, int]:
    """(user, host, port) of a sip: URI; port 5060 when absent."""
    m = SIP_URI.match(uri.strip().strip("<>"))
    if not m:
        raise UserError(f"not a SIP URI: {uri!r}")
    return m.group("user") or "", m.group("host"), int(m.group("port") or 5060)


def with_tls(uri: str) -> str:
    """A SIP URI with ;transport=tls (kept when it has it)."""
    if "transport=tls" in uri.lower():
        return uri
    if uri.endswith(">"):
        return uri[:-1] + ";transport=tls>"
    return uri + ";transport=tls"


def is_local_address(host: str) -> bool:
    """True when this host can bind `host` (so the agent phone can listen there)."""
    try:
        addr = socket.gethostbyname(host)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((addr, 0))
        return True
    except OSError:
        return False


@dataclass(frozen=True)
class CallDropped:
    """A probe call that connected and then went away before the probe was done."""

    after_s: float
    step: str

    def describe(self) -> str:
        return f"the call dropped {self.after_s:.1f} s after it was placed, while {self.step}"


@dataclass
class ProbeReport:
    """The outcome of one probe call: counts and measurements, never digits."""

    via: str
    agent: str
    connected: bool = False
    status_code: int = 0
    setup_ms: float | None = None
    keyed: dict[str, int] = field(default_factory=dict)
    codec: str = ""
    #: what each leg negotiated, as its phone reports it: {"caller"|"agent":
    #: {"transport": "udp"|"tls", "codec": ..., "srtp": crypto suite or ""}}
    legs: dict[str, dict[str, str]] = field(default_factory=dict)
    recording_s: float = 0.0
    marker_found: bool = False
    #: the marker's best normalised correlation in the agent's recording
    marker_correlation: float | None = None
    spandsp_digits: int = 0
    multimon_digits: int = 0
    telephone_events: int = 0
    info_requests: int = 0
    info_with_digits: int = 0
    leaked_ms: list[float] = field(default_factory=list)
    round_trip_ms: float | None = None
    direct_round_trip_ms: float | None = None
    added_delay_ms: float | None = None
    token_events: list[dict[str, Any]] = field(default_factory=list)
    token_source: str = "none"
    dropped: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def recoverable(self) -> bool:
        """Any digit recoverable at the agent, or any keyed tone audibly leaked."""
        return bool(
            self.spandsp_digits
            or self.multimon_digits
            or self.telephone_events
            or self.info_with_digits
            or (self.leaked_ms and max(self.leaked_ms) >= LEAK_ALARM_MS)
        )

    @property
    def passed(self) -> bool:
        return self.connected and self.marker_found and not self.recoverable

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["recoverable"] = self.recoverable
        d["passed"] = self.passed
        d["leaked_ms_total"] = float(sum(self.leaked_ms))
        d["leaked_ms_max"] = float(max(self.leaked_ms, default=0.0))
        return d

    def render(self) -> str:
        """Human-readable report."""

        def ms(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.1f} ms"

        lines = [
            f"masker probe via {self.via} -> agent {self.agent}",
            f"  call:             {'connected' if self.connected else 'FAILED'}"
            f" (status {self.status_code}, setup {ms(self.setup_ms)}, codec {self.codec or '?'})",
            *(
                f"  {leg + ' leg:':<18}{m.get('transport', '?').upper()},"
                f" {m.get('codec') or '?'}, {'SRTP ' + m['srtp'] if m.get('srtp') else 'plain RTP'}"
                for leg, m in self.legs.items()
            ),
            "  keyed:            "
            + ", ".join(f"{n} digits {how}" for how, n in self.keyed.items()),
            f"  agent recording:  {self.recording_s:.1f} s,"
            f" marker {'found' if self.marker_found else 'NOT found'}",
            f"  spandsp decode:   {self.spandsp_digits} digit(s)",
            f"  multimon-ng:      {self.multimon_digits} digit(s)",
            f"  telephone-events: {self.telephone_events} received by the agent",
            f"  SIP INFO:         {self.info_requests} received,"
            f" {self.info_with_digits} with digits",
            f"  leaked tone:      total {sum(self.leaked_ms):.0f} ms, worst key"
            f" {max(self.leaked_ms, default=0.0):.0f} ms over {len(self.leaked_ms)} keyed tones"
            " (5 ms resolution)",
            f"  round trip:       {ms(self.round_trip_ms)} via masker,"
            f" {ms(self.direct_round_trip_ms)} direct",
            f"  added delay:      {ms(self.added_delay_ms)} one way (caller to agent;"
            " +-20 ms: the phones' jitter buffers settle per call)",
            f"  token events:     {len(self.token_events)} ({self.token_source})",
        ]
        captures = [e for e in self.token_events if e.get("event") == "capture"]
        shown = [e for e in self.token_events if e.get("event") != "capture"]
        if captures:  # the fullest progress seen, then how it ended
            fullest = max(captures, key=lambda e: sum(f.get("entered") or 0 for f in e["fields"]))
            shown = [fullest, *shown] + ([captures[-1]] if captures[-1] is not fullest else [])
        for ev in shown:
            lines.append(f"    {describe_token_event(ev)}")
        lines += [f"  note: {n}" for n in self.notes]
        if self.passed:
            lines.append("PASS: no digit recoverable at the agent")
        elif self.recoverable:
            lines.append("FAIL: digits recoverable at the agent")
        elif self.dropped:
            lines.append(f"FAIL: {self.dropped}")
        else:
            lines.append("FAIL: probe incomplete")
        return "\n".join(lines)


def describe_token_event(ev: dict[str, Any]) -> str:
    """One line for a (public, masked) capture or token event."""
    if ev.get("event") == "token":
        return f"token issued: {ev.get('kind')} {ev.get('brand')} {ev.get('display')}"
    parts = []
    for f in ev.get("fields") or []:
        mark = "ok" if f.get("complete") and f.get("valid") else (f.get("reason") or "")
        parts.append(f"{f.get('field')} {f.get('entered')} keyed {mark}".rstrip())
    return f"capture {ev.get('state')}: " + ", ".join(parts)


@dataclass
class ProbeSettings:
    via: str
    agent: str
    card: str = DEFAULT_CARD
    api_url: str | None = None
    api_key: str | None = None
    baseline: bool = True
    workdir: Path | None = None
    timeout_s: float = 15.0
    #: SIP over TLS for both phones: a folder with ca.pem (trusted) and, for the agent
    #: phone's TLS listener at the --agent port, server.pem and server.key
    tls_dir: Path | None = None
    #: both phones require SDES-SRTP
    srtp: bool = False
    #: the only codec the caller offers (the agent phone prefers it): PCMU, PCMA, G722
    codec: str = "PCMU"


def write_wav(path: Path, pcm: np.ndarray) -> Path:
    sf.write(path, pcm, RATE, subtype="PCM_16")
    return path


def measure_call(
    caller: PhoneClient,
    agent: PhoneClient,
    uri: str,
    signal: KeyedSignal,
    wav: Path,
    after_play: list[tuple[str, str]],
    timeout_s: float,
) -> dict[str, Any]:
    """Place one call, play `wav`, key `after_play` digits by signalling, hang up.

    Returns the raw observations: recording, timings, events at the agent.
    """
    since = len(agent.events)
    t0 = time.monotonic()
    c = caller.call(uri, record=wav.with_name(f"caller-{wav.stem}.wav"))
    obs: dict[str, Any] = {"call": c}
    try:
        ev = caller.wait_event(
            lambda e: e["event"] == "state" and e["call"] == c
            and e["state"] in ("CONFIRMED", "DISCONNECTED"),
            timeout_s,
        )  # fmt: skip
    except PhoneError:
        caller.hangup(c)
        ev = caller.wait_state(c, "DISCONNECTED")
    obs["code"] = ev["code"]
    if ev["state"] != "CONFIRMED":
        obs["connected"] = False
        return obs
    obs["connected"] = True
    obs["setup_ms"] = (ev["t"] - t0) * 1000
    step = "waiting for the agent leg"
    try:
        inc = agent.wait_incoming(timeout=timeout_s, since=since)
        a = inc["call"]
        step = "waiting for both phones to record"
        agent.wait_call_event(a, "recording", timeout_s)
        caller.wait_call_event(c, "recording", timeout_s)
        agent_info, caller_info = agent.info(a), caller.info(c)
        obs["codec"] = agent_info.get("codec", "")
        obs["legs"] = {
            name: {"codec": info.get("codec", ""), "srtp": info.get("srtp", "")}
            for name, info in (("caller", caller_info), ("agent", agent_info))
        }
        time.sleep(0.3)
        step = "keying in-band"
        caller.play(c, wav, monitor=True)
        time.sleep(signal.duration_s + 0.2)
        for digits, method in after_play:
            step = f"keying by {method}"
            # INFO one key press every 250 ms, as a person keys (pjsua would send all at once)
            interval = 250 if method == "info" else 0
            caller.send_dtmf(c, digits, method, duration_ms=100, interval_ms=interval)
            time.sleep(0.25 * len(digits) + 0.5)
        step = "hanging up"
        caller.hangup(c)
        step = "collecting the agent's recording"
        path = agent.wait_recorded(a, timeout_s)
        obs["recording"], _ = sf.read(path, dtype="int16")
        caller_rec, _ = sf.read(caller.wait_recorded(c, timeout_s), dtype="int16")
    except PhoneError:
        obs["dropped"] = CallDropped(after_s=time.monotonic() - t0, step=step)
        _hang_up_quietly(caller, c)
        return obs
    obs["round_trip"] = round_trip_samples(caller_rec, signal)
    obs["agent_dtmf"] = list(agent.calls[a].dtmf)
    obs["agent_infos"] = list(agent.calls[a].infos)
    return obs


def _hang_up_quietly(phone: PhoneClient, call: int) -> None:
    """End our side of a call that may already be gone."""
    with contextlib.suppress(PhoneError):
        phone.hangup(call)


def api_calls(api_url: str, api_key: str) -> list[dict[str, Any]]:
    req = urllib.request.Request(
        api_url.rstrip("/") + "/api/calls", headers={"Authorization": f"Bearer {api_key}"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return list(json.load(resp).get("calls", []))


def capture_event(capture: dict[str, Any]) -> dict[str, Any]:
    """The public (masked) gist of a capture snapshot: state and per-field progress."""
    fields = [
        {k: f.get(k) for k in ("field", "entered", "complete", "valid", "reason", "attempt")}
        for f in capture.get("fields") or []
    ]
    return {"event": "capture", "state": capture.get("state"), "fields": fields}


class CapturePoller:
    """Polls the service API during the probe call and keeps every change of the
    capture (masked progress) and the token event, for calls started after `since`."""

    def __init__(self, api_url: str, api_key: str, since_epoch: float, every_s: float = 0.2):
        self.api_url, self.api_key, self.since = api_url, api_key, since_epoch
        self.every_s = every_s
        self.events: list[dict[str, Any]] = []
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CapturePoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.poll_once()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.poll_once()

    def poll_once(self) -> None:
        try:
            calls = api_calls(self.api_url, self.api_key)
        except (OSError, urllib.error.URLError, ValueError) as exc:
            self.error = type(exc).__name__
            return
        for call in calls:
            capture = call.get("capture")
            if (call.get("started") or 0) + 1 < self.since or not capture:
                continue
            ev = capture_event(capture)
            mine = [e for e in self.events if e.get("event") == "capture"]
            if not mine or mine[-1]["state"] != ev["state"] or mine[-1]["fields"] != ev["fields"]:
                self.events.append(ev)
            token = capture.get("token")
            if token and not any(e.get("event") == "token" for e in self.events):
                self.events.append(
                    {k: token.get(k) for k in ("event", "token", "kind", "brand", "display")}
                )


def run_probe(settings: ProbeSettings) -> ProbeReport:
    """Run the probe call (and a direct baseline call) and analyse what the agent got."""
    report = ProbeReport(via=settings.via, agent=settings.agent)
    pan_keys, expiry_keys, cvv_keys = keys_for_card(settings.card)
    agent_user, agent_host, agent_port = parse_sip_uri(settings.agent)
    parse_sip_uri(settings.via)
    if not is_local_address(agent_host):
        raise UserError("--agent must be an address of this host (the probe's agent listens there)")
    agent_host = socket.gethostbyname(agent_host)
    if settings.workdir is None:
        # the keyed WAV is the card as audio: keep it only when asked to (--keep)
        with tempfile.TemporaryDirectory(prefix="masker-probe-") as tmp:
            return run_probe(replace(settings, workdir=Path(tmp)))
    workdir = settings.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    keyed = keyed_signal(pan_keys)
    marker_only = keyed_signal("")
    keyed_wav = write_wav(workdir / "keyed.wav", keyed.pcm)
    marker_wav = write_wav(workdir / "marker.wav", marker_only.pcm)
    report.keyed = {"in-band": len(pan_keys), "rfc4733": len(expiry_keys), "info": len(cvv_keys)}
    epoch0 = time.time()
    tls, srtp = settings.tls_dir, "mandatory" if settings.srtp else "off"
    codec = settings.codec.upper()
    others = ",".join(c for c in ("PCMU", "PCMA") if c != codec)
    via = with_tls(settings.via) if tls is not None else settings.via
    direct_uri = with_tls(settings.agent) if tls is not None else settings.agent
    try:
        agent = PhoneClient(
            agent_user or "agent",
            # over TLS the agent phone listens for TLS at the --agent port, UDP elsewhere
            sip_port=0 if tls is not None else agent_port,
            tls_port=agent_port if tls is not None else 0,
            address=agent_host,
            codecs=f"{codec},{others}",
            srtp=srtp,
            tls_dir=tls,
        )
    except PhoneError as exc:
        raise UserError(f"cannot start the agent phone at {agent_host}:{agent_port}") from exc
    try:
        with PhoneClient(
            "probe", address=agent_host, codecs=codec, srtp=srtp, tls_dir=tls
        ) as caller:
            agent.auto_answer(200, record_dir=workdir, echo=True)
            if settings.baseline:
                direct = measure_call(
                    caller, agent, direct_uri, marker_only, marker_wav, [], settings.timeout_s
                )
                if direct["connected"] and direct.get("round_trip") is not None:
                    report.direct_round_trip_ms = 1000 * direct["round_trip"] / RATE
                else:
                    report.notes.append("direct baseline call to the agent failed")
            poller = None
            if settings.api_url and settings.api_key:
                poller = CapturePoller(settings.api_url, settings.api_key, epoch0)
                poller.__enter__()
            try:
                obs = measure_call(
                    caller,
                    agent,
                    via,
                    keyed,
                    keyed_wav,
                    [(expiry_keys, "rfc4733"), (cvv_keys, "info")],
                    settings.timeout_s,
                )
            finally:
                if poller is not None:
                    poller.__exit__(None, None, None)
    finally:
        agent.close()
    analyse(report, obs, keyed)
    for leg in report.legs.values():
        leg["transport"] = "tls" if tls is not None else "udp"
    if poller is not None:
        report.token_events = poller.events
        report.token_source = "service API"
        if poller.error and not poller.events:
            report.notes.append(f"service API not readable: {poller.error}")
    return report


def analyse(report: ProbeReport, obs: dict[str, Any], keyed: KeyedSignal) -> None:
    """Fill the report from one call's observations (pure apart from the receivers)."""
    report.connected = bool(obs.get("connected"))
    report.status_code = int(obs.get("code", 0))
    if not report.connected:
        report.notes.append("the call through the masker did not connect")
        return
    report.setup_ms = obs.get("setup_ms")
    report.codec = obs.get("codec", "")
    report.legs = obs.get("legs", {})
    dropped = obs.get("dropped")
    if dropped is not None:
        report.dropped = dropped.describe()
        report.notes.append(report.dropped)
        return
    rec = obs["recording"]
    report.recording_s = len(rec) / RATE
    report.spandsp_digits = len(spandsp_digits(rec))
    report.multimon_digits = len(multimon_digits(rec))
    report.telephone_events = sum(1 for e in obs["agent_dtmf"] if e["method"] == "rfc4733")
    infos = obs["agent_infos"]
    report.info_requests = len(infos)
    report.info_with_digits = max(
        sum(1 for e in infos if INFO_DIGIT.search(e.get("body", ""))),
        sum(1 for e in obs["agent_dtmf"] if e["method"] == "info"),
    )
    best = best_marker_match(rec, keyed)
    report.marker_correlation = None if best is None else round(best.correlation, 3)
    align = accepted_marker(best)
    report.marker_found = align is not None
    if align is None:
        report.notes.append("the timing marker did not reach the agent: audio path broken?")
        return
    report.leaked_ms = leaked_ms(rec, keyed, align.lag)
    if obs.get("round_trip") is None:
        report.notes.append("the echoed marker did not come back: round trip not measured")
        return
    report.round_trip_ms = 1000 * obs["round_trip"] / RATE
    if report.direct_round_trip_ms is not None:
        # the masker delays only the caller-to-agent direction
        report.added_delay_ms = report.round_trip_ms - report.direct_round_trip_ms
