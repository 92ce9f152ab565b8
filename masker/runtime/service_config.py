"""Service configuration: TOML file (masker/runtime/default.toml documents every key)
overlaid with MASKER_<SECTION>_<KEY> environment variables.

Typed dataclasses with defaults; unknown keys in a known section are an error
(typos must not silently fall back to defaults); unknown sections are kept raw in
`Config.extra` for components that own them (e.g. the agent-desktop API).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from masker.errors import UserError
from masker.media.loop import LANE_CHOICES


@dataclass
class SipConfig:
    listen_address: str = "127.0.0.1"
    listen_port: int = 5060
    public_address: str = ""
    user_agent: str = "dtmf-masker"
    max_message_bytes: int = 8192
    log_messages: bool = False
    # Content types of SIP INFO relayed between the legs; every other INFO stops at the
    # masker. Types that can carry keys are refused (masker.sip.info.carries_digits).
    info_allowlist: list[str] = field(default_factory=list)
    # SIP INFO per dialog: a bucket of info_burst refilled at info_rate per second; an
    # INFO over it gets 503 and its keys are dropped (counted; the capture fails).
    info_rate: float = 20.0
    info_burst: int = 40
    # Addresses/networks (CIDR) allowed to send SIP; the PBX's address is always allowed.
    trusted_sources: list[str] = field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])


@dataclass
class PbxConfig:
    address: str = "127.0.0.1"
    port: int = 5080
    username: str = ""
    password: str = ""
    pass_headers: list[str] = field(
        default_factory=lambda: [
            "P-Asserted-Identity",
            "Diversion",
            "Remote-Party-ID",
            "User-Agent",
        ]
    )
    agent_id_header: str = "X-Agent-Id"
    agent_id_request_uri: bool = True
    # Seconds without any response from the PBX to the agent leg's INVITE before the
    # caller gets 504 (RFC 3261's own timer would keep the caller waiting 32 s).
    no_reply_s: float = 5.0

    def __repr__(self) -> str:  # never print the password
        return f"PbxConfig(address={self.address!r}, port={self.port}, username={self.username!r})"


@dataclass
class MediaConfig:
    address: str = "127.0.0.1"
    public_address: str = ""
    port_min: int = 20000
    port_max: int = 29999
    lookahead_ms: int = 20
    jitter_ms: int = 40
    mask_mode: str = "tone"
    rtp_timeout_s: float = 60
    # Calls whose caller is not expected to send (hold, inactive, c=0.0.0.0, no SDP).
    hold_timeout_s: float = 1800.0
    batch_size: int = 32
    max_calls: int = 500
    # "strict": media only from the SDP's address and port; "symmetric": re-latch (NAT).
    latching: str = "strict"
    latch_packets: int = 5
    # Sub-ticks per 20 ms frame (masker.media.loop): 1, 2 or 4.
    lanes: int = 1
    # A media tick this many ms behind its time is logged as `media.stalled`, with
    # where the time went (masker.media.stalls); at least one frame (20).
    stall_log_ms: int = 100
    # SRTP (SDES) per leg: "off" | "offer" | "require" (masker.wire.sdes).
    srtp_caller: str = "off"
    srtp_agent: str = "off"
    # Codecs either leg may use, in order of preference (masker.wire.sdp.set_codecs).
    codecs: list[str] = field(default_factory=lambda: ["PCMU", "PCMA", "G722"])
    # Media worker processes: "0" = the media thread in this process, N = N processes,
    # "auto" = one per core (masker.media.workers).
    workers: str = "auto"

    @property
    def sdp_address(self) -> str:
        return self.public_address or self.address


@dataclass
class MaskingConfig:
    policy: str = "always"
    auto_capture: bool = True
    auto_currency: str = "GBP"


@dataclass
class ServiceConfig:
    drain_grace_s: float = 30
    log_level: str = "info"
    api_enabled: bool = True
    # With dev keys and no [api] credential: a generated development API key lives here.
    dev_api_key_file: str = "./var/dev-api-key"


@dataclass
class TokenizerSettings:
    """The [tokenizer] section: where the vault and keys live (the service builds a
    tokenizer.TokenizerConfig from it)."""

    vault_path: str = "./var/vault.sqlite"
    # "sqlite" (vault_path, one node) or "postgresql" (vault_dsn, shared by every node).
    vault_backend: str = "sqlite"
    vault_dsn: str = field(default="", repr=False)  # may hold a password: never shown
    keys_dir: str = "./var/keys"
    dev_keys: bool = True
    kek_file: str = ""
    # How often expired vault records are purged (seconds, 0 = never).
    purge_interval_s: float = 3600.0


@dataclass
class GatewayConfig:
    """The PSP the card is handed to after tokenisation; empty url = no gateway."""

    url: str = ""
    ca_file: str = ""
    timeout_s: float = 15.0
    api_key_file: str = ""
    api_key_env: str = ""


@dataclass
class ClusterConfig:
    """The [cluster] section: this node's place in a cluster (masker/cluster/);
    empty node_id = a single node (no directory, no PostgreSQL)."""

    node_id: str = ""
    dsn: str = ""
    # This node's API as the other nodes reach it (actions forwarded to its calls).
    api_url: str = ""
    heartbeat_s: float = 1.0
    node_dead_s: float = 5.0


@dataclass
class Config:
    sip: SipConfig = field(default_factory=SipConfig)
    pbx: PbxConfig = field(default_factory=PbxConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    tokenizer: TokenizerSettings = field(default_factory=TokenizerSettings)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    extra: dict[str, Any] = field(default_factory=dict)


SECTIONS = ("sip", "pbx", "media", "masking", "service", "tokenizer", "gateway", "cluster")
ENV_PREFIX = "MASKER_"

#: Sections owned by other components; MASKER_<SECTION>_<KEY> still reaches them (as strings).
EXTRA_SECTIONS = ("api",)
DEFAULT_FILE = Path(__file__).with_name("default.toml")
#: String settings that also take a bare number (`workers = 2` as well as "auto").
WORD_OR_NUMBER = frozenset({("media", "workers")})


def _coerce(section: str, key: str, value: Any, default: Any) -> Any:
    where = f"[{section}] {key}"
    if isinstance(default, bool):
        if isinstance(value, str):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
        if isinstance(value, bool):
            return value
        raise UserError(f"{where} must be true or false")
    if isinstance(default, int) and not isinstance(default, bool):
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise UserError(f"{where} must be an integer") from None
    if isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise UserError(f"{where} must be a number") from None
    if isinstance(default, list):
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise UserError(f"{where} must be a list of strings")
    if (section, key) in WORD_OR_NUMBER and type(value) is int:
        return str(value)
    if not isinstance(value, str):
        raise UserError(f"{where} must be a string")
    return value


def _apply(cfg: Config, section: str, values: dict[str, Any], origin: str) -> None:
    target = getattr(cfg, section)
    known = {f.name: getattr(target, f.name) for f in fields(target)}
    for key, value in values.items():
        if key not in known:
            raise UserError(f"unknown key '{key}' in [{section}] ({origin})")
        setattr(target, key, _coerce(section, key, value, known[key]))


def _validate(cfg: Config) -> None:
    """Every value in range, section by section; the first problem is a UserError."""
    _validate_media(cfg.media)
    _validate_signalling(cfg)
    if cfg.masking.policy not in ("always", "capture"):
        raise UserError("[masking] policy must be 'always' or 'capture'")
    g = cfg.gateway
    if g.url and not g.url.startswith("https://"):
        raise UserError("[gateway] url must be an https:// URL (or empty for no gateway)")
    if g.timeout_s <= 0:
        raise UserError("[gateway] timeout_s must be positive")
    if cfg.tokenizer.purge_interval_s < 0:
        raise UserError("[tokenizer] purge_interval_s must not be negative")
    if cfg.tokenizer.vault_backend not in ("sqlite", "postgresql"):
        raise UserError("[tokenizer] vault_backend must be 'sqlite' or 'postgresql'")
    if cfg.tokenizer.vault_backend == "postgresql" and not cfg.tokenizer.vault_dsn:
        raise UserError("[tokenizer] vault_backend 'postgresql' needs a vault_dsn")
    if cfg.service.log_level not in ("debug", "info", "warning", "error"):
        raise UserError("[service] log_level must be debug, info, warning or error")
    _validate_cluster(cfg.cluster)


def _validate_cluster(c: ClusterConfig) -> None:
    if not c.node_id:
        return
    if not c.dsn or not c.api_url.startswith(("http://", "https://")):
        raise UserError("[cluster] a node_id needs a dsn and an http(s):// api_url")
    if not 0 < c.heartbeat_s < c.node_dead_s:
        raise UserError("[cluster] heartbeat_s must be positive and below node_dead_s")


def _validate_media(m: MediaConfig) -> None:
    if not (1024 <= m.port_min < m.port_max <= 65535) or m.port_max - m.port_min < 3:
        raise UserError("[media] port_min/port_max must be an increasing range within 1024-65535")
    if m.mask_mode not in ("tone", "silence", "noise", "cadence"):
        raise UserError("[media] mask_mode must be tone, silence, noise or cadence")
    if not 0 <= m.jitter_ms <= 200 or m.jitter_ms % 20:
        raise UserError("[media] jitter_ms must be 0-200 in steps of 20")
    if not 10 <= m.lookahead_ms <= 200:
        raise UserError("[media] lookahead_ms must be 10-200")
    if m.rtp_timeout_s < 0 or m.hold_timeout_s < 0:
        raise UserError("[media] rtp_timeout_s and hold_timeout_s must not be negative")
    if m.batch_size < 1 or m.max_calls < 1:
        raise UserError("[media] batch_size and max_calls must be positive")
    if m.latching not in ("strict", "symmetric"):
        raise UserError("[media] latching must be 'strict' or 'symmetric'")
    if not 2 <= m.latch_packets <= 50:
        raise UserError("[media] latch_packets must be 2-50")
    if m.stall_log_ms < 20:
        raise UserError("[media] stall_log_ms must be at least 20 (one frame)")
    if m.lanes not in LANE_CHOICES:
        raise UserError(f"[media] lanes must be one of {LANE_CHOICES}")
    for key in ("srtp_caller", "srtp_agent"):
        if getattr(m, key) not in ("off", "offer", "require"):
            raise UserError(f"[media] {key} must be 'off', 'offer' or 'require'")
    if m.workers != "auto" and not (m.workers.isdigit() and int(m.workers) <= 64):
        raise UserError('[media] workers must be "auto" or a number of processes, 0-64')
    known = ("PCMU", "PCMA", "G722")
    names = [str(c).upper() for c in m.codecs] if isinstance(m.codecs, list) else []
    if not names or len(set(names)) != len(names) or any(c not in known for c in names):
        raise UserError("[media] codecs must list distinct codecs among PCMU, PCMA, G722")


def _validate_signalling(cfg: Config) -> None:
    """[sip] and [pbx]."""
    from masker.sip.acl import parse_networks
    from masker.sip.info import carries_digits

    sip = cfg.sip
    if not 1 <= sip.info_rate <= 1000 or not 1 <= sip.info_burst <= 10000:
        raise UserError("[sip] info_rate must be 1-1000 and info_burst 1-10000")
    if not 0 < cfg.pbx.no_reply_s < 32:
        raise UserError("[pbx] no_reply_s must be more than 0 and less than 32")
    for port in (sip.listen_port, cfg.pbx.port):
        if not 0 <= port <= 65535:
            raise UserError("SIP ports must be 0-65535")
    try:
        parse_networks(sip.trusted_sources)
    except ValueError as exc:
        raise UserError(f"[sip] trusted_sources: {exc}") from None
    if not sip.trusted_sources:
        raise UserError("[sip] trusted_sources is empty: no trunk could place a call")
    for ctype in sip.info_allowlist:
        if carries_digits(ctype):
            raise UserError(f"[sip] info_allowlist: '{ctype}' can carry keypad digits")


#: Settings that may hold a password (a DSN's): once the configuration is loaded, their
#: MASKER_<SECTION>_<KEY> variables are removed from the environment, so no child
#: process inherits them.
SECRET_SETTINGS = (("tokenizer", "vault_dsn"), ("cluster", "dsn"))


def env_name(section: str, key: str) -> str:
    """The environment variable that sets `key` of [section]."""
    return f"{ENV_PREFIX}{section}_{key}".upper()


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Defaults <- TOML file <- MASKER_SECTION_KEY environment variables."""
    cfg = Config()
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise UserError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"config file {path} is not valid TOML: {exc}") from None
        except UnicodeDecodeError:  # found by fuzzing: tomllib decodes without a check
            raise UserError(f"config file {path} is not UTF-8 text") from None
        for section, values in data.items():
            if section in SECTIONS:
                if not isinstance(values, dict):
                    raise UserError(f"[{section}] must be a table")
                _apply(cfg, section, values, str(path))
            else:
                cfg.extra[section] = values
    environ = os.environ if env is None else env
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        for section in SECTIONS:
            if rest.startswith(section + "_"):
                _apply(cfg, section, {rest[len(section) + 1 :]: value}, f"environment {name}")
                break
        else:
            for section in EXTRA_SECTIONS:
                if rest.startswith(section + "_"):
                    cfg.extra.setdefault(section, {})[rest[len(section) + 1 :]] = value
    _validate(cfg)
    return cfg
