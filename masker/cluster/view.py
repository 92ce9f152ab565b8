"""The whole cluster's calls as one CallRegistry for the desktop API.

This node's own calls come from its registry (always fresh, and still served while
PostgreSQL is away); other nodes' calls come from the directory.  Reading another
node's call works here; driving it does not: masker.cluster.forward sends those
requests to the owner before they reach the registry, so the action methods below
only ever see a remote call when it has ended (409) or is unknown (404).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg
import structlog

from masker.api.call_registry import CallRegistry, Event
from masker.cluster import directory, metrics
from masker.cluster.fanout import RemoteFeeds
from masker.errors import CallEnded

log = structlog.get_logger()


class ClusterRegistry:
    def __init__(
        self,
        local: CallRegistry,
        node_id: str,
        reader: directory.SharedConnection,
        feeds: RemoteFeeds,
    ) -> None:
        self.local = local
        self.node_id = node_id
        self._reader = reader
        self._feeds = feeds

    # --- reads ---------------------------------------------------------------------------
    def list_calls(self) -> Sequence[Any]:
        calls = list(self.local.list_calls())
        try:
            calls += self._reader.run(directory.list_calls, self.node_id)
        except psycopg.Error as exc:
            metrics.DATABASE_ERRORS.labels("reader").inc()
            log.warning(
                "cluster directory unreadable: listing this node only", error=type(exc).__name__
            )
        return calls

    def remote_call(self, call_id: str) -> Event | None:
        """Another node's call from the directory (None when there is none, or the
        directory cannot be read)."""
        try:
            return self._reader.run(directory.get_call, call_id)  # type: ignore[no-any-return]
        except psycopg.Error as exc:
            metrics.DATABASE_ERRORS.labels("reader").inc()
            log.warning("cluster directory unreadable", error=type(exc).__name__)
            return None

    def owner(self, call_id: str) -> directory.Owner | None:
        try:
            return self._reader.run(directory.owner, call_id)  # type: ignore[no-any-return]
        except psycopg.Error:
            metrics.DATABASE_ERRORS.labels("reader").inc()
            return None

    def is_local(self, call_id: str) -> bool:
        try:
            self.local.get_call(call_id)
        except LookupError:
            return False
        return True

    def get_call(self, call_id: str) -> Any:
        try:
            return self.local.get_call(call_id)
        except LookupError:
            remote = self.remote_call(call_id)
            if remote is None:
                raise
            return remote

    def subscribe(self, call_id: str, callback: Callable[[Event], None]) -> Callable[[], None]:
        try:
            return self.local.subscribe(call_id, callback)
        except LookupError:
            if self.remote_call(call_id) is None:
                raise
            return self._feeds.subscribe(call_id, callback)

    # --- actions: local, or a remote call the forwarder did not take ----------------------
    def _remote_refusal(self, call_id: str) -> Exception:
        remote = self.remote_call(call_id)
        if remote is not None and remote.get("state") == "ended":
            return CallEnded("the call has ended")
        return LookupError("unknown call")

    def _local(self, call_id: str) -> CallRegistry:
        if not self.is_local(call_id):
            raise self._remote_refusal(call_id)
        return self.local

    def start_capture(
        self, call_id: str, amount: str, currency: str, reference: str, fields: Sequence[str]
    ) -> Any:
        return self._local(call_id).start_capture(call_id, amount, currency, reference, fields)

    def restart_field(self, call_id: str, field: str) -> Any:
        return self._local(call_id).restart_field(call_id, field)

    def cancel_capture(self, call_id: str) -> Any:
        return self._local(call_id).cancel_capture(call_id)

    def retry_handoff(self, call_id: str) -> Any:
        return self._local(call_id).retry_handoff(call_id)

    def end_payment_phase(self, call_id: str, by: str) -> Any:
        return self._local(call_id).end_payment_phase(call_id, by)
