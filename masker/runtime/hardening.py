"""Process hygiene for a service that holds card data in memory.

Clear card data lives only in this process's memory, so the process must not
hand that memory to anyone else:

- no core dumps (RLIMIT_CORE 0) and not dumpable (PR_SET_DUMPABLE 0), which
  also makes /proc/<pid>/mem, environ and ptrace root-only;
- the KEK's environment variable is removed once the tokeniser has read it, so
  no child process inherits it and nothing later prints it with the environment;
- development keys and credentials stay on loopback: a service that listens on
  a network address with them refuses to start unless explicitly forced.
"""

from __future__ import annotations

import ipaddress
import os
import resource
from collections.abc import Iterable

from masker.errors import UserError
from masker.runtime.libc import libc

#: prctl(2) options for the dumpable flag (linux/prctl.h).
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
#: Host names that always mean this machine.
_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})


def _prctl(option: int, value: int = 0) -> int:
    lib = libc()
    if lib is None:
        return -1
    return int(lib.prctl(option, value, 0, 0, 0))


def disable_core_dumps() -> bool:
    """No core file and no dumpable memory; True when the kernel took both."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return _prctl(PR_SET_DUMPABLE, 0) == 0


def is_dumpable() -> bool:
    """The kernel's dumpable flag for this process."""
    return _prctl(PR_GET_DUMPABLE) != 0


def forget_environment(names: Iterable[str | None]) -> list[str]:
    """Remove secret-bearing variables from the environment; returns those removed."""
    removed = []
    for name in names:
        if name and os.environ.pop(name, None) is not None:
            removed.append(name)
    return removed


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; a wildcard or any other address is not."""
    if address.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def refuse_dev_keys_on_network(
    dev_keys: bool, addresses: dict[str, str], forced: bool = False
) -> None:
    """Raise unless development keys, if used, are only reachable from this machine."""
    if not dev_keys or forced:
        return
    exposed = sorted(f"{name}={addr}" for name, addr in addresses.items() if not is_loopback(addr))
    if exposed:
        raise UserError(
            "development keys ([tokenizer] dev_keys = true) on a non-loopback address "
            f"({', '.join(exposed)}): configure production keys, or pass "
            "--allow-dev-keys-on-network to accept that anyone who reaches it can "
            "read tokens made with throw-away keys"
        )
