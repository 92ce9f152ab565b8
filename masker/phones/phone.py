"""A pjsua2 SIP phone process driven by JSON lines (commands on stdin, events on stdout).

Why a process: the pjsua2 wheel allows four calls per process, and pjsua must own
its main thread.  The main loop alternates `libHandleEvents` with draining the
command queue filled by a stdin reader thread, so every pjsua call happens on
the main thread (threadCnt=0, mainThreadOnly).

Commands: {"id": n, "cmd": name, ...}; every command gets one reply
{"reply": n, "ok": bool, ...}.  Events: {"event": name, "t": monotonic, ...}.
Digits and INFO bodies travel only over this pipe; they are never logged.

Run: python -m masker.phones.phone --sip-port 0 --rtp-port 40000 [--codecs PCMU,PCMA,G722]
     [--srtp off|optional|mandatory] [--tls-dir DIR (ca.pem, server.pem, server.key)]
With --tls-dir the phone also listens for SIP over TLS (its contact then says
transport=tls) and verifies servers it calls against DIR/ca.pem.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import sys
import threading
import time
from typing import Any

import pjsua2 as pj

STATE_NAMES = {
    pj.PJSIP_INV_STATE_NULL: "NULL",
    pj.PJSIP_INV_STATE_CALLING: "CALLING",
    pj.PJSIP_INV_STATE_INCOMING: "INCOMING",
    pj.PJSIP_INV_STATE_EARLY: "EARLY",
    pj.PJSIP_INV_STATE_CONNECTING: "CONNECTING",
    pj.PJSIP_INV_STATE_CONFIRMED: "CONFIRMED",
    pj.PJSIP_INV_STATE_DISCONNECTED: "DISCONNECTED",
}
MEDIA_STATUS = {
    pj.PJSUA_CALL_MEDIA_NONE: "none",
    pj.PJSUA_CALL_MEDIA_ACTIVE: "active",
    pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "local_hold",
    pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "remote_hold",
    pj.PJSUA_CALL_MEDIA_ERROR: "error",
}
DTMF_METHODS = {"rfc4733": pj.PJSUA_DTMF_METHOD_RFC2833, "info": pj.PJSUA_DTMF_METHOD_SIP_INFO}
METHOD_NAMES = {pj.PJSUA_DTMF_METHOD_RFC2833: "rfc4733", pj.PJSUA_DTMF_METHOD_SIP_INFO: "info"}
DTMF_IS_UPDATE = 1  # pjmedia_stream_dtmf_event_flags; not exported by the wheel
CODEC_IDS = {"PCMU": "PCMU/8000/1", "PCMA": "PCMA/8000/1", "G722": "G722/16000/1"}
#: --srtp: SDES-SRTP use of the account (RFC 4568 keys in the SDP, over any transport)
SRTP_USE = {
    "off": pj.PJMEDIA_SRTP_DISABLED,
    "optional": pj.PJMEDIA_SRTP_OPTIONAL,
    "mandatory": pj.PJMEDIA_SRTP_MANDATORY,
}
REPORTED_HEADERS = ("from", "to", "p-asserted-identity", "diversion", "user-agent", "call-id")


def srtp_suite(dump: str) -> str:
    """The SRTP crypto suite a pjsua call dump reports active ("" when plain RTP)."""
    for line in dump.splitlines():
        if "SRTP status: Active" in line:
            return line.split("Crypto-suite:", 1)[-1].split()[0] if "Crypto-suite:" in line else "?"
    return ""


class Output:
    """Serialises JSON lines to the original stdout from any thread.

    pjlib writes its console log to file descriptor 1, so the protocol keeps a
    private copy of stdout and fd 1 is pointed at stderr.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stream = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)

    def send(self, obj: dict[str, Any]) -> None:
        line = json.dumps(obj, separators=(",", ":"))
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def event(self, name: str, **fields: Any) -> None:
        self.send({"event": name, "t": time.monotonic(), **fields})


