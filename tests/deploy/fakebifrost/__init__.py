"""A contract-faithful fake of the Bifrost REST API (docs/bifrost-api.md) for tests.

Standard library only: ``http.server.ThreadingHTTPServer`` on 127.0.0.1, port 0, in a
background thread, with in-memory state (``FakeBifrost.state``), a request log, auth with
rotating refresh tokens, and fault injection. ``tests/test_fakebifrost.py`` documents it.
"""

from .server import FakeBifrost, Fault, RequestRecord, TokenPair
from .state import ApiError, State

__all__ = ["ApiError", "FakeBifrost", "Fault", "RequestRecord", "State", "TokenPair"]
