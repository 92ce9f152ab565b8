"""The masking service: sippy's event loop on the main thread, the media thread,
the registry, the tokeniser and (when present) the agent-desktop API.

SIGTERM/SIGINT drain: new INVITEs and OPTIONS get 503, active calls run on for
up to the grace period, then whatever is left is hung up and the process exits.
"""

from __future__ import annotations

import gc
import os
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from masker.calls.digit_queue import DigitQueue
from masker.calls.handoff import HandoffWorker, build_gateway
from masker.calls.registry import Registry, SessionFactory
from masker.errors import UserError
from masker.media.engine import MediaEngine
from masker.media.law import SAMPLES_PER_MS
from masker.media.maskbank import BatchFactory, DspBatchFactory
from masker.media.plane import MediaPlane
from masker.media.ports import PortAllocator
from masker.media.workers import MediaWorkers, worker_count
from masker.runtime.gc_pauses import meter_gc_pauses
from masker.runtime.hardening import forget_environment
from masker.runtime.housekeeping import Periodic
from masker.runtime.service_config import SECRET_SETTINGS, Config, env_name
from masker.sip.logbridge import (
    StructlogSipLogger,
    install_exception_hook,
    quiet_sippy_env,
)
from masker.wire.sdp import set_codecs

if TYPE_CHECKING:
    from sippy.Time.Timeout import Timeout

    from masker.api.server import ApiServer
    from masker.cluster import ClusterNode
    from masker.sip.call_context import SipContext
    from masker.sip.transport import GuardedTransactionManager
    from tokenizer import Tokenizer

log = structlog.get_logger()

#: Young-generation collections between two full ones (CPython's default is 10).
FULL_GC_EVERY = 100

STATS_INTERVAL_S = 60.0


def default_batch_factory(config: Config) -> BatchFactory:
    """The dsp/ batch masker with the configured look-ahead and mode (as `masker mask`),
    at 8 kHz or, for G.722 calls, 16 kHz (`rate`); it pickles, for media workers."""
    return DspBatchFactory(config.media.lookahead_ms, config.media.mask_mode)


def _minor_units(amount: str) -> int:
    if not amount:
        return 0
    try:
        return int((Decimal(amount) * 100).to_integral_value())
    except InvalidOperation:
        raise ValueError("amount must be a decimal number") from None


def default_session_factory(config: Config) -> tuple[SessionFactory, Tokenizer]:
    """Payment sessions from the tokeniser stack (SQLite or PostgreSQL vault, keys under
    keys_dir)."""
    from tokenizer import TokenizerConfig, build_tokenizer
    from tokenizer.keys import KeyError_
    from tokenizer.vault import VaultError

    tcfg = config.tokenizer
    keys_dir = Path(tcfg.keys_dir)
    keys_dir.mkdir(parents=True, exist_ok=True)
    if tcfg.vault_backend == "sqlite":
        Path(tcfg.vault_path).parent.mkdir(parents=True, exist_ok=True)
    tk_config = TokenizerConfig(
        vault_backend=tcfg.vault_backend,
        vault_path=tcfg.vault_path,
        vault_dsn=tcfg.vault_dsn,
        keystore_path=str(keys_dir / "keys.json"),
        kek_file=tcfg.kek_file or None,
    )
    try:
        tk = build_tokenizer(tk_config, dev_dir=keys_dir / "dev" if tcfg.dev_keys else None)
    except (KeyError_, OSError, ValueError, VaultError) as exc:  # no KEK, no vault, ...
        raise UserError(f"tokenizer: {exc}") from None
    # The KEK has been read: no child process inherits it, nothing prints it later.
    forget_environment([tk_config.kek_env])

    def factory(
        *, call_id: str, amount: str, currency: str, reference: str, fields: tuple[str, ...]
    ) -> Any:
        return tk.new_session(
            amount_minor=_minor_units(amount),
            currency=currency or "GBP",
            reference=reference or call_id,
            fields=tuple(fields) or None,
        )

    return factory, tk


