"""SIP INFO between the legs: which bodies carry keypad digits, the keys in them, and
whether an INFO may be relayed at all.

Deny by default: an INFO is relayed to the other leg only when its Content-Type is
on `[sip] info_allowlist` and nothing about it can carry a key press (see
`relay_verdict`).  Every other INFO is answered by the masker and stops there.

Keys are read from the common DTMF encodings:

- `application/dtmf-relay`, `application/x-dtmf-relay`, `application/x-dtmf`
  (`Signal=5` / `Duration=160` lines, any case, `=` or `:`, CR/LF/CRLF),
- `application/dtmf` (the key alone),
- `application/vnd.nortelnetworks.digits` (`d=5` among other `x=` lines),
- `audio/telephone-event` (RFC 4733 payload, binary: event, E/R/volume, duration),
- `text/plain` (the key alone or `Signal=` / `d=` lines),
- `multipart/*` (each part by its own type).

A value is a key (`0-9 * # A-D`, any case) or an RFC 4733 event number 0-15
(10 = `*`, 11 = `#`, 12-15 = `A`-`D`).
"""

from __future__ import annotations

import re

KEYS = "0123456789*#ABCD"

#: key=value encodings (Cisco/SIP-T dtmf-relay and its x- spellings).
RELAY_TYPES = ("application/dtmf-relay", "application/x-dtmf-relay", "application/x-dtmf")
#: The key alone in the body.
SINGLE_KEY_TYPES = ("application/dtmf",)
NORTEL_TYPES = ("application/vnd.nortelnetworks.digits",)
EVENT_TYPES = ("audio/telephone-event", "audio/telephone-events")
#: Types read for digits; `is_dtmf_info` is true for them (and multipart is searched).
DTMF_TYPES = RELAY_TYPES + SINGLE_KEY_TYPES + NORTEL_TYPES + EVENT_TYPES + ("text/plain",)

#: Top-level types that can carry anything, digits included: never relayed.
_OPEN_TOP_LEVELS = ("text", "multipart", "message", "audio")
#: A type (or Info-Package name) whose name says keys, tones or key-press reports.
_DIGIT_WORDS = re.compile(r"dtmf|digit|telephone-event|tone|kpml|key|signal", re.I)
#: Lines like `Signal=5`, `d=5`, `digits: 12`, `key=#` inside any text body.
_KV_DIGIT = re.compile(r"(?im)^\s*(signal|d|digits?|dtmf|key|keys|event|tone)\s*[=:]\s*[0-9a-d*#]")

_NESTING_LIMIT = 4


