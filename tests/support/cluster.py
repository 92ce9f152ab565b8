"""The cluster as test processes: Kamailio's dispatcher on deploy/kamailio/cluster.cfg
in front of N `masker serve` nodes (masker.phones.service_process), all sending the
agent leg to one PBX the test owns, optionally with one PostgreSQL for the vault
(tests/support/postgres).

Nodes start in parallel on free loopback ports, each in its own directory; a node
restarted keeps its SIP port, so the dispatcher's list stays right.  The node
carrying a call is known by the source port of its agent-leg INVITE (sippy sends
from its one SIP socket).  `ClusterCall` is a caller through the dispatcher that
keeps the dialog's route set, so its in-dialog requests go the way a real
trunk's would.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from masker.calls.ids import log_safe_hex
from masker.phones.lite import LiteCall, LitePhones, drive
from masker.phones.service_process import ServiceProcess, free_port, sip_options_ping
from tests.support.cards import dev_tokenizer
from tests.support.edge import Kamailio
from tests.support.media import keyed_packets, rtp_socket, send_paced
from tests.support.paths import PROJECT_ROOT
from tests.support.postgres import PostgresServer
from tests.support.sip_client import HOST, SipEndpoint, SipMessage, sdp_media, sdp_offer

CLUSTER_CFG = PROJECT_ROOT / "deploy" / "kamailio" / "cluster.cfg"


def vault_env(dsn: str) -> dict[str, str]:
    """The shared PostgreSQL vault's settings; {} (no `dsn`) leaves each node on its own
    SQLite vault."""
    if not dsn:
        return {}
    return {"MASKER_TOKENIZER_VAULT_BACKEND": "postgresql", "MASKER_TOKENIZER_VAULT_DSN": dsn}


class Dispatcher(Kamailio):
    """kamailio on cluster.cfg: one SIP address (UDP) for the nodes on `node_ports`."""

    def __init__(self, workdir: Path, node_ports: list[int]) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.list_file = workdir / "dispatcher.list"
        self.list_file.write_text("".join(f"1 sip:{HOST}:{p}\n" for p in node_ports))
        # A unix socket path must stay under 108 bytes: pytest's tmp_path may not.
        self.ctl = Path(tempfile.mkdtemp(prefix="kc-")) / "ctl"
        params: dict[str, object] = {
            "CLUSTER_ADDR": HOST,
            "CLUSTER_PORT": self.port,
            "DISPATCHER_LIST": self.list_file,
            "CTL_SOCKET": f"unix:{self.ctl}",
        }
        super().__init__(CLUSTER_CFG, workdir, params, self._answers)

    def _answers(self) -> bool:
        return sip_options_ping(self.addr) == 200

    @property
    def addr(self) -> tuple[str, int]:
        return (HOST, self.port)

    def states(self) -> dict[int, str]:
        """Each node's dispatcher state by SIP port ("AP" active; "IP"/"TP" out)."""
        kamcmd = shutil.which("kamcmd") or shutil.which("kamcmd", path="/usr/sbin:/sbin")
        out = subprocess.run(
            [kamcmd or "kamcmd", "-s", f"unix:{self.ctl}", "dispatcher.list"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout  # fmt: skip
        found = re.findall(r"URI: sip:[\d.]+:(\d+)\s+FLAGS: (\w+)", out)
        return {int(port): flags for port, flags in found}

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.ctl.parent, ignore_errors=True)

    def wait_state(self, port: int, active: bool, timeout: float = 8.0) -> float:
        """Seconds until the node on `port` is in (or out of) the selection."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.states().get(port, "").startswith("A") == active:
                return time.monotonic() - t0
            time.sleep(0.1)
        raise TimeoutError(f"node :{port} not {'active' if active else 'out'}: {self.states()}")


class Cluster:
    """The dispatcher and `n` nodes (index 0..n-1) with their agent legs to `pbx_port`.

    With `postgres`, the nodes share its vault (where the config knows the PostgreSQL
    vault) and, with `view`, run their API as one cluster ([cluster] node_id, dsn,
    api_url: the desktops' one view); without, each node is on its own."""

    def __init__(
        self,
        workdir: Path,
        pbx_port: int,
        n: int = 2,
        postgres: PostgresServer | None = None,
        env: Mapping[str, str] | None = None,
        view: bool = True,
    ) -> None:
        self.workdir = workdir
        self.pbx_port = pbx_port
        self.dsn = postgres.dsn if postgres else ""
        self.view = view and bool(self.dsn)
        # One key store for every node of one vault (a PostgreSQL database keeps the
        # key generation it seals under): made before any node starts, so that they
        # can all start at once.
        keys = postgres.datadir.parent / "keys" if postgres else workdir / "keys"
        dev_tokenizer(keys).close()
        shared = {"MASKER_TOKENIZER_KEYS_DIR": str(keys)}
        self.env = {**shared, **vault_env(self.dsn), **(env or {})}
        with ThreadPoolExecutor(n) as pool:
            starting = [pool.submit(self._start_node, i) for i in range(n)]
        self.nodes = [f.result() for f in starting if f.exception() is None]
        failed = [e for f in starting if (e := f.exception()) is not None]
        if failed:
            self.stop()
            raise failed[0]
        try:
            self.dispatcher = Dispatcher(workdir / "kamailio", [nd.sip_port for nd in self.nodes])
        except BaseException:
            self.stop()
            raise

    def _start_node(
        self, i: int, sip_port: int | None = None, api_port: int | None = None
    ) -> ServiceProcess:
        env = dict(self.env)
        if self.view:
            api_port = api_port or free_port(socket.SOCK_STREAM)
            env |= {
                "MASKER_CLUSTER_NODE_ID": f"node{i}",
                "MASKER_CLUSTER_DSN": self.dsn,
                "MASKER_CLUSTER_API_URL": f"http://{HOST}:{api_port}",
            }
        return ServiceProcess(
            self.pbx_port, self.workdir / f"node{i}", media_ports=100, api=self.view,
            env=env, sip_port=sip_port, api_port=api_port,
        )  # fmt: skip

    @property
    def addr(self) -> tuple[str, int]:
        return self.dispatcher.addr

    def node_at(self, sip_port: int) -> int:
        """The index of the node whose SIP socket is `sip_port`."""
        return [nd.sip_port for nd in self.nodes].index(sip_port)

    def restart(self, i: int) -> ServiceProcess:
        """Start node `i` again (after it exited) on its SIP port and directory."""
        old = self.nodes[i]
        self.nodes[i] = self._start_node(i, old.sip_port, old.api_port)
        return self.nodes[i]

    def stop(self) -> None:
        """Stop everything at once (calls still up get a node's short drain, 2 s)."""
        if hasattr(self, "dispatcher"):
            self.dispatcher.stop()
        with ThreadPoolExecutor(max(len(self.nodes), 1)) as pool:
            list(pool.map(lambda node: node.stop(timeout=4), self.nodes))


class ClusterCall:
    """A caller through the dispatcher: INVITE, the PBX (`pbx`, the test's UAS) answers
    the node's agent leg, ACK; `node` is the index of the node that carries it."""

    def __init__(self, cluster: Cluster, pbx: SipEndpoint, timeout: float = 8.0) -> None:
        self.cluster = cluster
        self.sip = SipEndpoint("caller")
        self.rtp = rtp_socket()
        self.agent_rtp = rtp_socket()
        self.user = "agent" + log_safe_hex(4)
        self.uri = f"sip:{self.user}@{HOST}:{cluster.addr[1]}"
        self.call_id = log_safe_hex(8)
        self.tag = log_safe_hex(4)
        offer = sdp_offer(self.rtp.getsockname()[1], "0 101")
        self.sip.send_raw(
            self.sip.request(
                "INVITE", self.uri, call_id=self.call_id, from_tag=self.tag, body=offer
            ),
            cluster.addr,
        )
        inv = pbx.expect("INVITE", user=self.user, timeout=timeout)
        assert inv.source is not None
        self.node = cluster.node_at(inv.source[1])
        self.agent_call_id = inv.header("Call-ID")
        pbx.reply(
            inv,
            200,
            to_tag="pbx" + log_safe_hex(2),
            body=sdp_offer(self.agent_rtp.getsockname()[1], "0 101"),
        )
        ok = self.sip.expect(200, call_id=self.call_id, timeout=timeout)
        self.to_tag = ok.tag("To")
        self.contact = re.sub(r"^.*<([^>]+)>.*$", r"\1", ok.header("Contact"))
        self.routes = [r for h in ok.all("Record-Route") for r in re.findall(r"<[^>]+>", h)][::-1]
        _, self.node_rtp_port, _, _ = sdp_media(ok.body)
        self.in_dialog("ACK", cseq=1)
        pbx.expect("ACK", call_id=self.agent_call_id, timeout=timeout)

    def in_dialog(
        self, method: str, cseq: int | None = None, body: str = "", ctype: str = ""
    ) -> None:
        """An in-dialog request to the node's Contact along the route set."""
        self.sip.send_raw(
            self.sip.request(
                method, self.contact, call_id=self.call_id, from_tag=self.tag,
                to_tag=self.to_tag, cseq=cseq, body=body, ctype=ctype or "application/sdp",
                extra="\r\n".join(f"Route: {r}" for r in self.routes),
            ),
            self.cluster.addr,
        )  # fmt: skip

    def key(self, keys: str) -> None:
        """The caller keys `keys` by RFC 4733, at a person's pace."""
        send_paced(
            self.rtp, (HOST, self.node_rtp_port), keyed_packets(keys, inband=False, rfc4733=True)
        )

    def hangup(self, pbx: SipEndpoint, timeout: float = 5.0) -> SipMessage:
        """BYE through the dispatcher; the PBX's BYE from the node (answered 200)."""
        self.in_dialog("BYE")
        bye = pbx.expect("BYE", call_id=self.agent_call_id, timeout=timeout)
        pbx.reply(bye, 200)
        self.sip.expect(200, call_id=self.call_id, timeout=timeout)
        return bye

    def close(self) -> None:
        for s in (self.rtp, self.agent_rtp):
            s.close()
        self.sip.close()


class CallLoad:
    """Load phones (masker.phones.lite) placing a call through the dispatcher every
    `every_s` and hanging each up after `hold_s`, on their own thread until `stop()`,
    which hangs up what is left and waits for the BYEs to be answered."""

    def __init__(self, phones: LitePhones, every_s: float = 0.5, hold_s: float = 3.0) -> None:
        self.phones = phones
        self.every_s = every_s
        self.hold_s = hold_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n, next_call = 0, time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() >= next_call:
                self.phones.start_call(n, user=f"agent{n}")
                n, next_call = n + 1, next_call + self.every_s
            self._step()
        deadline = time.monotonic() + 8.0
        busy = ("inviting", "up", "bye_sent")
        while time.monotonic() < deadline and any(
            c.state in busy for c in self.phones.calls.values()
        ):
            self._step()

    def _step(self) -> None:
        """Hang up the calls held long enough, resend unanswered BYEs, 0.1 s of traffic."""
        now = time.monotonic()
        for call in self.phones.calls.values():
            if call.state == "up" and now - call.answered_at > self.hold_s:
                self.phones.hangup(call)
        self.phones.retransmit(now)
        drive(self.phones, now + 0.1)

    def stop(self) -> list[LiteCall]:
        """Stop placing calls, end the running ones; every call placed."""
        self._stop.set()
        self._thread.join(15)
        return list(self.phones.calls.values())


def dropped(calls: list[LiteCall], min_packets: int) -> list[str]:
    """Calls that did not run normally: refused, never answered, not ended by their
    caller's BYE (answered), or whose agent heard fewer than `min_packets`."""
    bad = []
    for call in calls:
        if call.state != "ended" or call.bye_tries == 0 or call.rx.packets < min_packets:
            bad.append(f"call {call.n}: {call.state}, {call.rx.packets} packets to the agent")
    return bad
