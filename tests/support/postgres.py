"""A real PostgreSQL server on loopback for tests (scripts/pg-local.sh, one
implementation shared with `make cluster`).  As root the server runs as the
`postgres` user, which cannot enter pytest's private tmp_path, so the data
directory lives in its own world-traversable temporary directory."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from masker.phones.service_process import free_port
from tests.support.paths import PROJECT_ROOT

PG_LOCAL = PROJECT_ROOT / "scripts" / "pg-local.sh"


def postgres_available() -> bool:
    """True where Debian's PostgreSQL server is installed."""
    return any(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))


@dataclass
class PostgresServer:
    """One running server: `dsn` for clients, `datadir` to scan, stop/start to fault."""

    datadir: Path
    port: int
    dsn: str = ""

    def start(self) -> str:
        out = subprocess.run(
            [str(PG_LOCAL), "start", str(self.datadir), str(self.port)],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.dsn = out.stdout.strip().splitlines()[-1]
        return self.dsn

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            [str(PG_LOCAL), "stop", str(self.datadir), mode],
            check=True,
            capture_output=True,
            timeout=60,
        )


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a fresh server, yield it, stop it and delete its data directory."""
    root = Path(tempfile.mkdtemp(prefix="masker-pg-"))
    root.chmod(0o711)
    server = PostgresServer(datadir=root / "data", port=free_port(socket.SOCK_STREAM))
    server.start()
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
