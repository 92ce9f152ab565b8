"""Media worker processes of a running `masker serve` (`[media] workers`): their pids,
the service's counters, and load phones that note which leg of a call got a BYE."""

from __future__ import annotations

import signal
from typing import Any

from masker.phones.lite import LitePhones, SipMessage
from masker.phones.service_process import ServiceProcess

WORKERS_ENV = {"MASKER_MEDIA_WORKERS": "2"}


def worker_pids(service: ServiceProcess) -> dict[int, int]:
    """Worker index -> pid of its latest "media worker ready" log line."""
    return {
        line["worker"]: line["pid"]
        for line in service.log_lines
        if line.get("event") == "media worker ready"
    }


def stats(service: ServiceProcess) -> dict[str, Any]:
    """The service's counters, logged now (SIGUSR1)."""
    since = len(service.log_lines)
    service.proc.send_signal(signal.SIGUSR1)
    return service.wait_log("stats", timeout=10, since=since)


class LegPhones(LitePhones):
    """LitePhones that remember, per call, which legs the service sent a BYE on:
    "caller" (the trunk side's dialog) and "agent" (the PBX side's)."""

    def __init__(self, service: tuple[str, int], seed: int = 1) -> None:
        super().__init__(service, seed)
        self.byes: dict[str, set[str]] = {}

    def _on_uac(self, msg: SipMessage) -> None:
        if msg.is_request and msg.method == "BYE":
            self.byes.setdefault(msg.get("call-id"), set()).add("caller")
        super()._on_uac(msg)

    def _on_uas(self, msg: SipMessage, addr: tuple[str, int]) -> None:
        call = self.by_agent_call.get(msg.get("call-id"))
        if msg.is_request and msg.method == "BYE" and call is not None:
            self.byes.setdefault(call.call_id, set()).add("agent")
        super()._on_uas(msg, addr)
