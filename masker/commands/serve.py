"""`masker serve [--config FILE]`: run the masking B2BUA in the foreground."""

from __future__ import annotations

import argparse
import faulthandler
import signal
import sys

from masker.runtime.hardening import disable_core_dumps, refuse_dev_keys_on_network
from masker.runtime.service_config import Config, load_config

DEV_KEYS_WARNING = """\
*****************************************************************************
*  WARNING: masker serve is using DEVELOPMENT KEYS (tokenizer.dev_keys).    *
*  Tokens and the vault are protected by throw-away keys kept next to the   *
*  vault. Never take real card payments with this configuration: set        *
*  [tokenizer] dev_keys = false and provide production keys.                *
*****************************************************************************
"""


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "serve",
        help="run the masking SIP B2BUA",
        description="Run the masking SIP B2BUA (trunk <-> PBX) with anchored, masked media. "
        "Every setting is documented in masker/runtime/default.toml; environment variables "
        "MASKER_<SECTION>_<KEY> override the file.",
    )
    p.add_argument("--config", metavar="FILE", help="TOML configuration file")
    p.add_argument(
        "--allow-dev-keys-on-network",
        action="store_true",
        help="start even though development keys would be reachable from the network",
    )
    return p


def _listen_addresses(config: Config) -> dict[str, str]:
    """Every address the service takes requests or media on."""
    from masker.api import ApiConfig

    addresses = {"sip": config.sip.listen_address, "media": config.media.address}
    if config.service.api_enabled:
        addresses["api"] = ApiConfig.from_mapping(config.extra.get("api", {})).host
    return addresses


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    # Card data lives in this process's memory: it must never reach a core file.
    disable_core_dumps()
    refuse_dev_keys_on_network(
        config.tokenizer.dev_keys,
        _listen_addresses(config),
        forced=getattr(args, "allow_dev_keys_on_network", False),
    )
    # `kill -USR2 <pid>` prints every thread's stack (code locations only, never
    # values) to stderr: the way to see where a stuck service is waiting.
    faulthandler.register(signal.SIGUSR2, all_threads=True)
    try:
        from masker.runtime.logs import configure_logging

        configure_logging(json=True, level=config.service.log_level)
    except ImportError:
        pass
    import structlog

    from masker.runtime.service import Service

    if config.tokenizer.dev_keys:
        sys.stderr.write(DEV_KEYS_WARNING)
        sys.stderr.flush()
        structlog.get_logger().warning(
            "development keys in use", keys_dir=config.tokenizer.keys_dir
        )
    return Service(config).run()
