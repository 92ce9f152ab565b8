"""One fuzz entry point per parser of outside input: `TARGETS[name](data: bytes)`.

Each target feeds the bytes to the parser as the service would receive them and
swallows only the refusal that parser documents (RtpError, SdpError, UserError,
ApiError, AuthError...).  Any other exception escaping a target is a bug.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable

from masker.api.auth import Authenticator, AuthError
from masker.api.requests import parse_capture, parse_restart
from masker.api.settings import ApiConfig
from masker.errors import ApiError, UserError
from masker.media.reception import sender_report_stamp
from masker.offline.wavfile import WavReader
from masker.runtime.service_config import load_config
from masker.sip import info
from masker.sip.transport import SIPPY_RECV_LIMIT, raw_response, screen
from masker.wire.rfc4733 import EventError, parse_event
from masker.wire.rtp import RtpError, is_rtcp, parse_rtp
from masker.wire.sdp import Origin, SdpError, rewrite

#: A 32-byte secret for the JWT target: tokens signed with anything else are refused.
_JWT_SECRET = b"fuzz-secret-fuzz-secret-fuzz-sec"
_AUTH = Authenticator(ApiConfig(jwt_secret=_JWT_SECRET, jwt_audience="masker"))
_SCRATCH = tempfile.mkdtemp(prefix="masker-fuzz-")


def sip_message(data: bytes) -> None:
    """The SIP guard's screening, then sippy's parse of what the guard lets through."""
    from sippy.SipRequest import SipRequest
    from sippy.SipResponse import SipResponse

    verdict = screen(data, SIPPY_RECV_LIMIT)
    if verdict.reply is not None:
        raw_response(verdict.text, *verdict.reply)
    if verdict.counter is not None:
        return
    raw_response(verdict.text, 488, "Not Acceptable Here")
    buf = verdict.data if isinstance(verdict.data, str) else verdict.data.decode()
    try:  # sippy's own parse errors are caught by its transaction manager, as here
        msg = (SipResponse if verdict.text.startswith("SIP/2.0 ") else SipRequest)(buf=buf)
        msg.getHFBody("call-id")
    except Exception:  # sippy raises many types; all are refusals
        return


def sdp(data: bytes) -> None:
    try:
        rewrite(data.decode("utf-8", "replace"), "127.0.0.1", 20000, Origin("127.0.0.1"))
    except SdpError:
        return


def rtp(data: bytes) -> None:
    if is_rtcp(data):
        sender_report_stamp(data)
        return
    try:
        parse_rtp(data)
    except RtpError:
        return


def rtcp(data: bytes) -> None:
    sender_report_stamp(data)


def rfc4733(data: bytes) -> None:
    try:
        parse_event(data).digit  # noqa: B018 - the property is what the engine reads
    except EventError:
        return


def info_body(data: bytes) -> None:
    """An INFO body under the content type its first line names: the keys read from it,
    and whether it could be relayed with that type on the allowlist."""
    cut = data.find(b"\n")
    ctype = data[:cut].decode("latin-1") if cut >= 0 else "application/dtmf-relay"
    body = data[cut + 1 :] if cut >= 0 else data
    info.info_keys(ctype, body)
    info.relay_verdict(ctype, body, info.normalise_allowlist([ctype]))


def wav(data: bytes) -> None:
    path = os.path.join(_SCRATCH, "input.wav")
    with open(path, "wb") as fh:
        fh.write(data)
    try:
        with WavReader(path) as reader:
            for _ in reader.blocks(160):
                pass
    except UserError:
        return


def config_toml(data: bytes) -> None:
    path = os.path.join(_SCRATCH, "config.toml")
    with open(path, "wb") as fh:
        fh.write(data)
    try:
        load_config(path, env={})
    except UserError:
        return


def api_json(data: bytes) -> None:
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return  # json_body answers these with 400 malformed_json
    if not isinstance(body, dict):
        return
    for parse in (parse_capture, parse_restart):
        with contextlib.suppress(ApiError):
            parse(body)


def jwt_token(data: bytes) -> None:
    try:
        _AUTH.authenticate(data.decode("utf-8", "replace"))
    except AuthError:
        return


TARGETS: dict[str, Callable[[bytes], None]] = {
    "sip_message": sip_message,
    "sdp": sdp,
    "rtp": rtp,
    "rtcp": rtcp,
    "rfc4733": rfc4733,
    "info_body": info_body,
    "wav": wav,
    "config_toml": config_toml,
    "api_json": api_json,
    "jwt_token": jwt_token,
}
