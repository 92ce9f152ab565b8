"""sippy's logging, routed into structlog without message bodies.

sippy logs whole SIP messages (INFO bodies can carry keyed digits) and dumps
unparsable datagrams to stdout in its exception handler.  The bridge keeps
only the first line of what sippy logs (direction + start line), and the
exception hook keeps only the message and exception type, never the datagram.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import structlog

log = structlog.get_logger("sippy")

_DUMPING_MODULES = (
    "sippy.SipTransactionManager",
    "sippy.Udp_server",
    "sippy.Core.EventDispatcher",
    "sippy.Signal",
)


def quiet_sippy_env() -> None:
    """Stop sippy's own logger from writing to stderr (call before sippy creates one)."""
    os.environ["SIPLOG_BEND"] = "none"
    os.environ.setdefault("SIPLOG_LVL", "WARN")


class StructlogSipLogger:
    """Drop-in for sippy.SipLogger: `write(*parts, level=..., ltime=..., call_id=...)`."""

    def __init__(self, messages: bool = False) -> None:
        self.messages = messages
        self.call_id = "GLOBAL"

    def write(self, *args: Any, **kwargs: Any) -> None:
        level = kwargs.get("level", 1)
        if not self.messages and level < 2:
            return
        text = "".join(str(a) for a in args)
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        head = " ".join(lines[:2])[:200]
        (log.warning if level >= 2 else log.debug)("sippy", msg=head)

    def shutdown(self) -> None:
        pass


def _dump_exception(msg: str, f: Any = None, extra: Any = None) -> None:
    exc_type, _exc, _tb = sys.exc_info()
    log.error("sippy exception", msg=str(msg)[:200], exc_type=getattr(exc_type, "__name__", None))


def install_exception_hook() -> None:
    """Replace sippy's dump_exception (which prints datagrams) in the modules that use it."""
    for name in _DUMPING_MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(mod, "dump_exception"):
            vars(mod)["dump_exception"] = _dump_exception