def split_message(whole: str) -> tuple[str, dict[str, str], str]:
    """First line, lower-cased headers (first value wins) and body of a SIP message."""
    head, _, body = whole.replace("\r\n", "\n").partition("\n\n")
    lines = head.split("\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), value.strip())
    return lines[0], headers, body


class PhoneCall(pj.Call):
    """One call: forwards pjsua callbacks as events and owns its media objects."""

    def __init__(self, phone: Phone, account: pj.Account, call_id: int = pj.PJSUA_INVALID_ID):
        super().__init__(account, call_id)
        self.phone = phone
        self.recorder: pj.AudioMediaRecorder | None = None
        self.players: list[pj.AudioMediaPlayer] = []
        self.record_path: str | None = None
        self.media_active = False
        self.pending_record: str | None = None
        self.answer_plan: list[tuple[float, int]] = []
        self.echo_wanted = False
        self.dtmf_queue: list[tuple[float, str, int, int]] = []

    @property
    def cid(self) -> int:
        return self.getId()

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        ci = self.getInfo()
        self.phone.out.event(
            "state",
            call=ci.id,
            state=STATE_NAMES.get(ci.state, str(ci.state)),
            code=int(ci.lastStatusCode),
            reason=ci.lastReason,
        )
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.phone.on_disconnected(self, ci.id)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        ci = self.getInfo()
        status = "none"
        for mi in ci.media:
            if mi.type == pj.PJMEDIA_TYPE_AUDIO:
                status = MEDIA_STATUS.get(mi.status, str(mi.status))
        codec = ""
        with contextlib.suppress(pj.Error):
            codec = self.getStreamInfo(0).codecName
        self.media_active = status == "active"
        self.phone.out.event("media", call=ci.id, status=status, codec=codec)
        if self.media_active and self.pending_record:
            path, self.pending_record = self.pending_record, None
            self.start_record(path)
        if self.media_active and self.echo_wanted:
            self.echo()

    def onDtmfEvent(self, prm: pj.OnDtmfEventParam) -> None:
        if not prm.flags & DTMF_IS_UPDATE:  # report each key press once, at its start
            self.phone.out.event(
                "dtmf",
                call=self.cid,
                digit=prm.digit,
                method=METHOD_NAMES.get(prm.method, str(prm.method)),
                duration=int(prm.duration),
            )

    def onCallTsxState(self, prm: pj.OnCallTsxStateParam) -> None:
        e = prm.e
        if e.type != pj.PJSIP_EVENT_TSX_STATE or e.body.tsxState.type != pj.PJSIP_EVENT_RX_MSG:
            return
        tsx = e.body.tsxState.tsx
        if tsx.role != pj.PJSIP_ROLE_UAS:
            return
        whole = e.body.tsxState.src.rdata.wholeMsg
        first, headers, body = split_message(whole)
        method = first.split(" ", 1)[0]
        if method == "INFO":
            self.phone.out.event(
                "info_rx", call=self.cid, content_type=headers.get("content-type", ""), body=body
            )
        elif method == "INVITE" and self.getInfo().state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.phone.out.event("reinvite_rx", call=self.cid, sdp=body)

    def start_record(self, path: str) -> None:
        self.stop_record()
        rec = pj.AudioMediaRecorder()
        rec.createRecorder(path)
        self.getAudioMedia(-1).startTransmit(rec)
        self.recorder, self.record_path = rec, path
        self.phone.out.event("recording", call=self.cid, path=path)

    def stop_record(self) -> str | None:
        path = self.record_path
        if self.recorder is not None:
            with contextlib.suppress(pj.Error):
                self.getAudioMedia(-1).stopTransmit(self.recorder)
            # Dropping the recorder destroys it; the conference bridge removes the
            # port on its next tick, and only then is the WAV header written.
            self.recorder = None
        self.record_path = None
        return path

    def play(self, path: str, monitor: bool = False) -> None:
        """Play a WAV into the call; `monitor` also mixes it into this call's recording,
        so that sent and returned audio share one timeline (round-trip delay)."""
        player = pj.AudioMediaPlayer()
        player.createPlayer(path, pj.PJMEDIA_FILE_NO_LOOP)
        player.startTransmit(self.getAudioMedia(-1))
        if monitor and self.recorder is not None:
            player.startTransmit(self.recorder)
        self.players.append(player)

    def echo(self) -> None:
        """Send back whatever the call receives (loop the call's conference port)."""
        am = self.getAudioMedia(-1)
        am.startTransmit(am)

    def release_media(self) -> None:
        self.stop_record()
        self.players.clear()


class PhoneAccount(pj.Account):
    def __init__(self, phone: Phone):
        super().__init__()
        self.phone = phone

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        call = PhoneCall(self.phone, self, prm.callId)
        self.phone.calls[prm.callId] = call
        first, headers, body = split_message(prm.rdata.wholeMsg)
        self.phone.out.event(
            "incoming",
            call=prm.callId,
            uri=first.split(" ")[1] if " " in first else "",
            headers={k: headers[k] for k in REPORTED_HEADERS if k in headers},
            has_sdp=bool(body.strip()),
        )
        self.phone.auto_answer(call)


class Phone:
    """The endpoint, its account and calls, and the command handlers."""

    def __init__(self, args: argparse.Namespace):
        self.out = Output()
        self.args = args
        self.calls: dict[int, PhoneCall] = {}
        self.commands: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.running = True
        self.auto: dict[str, Any] | None = None
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = 4
        cfg.uaConfig.userAgent = "masker-test-phone"
        cfg.logConfig.level = args.log_level
        cfg.logConfig.consoleLevel = args.log_level
        cfg.logConfig.msgLogging = 0  # SIP INFO bodies would carry digits
        cfg.medConfig.clockRate = 8000
        cfg.medConfig.sndClockRate = 8000
        cfg.medConfig.channelCount = 1
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        # Keep the (null) sound device, which clocks the conference bridge, open
        # between calls: auto-closing it a second after a call ends stops the
        # media clock of a call that started meanwhile (its RTP and DTMF stall).
        cfg.medConfig.sndAutoCloseTime = -1
        cfg.medConfig.ptime = args.ptime
        if args.jb_ms > 0:  # a fixed jitter buffer keeps delay measurements comparable
            cfg.medConfig.jbInit = args.jb_ms
            cfg.medConfig.jbMinPre = args.jb_ms
            cfg.medConfig.jbMaxPre = args.jb_ms
            cfg.medConfig.jbMax = max(4 * args.jb_ms, 200)
        self.ep.libInit(cfg)
        tcfg = pj.TransportConfig()
        tcfg.port = args.sip_port
        tcfg.boundAddress = args.address
        tid = self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        self.sip_port = int(self.ep.transportGetInfo(tid).localName.rsplit(":", 1)[1])
        self.tls_port = 0
        if args.tls_dir:
            tls = pj.TransportConfig()
            tls.boundAddress = args.address
            tls.port = args.tls_port
            tls.tlsConfig.CaListFile = os.path.join(args.tls_dir, "ca.pem")
            if os.path.exists(os.path.join(args.tls_dir, "server.key")):  # else a client only
                tls.tlsConfig.certFile = os.path.join(args.tls_dir, "server.pem")
                tls.tlsConfig.privKeyFile = os.path.join(args.tls_dir, "server.key")
            tls.tlsConfig.method = pj.PJSIP_TLSV1_2_METHOD
            tls.tlsConfig.verifyServer = True
            tid = self.ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, tls)
            self.tls_port = int(self.ep.transportGetInfo(tid).localName.rsplit(":", 1)[1])
        self.ep.libStart()
        self.ep.audDevManager().setNullDev()
        self.set_codecs(args.codecs.split(","))
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{args.user}@{args.address}:{self.sip_port}"
        acfg.mediaConfig.transportConfig.port = args.rtp_port
        acfg.mediaConfig.transportConfig.portRange = args.rtp_range
        acfg.mediaConfig.transportConfig.boundAddress = args.address
        acfg.sipConfig.contactForced = ""
        if args.tls_dir:
            acfg.sipConfig.transportId = tid  # contact and requests on TLS
        acfg.mediaConfig.srtpUse = SRTP_USE[args.srtp]
        acfg.mediaConfig.srtpSecureSignaling = 0  # SDES over any transport (test phone)
        self.account = PhoneAccount(self)
        self.account.create(acfg)

    # -- helpers -------------------------------------------------------------
    def set_codecs(self, names: list[str]) -> None:
        """Offer only the named codecs (G.711, G.722), in that order (telephone-event stays)."""
        wanted = [CODEC_IDS[n.strip().upper()] for n in names if n.strip()]
        for info in self.ep.codecEnum2():
            prio = 0
            if info.codecId in wanted:
                prio = 250 - wanted.index(info.codecId)
            self.ep.codecSetPriority(info.codecId, prio)

    def call_of(self, cmd: dict[str, Any]) -> PhoneCall:
        call = self.calls.get(int(cmd["call"]))
        if call is None:
            raise KeyError(f"no call {cmd['call']}")
        return call

    def auto_answer(self, call: PhoneCall) -> None:
        plan = self.auto
        if not plan:
            return
        now = time.monotonic()
        if plan.get("record_dir"):
            call.pending_record = os.path.join(plan["record_dir"], f"call-{call.cid}.wav")
        call.echo_wanted = bool(plan.get("echo"))
        steps = []
        if plan.get("early"):
            steps.append((now, int(plan["early"])))
        steps.append((now + plan.get("delay_ms", 0) / 1000.0, int(plan.get("code", 200))))
        call.answer_plan = steps
        self.run_answer_plan(call)

    def run_answer_plan(self, call: PhoneCall) -> None:
        now = time.monotonic()
        while call.answer_plan and call.answer_plan[0][0] <= now:
            _, code = call.answer_plan.pop(0)
            prm = pj.CallOpParam()
            prm.statusCode = code
            try:
                call.answer(prm) if code < 300 else call.hangup(prm)
            except pj.Error as exc:
                self.out.event("error", call=call.cid, where="auto_answer", msg=exc.info())

    def on_disconnected(self, call: PhoneCall, cid: int) -> None:
        path = call.stop_record()
        if path:
            self.out.event("recorded", call=cid, path=path)
        call.players.clear()
        call.answer_plan = []
        call.dtmf_queue = []
        self.calls.pop(cid, None)

    # -- commands ------------------------------------------------------------
    def cmd_call(self, cmd: dict[str, Any]) -> dict[str, Any]:
        call = PhoneCall(self, self.account)
        prm = pj.CallOpParam(True)
        if cmd.get("no_sdp"):
            prm.opt.flag |= pj.PJSUA_CALL_NO_SDP_OFFER
        if cmd.get("record"):
            call.pending_record = cmd["record"]
        for name, value in (cmd.get("headers") or {}).items():
            h = pj.SipHeader()
            h.hName, h.hValue = name, value
            prm.txOption.headers.append(h)
        call.makeCall(cmd["uri"], prm)
        self.calls[call.cid] = call
        return {"call": call.cid}

    def cmd_answer(self, cmd: dict[str, Any]) -> dict[str, Any]:
        call = self.call_of(cmd)
        prm = pj.CallOpParam()
        prm.statusCode = int(cmd.get("code", 200))
        if cmd.get("record"):
            call.pending_record = cmd["record"]
        call.answer(prm)
        return {}

    def cmd_hangup(self, cmd: dict[str, Any]) -> dict[str, Any]:
        call = self.call_of(cmd)
        prm = pj.CallOpParam()
        if cmd.get("code"):
            prm.statusCode = int(cmd["code"])
        call.hangup(prm)
        return {}

    def cmd_dtmf(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Send digits by signalling; `interval_ms` spaces them like key presses
        (pjsua otherwise sends one INFO per digit all at once)."""
        call = self.call_of(cmd)
        method = DTMF_METHODS[cmd.get("method", "rfc4733")]
        duration = int(cmd.get("duration_ms", 160))
        interval = float(cmd.get("interval_ms", 0)) / 1000.0
        digits = str(cmd["digits"])
        if interval <= 0:
            self.send_dtmf(call, digits, method, duration)
            return {}
        now = time.monotonic()
        call.dtmf_queue += [(now + i * interval, d, method, duration) for i, d in enumerate(digits)]
        self.run_dtmf_queue(call)
        return {}

    @staticmethod
    def send_dtmf(call: PhoneCall, digits: str, method: int, duration: int) -> None:
        prm = pj.CallSendDtmfParam()
        prm.digits = digits
        prm.method = method
        prm.duration = duration
        call.sendDtmf(prm)

    def run_dtmf_queue(self, call: PhoneCall) -> None:
        now = time.monotonic()
        while call.dtmf_queue and call.dtmf_queue[0][0] <= now:
            _, digit, method, duration = call.dtmf_queue.pop(0)
            try:
                self.send_dtmf(call, digit, method, duration)
            except pj.Error as exc:
                self.out.event("error", call=call.cid, where="dtmf", msg=exc.info())
                call.dtmf_queue.clear()

    def cmd_send_info(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """An INFO request with any body (e.g. application/dtmf, which pjsua never sends)."""
        prm = pj.CallSendRequestParam()
        prm.method = "INFO"
        prm.txOption.contentType = str(cmd["content_type"])
        prm.txOption.msgBody = str(cmd["body"])
        self.call_of(cmd).sendRequest(prm)
        return {}

    def cmd_play(self, cmd: dict[str, Any]) -> dict[str, Any]:
        call = self.call_of(cmd)
        t = time.monotonic()
        call.play(cmd["path"], monitor=bool(cmd.get("monitor")))
        return {"t_start": t}

    def cmd_echo(self, cmd: dict[str, Any]) -> dict[str, Any]:
        call = self.call_of(cmd)
        call.echo_wanted = True
        if call.media_active:
            call.echo()
        return {}

    def cmd_record(self, cmd: dict[str, Any]) -> dict[str, Any]:
        call = self.call_of(cmd)
        if call.media_active:
            call.start_record(cmd["path"])
        else:
            call.pending_record = cmd["path"]
        return {}

    def cmd_stop_record(self, cmd: dict[str, Any]) -> dict[str, Any]:
        call = self.call_of(cmd)
        return {"path": call.stop_record()}

    def cmd_hold(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self.call_of(cmd).setHold(pj.CallOpParam(True))
        return {}

    def cmd_unhold(self, cmd: dict[str, Any]) -> dict[str, Any]:
        prm = pj.CallOpParam(True)
        prm.opt.flag |= pj.PJSUA_CALL_UNHOLD
        self.call_of(cmd).reinvite(prm)
        return {}

    def cmd_reinvite(self, cmd: dict[str, Any]) -> dict[str, Any]:
        if cmd.get("codecs"):
            self.set_codecs(list(cmd["codecs"]))
        prm = pj.CallOpParam(True)
        prm.opt.flag |= pj.PJSUA_CALL_REINIT_MEDIA
        self.call_of(cmd).reinvite(prm)
        return {}

    def cmd_codecs(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self.set_codecs(list(cmd["codecs"]))
        return {}

    def cmd_auto_answer(self, cmd: dict[str, Any]) -> dict[str, Any]:
        keys = ("code", "early", "delay_ms", "record_dir", "echo")
        self.auto = {k: cmd[k] for k in keys if k in cmd}
        if cmd.get("off"):
            self.auto = None
        return {}

    def cmd_info(self, cmd: dict[str, Any]) -> dict[str, Any]:
        call = self.call_of(cmd)
        ci = call.getInfo()
        codec = ""
        remote_rtp = ""
        srtp = ""
        try:
            si = call.getStreamInfo(0)
            codec, remote_rtp = si.codecName, si.remoteRtpAddress
            if si.codecClockRate and si.codecClockRate != 8000:
                codec = f"{codec}/{si.codecClockRate}"
            srtp = srtp_suite(call.dump(True, ""))
        except pj.Error:
            pass
        return {
            "state": STATE_NAMES.get(ci.state, str(ci.state)),
            "code": int(ci.lastStatusCode),
            "codec": codec,
            "srtp": srtp,
            "remote_rtp": remote_rtp,
            "call_id": ci.callIdString,
        }

    def cmd_calls(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return {"calls": sorted(self.calls)}

    def cmd_quit(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self.running = False
        return {}

    def handle(self, cmd: dict[str, Any]) -> None:
        handler = getattr(self, f"cmd_{cmd.get('cmd')}", None)
        reply: dict[str, Any] = {"reply": cmd.get("id")}
        if handler is None:
            reply.update(ok=False, error="unknown command")
        else:
            try:
                reply.update(ok=True, **handler(cmd))
            except (pj.Error, KeyError, ValueError) as exc:
                msg = exc.info() if isinstance(exc, pj.Error) else str(exc)
                reply.update(ok=False, error=msg)
        self.out.send(reply)

    # -- main loop -----------------------------------------------------------
    def read_stdin(self) -> None:
        for line in sys.stdin:
            line = line.strip()
            if line:
                try:
                    self.commands.put(json.loads(line))
                except json.JSONDecodeError:
                    self.out.event("error", where="stdin", msg="bad json")
        self.commands.put(None)

    def run(self) -> None:
        threading.Thread(target=self.read_stdin, daemon=True).start()
        self.out.event("ready", sip_port=self.sip_port, tls_port=self.tls_port, pid=os.getpid())
        while self.running:
            self.ep.libHandleEvents(5)
            for call in list(self.calls.values()):
                if call.answer_plan:
                    self.run_answer_plan(call)
                if call.dtmf_queue:
                    self.run_dtmf_queue(call)
            while True:
                try:
                    cmd = self.commands.get_nowait()
                except queue.Empty:
                    break
                if cmd is None:
                    self.running = False
                    break
                self.handle(cmd)
        self.shutdown()

    def shutdown(self) -> None:
        self.ep.hangupAllCalls()
        deadline = time.monotonic() + 0.5
        while self.calls and time.monotonic() < deadline:
            self.ep.libHandleEvents(10)
        for call in list(self.calls.values()):
            call.release_media()
        self.calls.clear()
        self.account.shutdown()
        self.ep.libDestroy()
        self.out.event("bye")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--sip-port", type=int, default=0)
    p.add_argument("--rtp-port", type=int, default=40000, help="first RTP port of this phone")
    p.add_argument("--rtp-range", type=int, default=16, help="RTP ports this phone may use")
    p.add_argument("--codecs", default="PCMU,PCMA")
    p.add_argument("--srtp", choices=sorted(SRTP_USE), default="off")
    p.add_argument("--tls-dir", default="", help="ca.pem, server.pem, server.key: SIP over TLS")
    p.add_argument("--tls-port", type=int, default=0, help="SIP over TLS port (0: any)")
    p.add_argument("--user", default="phone")
    p.add_argument("--ptime", type=int, default=20)
    p.add_argument("--log-level", type=int, default=1)
    p.add_argument("--jb-ms", type=int, default=0, help="fixed jitter buffer ms (0 = adaptive)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    phone = Phone(parse_args(argv))
    phone.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
