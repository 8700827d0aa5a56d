"""The command as a process: what `bifrost-gitops` does at its very start and end, and nowhere else.

A big repository leaves some 160 MB of small objects behind a command. Python would then spend a
quarter of a second collecting them twice: once when the cyclic collector first runs after the
load (it walks every object the load made), and again when the interpreter tears itself down.
A process about to end needs neither. So, only when running as the console command (never as a
library or under CliRunner):

- pydantic's plugins are not looked for (PYDANTIC_DISABLE_PLUGINS, unless already set): a scan
  of every installed distribution, and third-party code watching the repository's data;
- unless a tracer, profiler or coverage runs (they write their results at interpreter exit):
  after a repository is loaded, its objects are frozen out of the cyclic collector (gc.freeze)
  and kept alive to the end (the command's frames unwinding would otherwise free the last one,
  0.05 s per 10,000 files), and at the end stdout and stderr are flushed and the process leaves
  with os._exit and the same exit code, skipping the teardown.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, NoReturn

_console = False
#: the repository loaded last, kept from being freed before os._exit (see the module doc)
_kept: object = None


def console(main: Callable[[], Any]) -> NoReturn:
    """Run MAIN (click's standalone main) as the whole process; exit fast when it is safe."""
    global _console
    _console = _plain_process()
    # pydantic would scan every installed distribution for plugins before the first model is
    # built: time for nothing, and third-party code watching the repository's data
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        main()
    except SystemExit as e:
        code = e.code
    else:  # pragma: no cover - click's standalone main always ends in SystemExit
        code = 0
    if code is None:
        code = 0
    if _console and isinstance(code, int) and _flushed() and _alone():
        os._exit(code & 0xFF)
    sys.exit(code)


def loaded(repository: object = None) -> None:
    """A repository is loaded: when the process is the console command, keep the cyclic collector
    from walking its objects again, and keep the last one loaded alive until the process ends."""
    global _kept
    if _console:
        gc.freeze()
        _kept = repository


def _plain_process() -> bool:
    """No tracer, profiler or coverage, which all write their results at interpreter exit."""
    return sys.gettrace() is None and sys.getprofile() is None and "coverage" not in sys.modules


def _flushed() -> bool:
    """Flush what the command wrote; False when that fails (a closed pipe): the ordinary exit
    then reports it as it always has."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return False
    return True


def _alone() -> bool:
    """No other thread or child process still working (an ordinary exit waits for them)."""
    if threading.active_count() > 1:
        return False
    mp = sys.modules.get("multiprocessing")
    return mp is None or not mp.active_children()
