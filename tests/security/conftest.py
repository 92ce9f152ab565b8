"""tests/security: the security regression suite (docs/SECURITY.md lists each test with
the threat it closes).  Its tests use the shared helpers in tests/ (serve_support,
sipclient, media_support, psp_server, ...): put that directory on sys.path whatever
the rootdir or import mode."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parent.parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