def calm_garbage_collector() -> None:
    """Keep full garbage collections short and rare: they hold the GIL, so every
    millisecond of one is a millisecond every call's media waits.

    The objects that exist once the service is up (modules, classes, config) are
    moved out of the collector's sight (gc.freeze), and a full collection runs after
    100 young-generation ones instead of 10.  Measured at 200 calls: full collections
    fell from 60-67 ms every few seconds to 10-25 ms every 15 s or so.
    """
    gc.collect()
    gc.freeze()
    meter_gc_pauses()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_GC_EVERY)


class Service:
    """Builds everything from a Config and runs until drained."""

    def __init__(
        self,
        config: Config,
        batch_factory: BatchFactory | None = None,
        session_factory: SessionFactory | None = None,
        tokenizer_enabled: bool = True,
    ) -> None:
        self.config = config
        # the DSNs are in `config` now: no child process inherits their passwords
        forget_environment(env_name(section, key) for section, key in SECRET_SETTINGS)
        set_codecs(config.media.codecs)  # the SDP offer/answer of every call (masker.wire.sdp)
        self.batch_factory = batch_factory or default_batch_factory(config)
        self.session_factory = session_factory
        self.tokenizer: Tokenizer | None = None
        if session_factory is None and tokenizer_enabled:
            self.session_factory, self.tokenizer = default_session_factory(config)
        self.gateway = build_gateway(config.gateway)
        self.handoff: HandoffWorker | None = None
        self.purger: Periodic | None = None
        self.api: ApiServer | None = None
        self.cluster: ClusterNode | None = None
        self.ctx: SipContext | None = None
        self.tm: GuardedTransactionManager | None = None
        self._grace_timer: Timeout | None = None  # sippy's Timeout (untyped)
        self._stopping = False

    def run(self) -> int:
        quiet_sippy_env()
        from sippy.Core.EventDispatcher import ED2
        from sippy.SipConf import SipConf
        from sippy.Time.Timeout import Timeout

        from masker.sip.acl import SourceAcl
        from masker.sip.call_context import SipContext
        from masker.sip.dispatcher import Dispatcher
        from masker.sip.transport import GuardedTransactionManager

        install_exception_hook()
        cfg = self.config
        SipConf.my_address = cfg.sip.public_address or cfg.sip.listen_address
        SipConf.my_port = cfg.sip.listen_port
        SipConf.my_uaname = cfg.sip.user_agent
        global_config: dict[str, Any] = {
            "_sip_address": cfg.sip.listen_address,
            "_sip_port": cfg.sip.listen_port,
            "_sip_logger": StructlogSipLogger(messages=cfg.sip.log_messages),
        }
        self.handoff = HandoffWorker(self.gateway)
        registry = Registry(
            self.session_factory,
            auto_capture=cfg.masking.auto_capture,
            auto_currency=cfg.masking.auto_currency,
            handoff=self.handoff,
        )
        m = cfg.media
        self.digits = DigitQueue(registry.on_digit, on_lost=self._digits_lost)
        ports = PortAllocator(m.address, m.port_min, m.port_max)
        media_options: dict[str, Any] = dict(
            batch_size=m.batch_size,
            max_calls=m.max_calls,
            on_digit=self.digits.put,
            on_lost=self.digits.lost,
            on_timeout=lambda cid: ED2.callFromThread(self._rtp_timeout, cid),
            on_hold_timeout=lambda cid: ED2.callFromThread(self._rtp_timeout, cid, "hold_timeout"),
            hold_timeout_s=m.hold_timeout_s,
            rtp_timeout_s=m.rtp_timeout_s,
            jitter_samples=SAMPLES_PER_MS * m.jitter_ms,
            latching=m.latching,
            latch_packets=m.latch_packets,
            lanes=m.lanes,
            stall_log_s=m.stall_log_ms / 1000,
        )
        workers = worker_count(m.workers)
        engine: MediaPlane[Any]
        if workers:  # media in worker processes: a dead one's calls end as on RTP timeout
            engine = MediaWorkers(
                ports,
                self.batch_factory,
                workers,
                on_worker_lost=lambda cid: ED2.callFromThread(
                    self._rtp_timeout, cid, "media_worker_lost"
                ),
                log_level=cfg.service.log_level,
                **media_options,
            )
        else:
            engine = MediaEngine(ports, self.batch_factory, **media_options)
        self.engine, self.registry = engine, registry
        ctx = SipContext(cfg, global_config, engine, registry, on_call_ended=self._call_ended)
        self.ctx = ctx
        dispatcher = Dispatcher(ctx)
        try:
            tm = GuardedTransactionManager(
                global_config,
                dispatcher.recv_request,
                max_message=cfg.sip.max_message_bytes,
                acl=SourceAcl(cfg.sip.trusted_sources, always=[cfg.pbx.address]),
            )
        except OSError as exc:
            raise UserError(
                f"cannot listen for SIP on {cfg.sip.listen_address}:{cfg.sip.listen_port}: {exc}"
            ) from None
        global_config["_sip_tm"] = tm
        self.tm = tm
        try:
            engine.start()
        except RuntimeError as exc:  # a media worker that cannot start
            raise UserError(f"media: {exc}") from None
        self._start_purger()
        self._start_cluster(registry)
        self._start_api(registry)
        import signal as _signal

        from sippy.Signal import Signal

        for signum in (_signal.SIGTERM, _signal.SIGINT):
            _signal.signal(signum, _signal.SIG_DFL)  # sippy chains to a previous handler
            Signal(signum, self.drain)
        Signal(_signal.SIGUSR1, self._log_stats)
        Timeout(registry.poll, 1.0, -1)
        Timeout(self._log_stats, STATS_INTERVAL_S, -1)
        log.info(
            "service ready",
            sip=f"{cfg.sip.listen_address}:{cfg.sip.listen_port}",
            pbx=f"{cfg.pbx.address}:{cfg.pbx.port}",
            rtp=f"{m.port_min}-{m.port_max}",
            policy=cfg.masking.policy,
            pid=os.getpid(),
            api=getattr(self.api, "url", None),
            gateway=self.config.gateway.url or None,
        )
        calm_garbage_collector()
        try:
            ED2.loop()
        finally:
            self._shutdown()
        return 0

    # --- drain ----------------------------------------------------------------------------
    def drain(self) -> None:
        from sippy.Core.EventDispatcher import ED2
        from sippy.Time.Timeout import Timeout

        ctx = self.ctx
        if ctx is None or ctx.draining:
            return
        ctx.draining = True
        grace = self.config.service.drain_grace_s
        log.info("draining", active_calls=ctx.active_calls(), grace_s=grace)
        if ctx.active_calls() == 0:
            Timeout(ED2.breakLoop, 0.2)
            return
        self._grace_timer = Timeout(self._grace_expired, grace)

    def _grace_expired(self) -> None:
        from sippy.Core.EventDispatcher import ED2
        from sippy.Time.Timeout import Timeout

        ctx = self.ctx
        assert ctx is not None  # set by run() before any timer or call exists
        log.info("drain grace expired", active_calls=ctx.active_calls())
        for cc in list(ctx.calls.values()):
            cc.disconnect("drain")
        Timeout(ED2.breakLoop, 1.0)

    def _call_ended(self) -> None:
        from sippy.Core.EventDispatcher import ED2
        from sippy.Time.Timeout import Timeout

        ctx = self.ctx
        assert ctx is not None  # set by run() before any call exists
        if ctx.draining and ctx.active_calls() == 0 and not self._stopping:
            self._stopping = True
            if self._grace_timer is not None:
                self._grace_timer.cancel()
            log.info("drained")
            Timeout(ED2.breakLoop, 0.5)

    def _rtp_timeout(self, call_id: str, reason: str = "rtp_timeout") -> None:
        cc = self.ctx.calls.get(call_id) if self.ctx else None
        if cc is not None:
            cc.disconnect(reason)

    def _digits_lost(self, call_id: str, count: int, source: str) -> None:
        """Key presses of the call were dropped (digit queue full, SIP INFO over its
        rate): its running capture is cancelled, in order with the presses it got, so
        it fails visibly rather than completing a card with a key missing.  The call
        stays armed (D3).  Runs on the digits worker."""
        from masker.errors import CallEnded, CaptureConflict

        try:
            self.registry.cancel_capture(call_id)
        except (LookupError, CaptureConflict, CallEnded):
            return  # no capture running: nothing could be completed from them
        log.warning("capture cancelled: digits lost", call=call_id, count=count, source=source)

    # --- helpers --------------------------------------------------------------------------
    def _start_purger(self) -> None:
        interval = self.config.tokenizer.purge_interval_s
        if self.tokenizer is not None and interval > 0:
            self.purger = Periodic("vault-purge", self.tokenizer.purge_expired, interval).start()

    def ready_checks(self) -> dict[str, Any]:
        """What /readyz runs: SIP socket bound (and not draining), media thread alive,
        vault answering a query."""
        return {
            "sip": lambda: (
                self.ctx is not None and not self.ctx.draining and sip_socket_bound(self.tm)
            ),
            "media": lambda: self.engine.alive,
            "vault": self._vault_reachable,
        }

    def _vault_reachable(self) -> bool:
        if self.tokenizer is None:
            return self.session_factory is not None
        return self.tokenizer.store.reachable()  # one quick query, no retries

    def _start_cluster(self, registry: Registry) -> None:
        """[cluster] node_id set: publish this node's calls to the directory and serve the
        cluster's calls on the API (masker/cluster/, its own thread; returns at once)."""
        if not self.config.cluster.node_id:
            return
        from masker.cluster import ClusterNode

        self.cluster = ClusterNode(self.config.cluster).start(
            registry, draining=lambda: self.ctx is not None and self.ctx.draining
        )
        log.info("cluster node", node=self.config.cluster.node_id)

    def _start_api(self, registry: Registry) -> None:
        if not self.config.service.api_enabled:
            return
        try:
            from masker.api import ApiConfig, start_api_server
            from masker.runtime.devaccess import (
                dev_banner,
                ensure_dev_api_key,
                wants_dev_credential,
                with_dev_key,
            )
        except ImportError:
            return
        dev_key = None
        try:
            api_config = ApiConfig.from_mapping(self.config.extra.get("api", {}))
            key_file = self.config.service.dev_api_key_file
            if wants_dev_credential(self.config, api_config) and key_file:
                dev_key = ensure_dev_api_key(key_file)
                api_config = with_dev_key(api_config, dev_key)
            self.api = start_api_server(
                registry, api_config, ready_checks=self.ready_checks(), cluster=self.cluster
            )
        except Exception as exc:  # the SIP service runs on without its desktop API
            log.error("api failed to start", exc_type=type(exc).__name__, error=str(exc)[:200])
            return
        if dev_key is not None:
            log.warning("development api key in use", key_file=key_file)
            sys.stderr.write(dev_banner(self.api.url, dev_key, key_file))
            sys.stderr.flush()

    def _log_stats(self) -> None:
        stats = self.engine.snapshot()
        assert self.tm is not None  # the stats timer starts after run() bound SIP
        stats.update(self.tm.counters)
        stats.update(self.digits.counters)
        stats["digit_queue"] = self.digits.size
        log.info("stats", **stats)

    def _shutdown(self) -> None:
        stats = self.engine.snapshot()
        assert self.tm is not None  # run() only enters the loop (and this) once SIP is bound
        stats.update(self.tm.counters)
        log.info("stopping", **stats)
        if self.api is not None:
            try:
                self.api.stop()
            except Exception:
                log.error("api stop failed")
        if self.cluster is not None:
            self.cluster.stop()
        self.engine.stop()
        self.digits.stop()
        if self.handoff is not None:
            self.handoff.stop()
        if self.purger is not None:
            self.purger.stop()
        if self.tokenizer is not None:
            try:
                self.tokenizer.close()
            except Exception:
                log.error("tokenizer close failed")


def sip_socket_bound(tm: Any) -> bool:
    """The transaction manager's UDP socket(s) are open and bound."""
    servers = getattr(getattr(tm, "l4r", None), "cache_l2s", None) or {}
    for server in servers.values():
        skt = getattr(server, "skt", None)
        if skt is None or skt.fileno() < 0 or not skt.getsockname()[1]:
            return False
    return bool(servers)