def media_type(content_type: str | None) -> str:
    """`type/subtype` of a Content-Type value, lower case, without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _params(content_type: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        out[key.strip().lower()] = value.strip().strip('"')
    return out


def is_dtmf_info(content_type: str | None) -> bool:
    """True for the types whose bodies this module reads keys from."""
    return media_type(content_type) in DTMF_TYPES


def carries_digits(content_type: str | None) -> bool:
    """True when a body of this type can carry a key press, so it may never be relayed
    (and may not be put on `[sip] info_allowlist`): the DTMF types, any type whose name
    speaks of keys/tones/digits, the open top levels (text/, multipart/, message/,
    audio/), wildcards, and anything that is not a well-formed `type/subtype`."""
    mtype = media_type(content_type)
    top, sep, sub = mtype.partition("/")
    if not sep or not top or not sub or "*" in mtype or mtype in DTMF_TYPES:
        return True
    return top in _OPEN_TOP_LEVELS or bool(_DIGIT_WORDS.search(mtype))


def key_of(value: str) -> str | None:
    """A keypad key from one value: the key itself or an RFC 4733 event number."""
    value = value.strip()
    if value.isascii() and value.isdigit() and len(value) <= 2:
        number = int(value)
        return KEYS[number] if number < 16 else None
    value = value.upper()
    return value if len(value) == 1 and value in KEYS else None


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _kv_key(text: str, names: tuple[str, ...]) -> str | None:
    for line in text.replace("\r", "\n").split("\n"):
        match = re.match(r"\s*([A-Za-z-]+)\s*[=:](.*)", line)
        if match and match.group(1).lower() in names:
            return key_of(match.group(2))
    return None


def _event_keys(raw: bytes) -> list[str]:
    """Keys in an RFC 4733 payload: 4-byte blocks (event, E/R/volume, duration); a run of
    blocks of the same event (updates, the repeated end packet) is one key press."""
    keys: list[str] = []
    last = None
    for i in range(0, len(raw) - len(raw) % 4, 4):
        event = raw[i]
        if event != last and event < 16:
            keys.append(KEYS[event])
        last = event
    return keys


def _multipart(content_type: str, raw: bytes, depth: int) -> list[str]:
    boundary = _params(content_type).get("boundary", "")
    if not boundary or depth >= _NESTING_LIMIT:
        return []
    alternative = media_type(content_type) == "multipart/alternative"
    keys: list[str] = []
    for part in raw.split(b"--" + boundary.encode("latin-1", "replace"))[1:]:
        if part.startswith(b"--"):
            break
        part = part[2:] if part.startswith(b"\r\n") else part.lstrip(b"\n")
        head, sep, body = part.partition(b"\r\n\r\n")
        if not sep:
            head, sep, body = part.partition(b"\n\n")
        ctype = "text/plain"
        for line in _text(head).replace("\r", "").split("\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() in ("content-type", "c"):
                ctype = value.strip()
        body = body[:-2] if body.endswith(b"\r\n") else body.rstrip(b"\n")
        keys += info_keys(ctype, body, depth + 1)
        if alternative and keys:
            break  # the parts are encodings of the same key press: the first one counts
    return keys


def info_keys(content_type: str | None, raw: bytes, depth: int = 0) -> list[str]:
    """The key presses in an INFO body, in order (usually one; none when the body
    names no keypad key or its type is not one this module reads)."""
    mtype = media_type(content_type)
    if mtype in EVENT_TYPES:
        return _event_keys(raw)
    if mtype.startswith("multipart/"):
        return _multipart(content_type or "", raw, depth)
    text = _text(raw)
    if mtype in RELAY_TYPES:
        key = _kv_key(text, ("signal",))
    elif mtype in SINGLE_KEY_TYPES:
        key = key_of(text)
    elif mtype in NORTEL_TYPES:
        key = _kv_key(text, ("d", "digit", "digits"))
    elif mtype == "text/plain":
        key = key_of(text) or _kv_key(text, ("signal", "d", "digit", "digits", "dtmf", "key"))
    else:
        key = None
    return [key] if key is not None else []


def info_digit(content_type: str | None, body: str | bytes) -> str | None:
    """The first key in a DTMF INFO body, or None when the body names no keypad key."""
    raw = body if isinstance(body, bytes) else body_bytes(body)
    keys = info_keys(content_type, raw)
    return keys[0] if keys else None


def body_bytes(content: str) -> bytes:
    """The body's bytes back from sippy's text: the transport hands sippy every non-ASCII
    INFO body decoded as Latin-1 (one character per byte), see transport.py."""
    try:
        return content.encode("latin-1")
    except UnicodeEncodeError:
        return content.encode("utf-8", "surrogateescape")


def normalise_allowlist(types: list[str]) -> frozenset[str]:
    return frozenset(media_type(t) for t in types if media_type(t))


def relay_verdict(
    content_type: str | None,
    raw: bytes | None,
    allowlist: frozenset[str],
    info_package: str = "",
    content_encoding: str = "",
) -> str | None:
    """None when this INFO may be relayed to the other leg, else why not (a short code
    safe to log).  Relayed only when all hold: it has a body; its type is on the
    allowlist and cannot carry digits; it names no digit-ish Info-Package; its body is
    plain ASCII (no Content-Encoding, nothing sippy would re-encode) and no line of it
    looks like a key report."""
    if raw is None or content_type is None:
        return "no_body"
    mtype = media_type(content_type)
    if mtype not in allowlist:
        return "not_allowlisted"
    if carries_digits(mtype):
        return "digit_type"
    if info_package and _DIGIT_WORDS.search(info_package):
        return "digit_package"
    if content_encoding and content_encoding.strip().lower() != "identity":
        return "encoded_body"
    if not raw.isascii():
        return "binary_body"
    if _KV_DIGIT.search(raw.decode("ascii")):
        return "digit_body"
    return None
