"""Safe state on every exit path, and the lock that keeps two sessions off one rig.

docs/design.md "Hardware rig": fixture finalizers, atexit, SIGTERM/SIGINT handlers and the
``mbus-rig safe-state`` command all end in the same safe state (every fault line released,
outside DUT programs stopped); teardown is bounded in time (CI cancellation gives about 7 s
between SIGTERM and SIGKILL).

:class:`SafeStateGuard` runs a list of named actions once, whichever exit path comes first:
the rig's own ``close()``, the interpreter's exit (atexit), or a SIGTERM/SIGINT. A signal
applies the safe state *at once* (before anything else can hang), then raises
KeyboardInterrupt so pytest unwinds and runs its finalizers; a watchdog ends the process if
the rig's teardown (up to :meth:`SafeStateGuard.uninstall`, the end of ``Rig.close()``) takes
longer than the bound. What pytest does after the rig is closed (the interrupt's traceback,
every installed plugin's summary, the JUnit and allure files) is not the rig's teardown and is
not cut: it takes seconds with plugins such as labgrid's or hypothesis's loaded, and cutting it
would turn pytest's "interrupted" into the watchdog's status and lose the reports.

:class:`RigLock` is an ``fcntl.flock`` on a lock file holding the holder's pid: a second
session on the same rig fails at once with a message naming that pid.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from hardware.clock import Clock, WallClock
from protocol.errors import HardwareError

log = logging.getLogger(__name__)

#: Bound on the whole teardown after a signal (CI gives ~7 s between SIGTERM and SIGKILL);
#: $MBUS_RIG_TEARDOWN_BOUND_S overrides it.
SIGNAL_TEARDOWN_BOUND_S = 5.0
BOUND_ENV = "MBUS_RIG_TEARDOWN_BOUND_S"
#: Exit status the watchdog uses when unwinding after a signal overruns the bound.
WATCHDOG_EXIT_STATUS = 143
#: Margin on the watchdog's bound before whoever stopped a pytest run sends SIGKILL.
RUN_STOP_MARGIN_S = 1.0

LOCK_DIR_ENV = "MBUS_RIG_LOCK_DIR"

Action = Callable[[], None]


class RigBusyError(HardwareError):
    """Another process holds the rig's lock."""


def lock_path_for(rig_name: str, source: str) -> Path:
    """The lock file of one rig: in $MBUS_RIG_LOCK_DIR, else $XDG_RUNTIME_DIR, else /tmp;
    named after the rig and its file, so two different rig files do not block each other."""
    folder = os.environ.get(LOCK_DIR_ENV) or os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
    digest = hashlib.sha1(os.path.abspath(source).encode()).hexdigest()[:10]
    safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in rig_name)
    return Path(folder) / f"mbus-rig-{safe_name}-{digest}.lock"


class RigLock:
    """An exclusive, non-blocking ``flock`` on ``path``; the file records the holder's pid.

    The kernel drops the lock when the holder dies (even by SIGKILL), so a stale file never
    blocks the next run.
    """

    def __init__(self, path: Path, *, rig_name: str = "rig") -> None:
        self.path = path
        self.rig_name = rig_name
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RigLock:
        if self._fd is not None:
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise HardwareError(f"rig lock {self.path}: cannot be opened ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RigBusyError(
                f"rig {self.rig_name!r} is in use by another session (pid {holder}; lock file "
                f"{self.path}); wait for it to finish or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {' '.join(sys.argv)[:200]}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def holder(self) -> str | None:
        """The pid recorded by a live holder, or None when the rig is free."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        finally:
            os.close(fd)
        return None

    def __enter__(self) -> RigLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _bound_from_env() -> float:
    text = os.environ.get(BOUND_ENV)
    if not text:
        return SIGNAL_TEARDOWN_BOUND_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 60:
        log.warning("%s=%r is not a number of seconds in (0, 60]; using %g s", BOUND_ENV, text,
                    SIGNAL_TEARDOWN_BOUND_S)
        return SIGNAL_TEARDOWN_BOUND_S
    return value


def run_stop_bound() -> float:
    """How long a pytest run gets to wind down after SIGTERM (its rig's teardown within the
    watchdog's bound, then its reports) before whoever stopped it sends SIGKILL."""
    return _bound_from_env() + RUN_STOP_MARGIN_S


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").split()
    except OSError:
        text = []
    return text[0] if text else "unknown"


class SafeStateGuard:
    """Runs the safe-state actions exactly once, on whichever exit path comes first.

    ``install()`` registers atexit and (in the main thread only) SIGTERM/SIGINT handlers;
    ``trigger(reason)`` runs every action in order, each one guarded so a failing action
    does not stop the next; ``uninstall()`` restores the previous handlers.
    """

    def __init__(self, actions: list[tuple[str, Action]] | None = None, *,
                 clock: Clock | None = None, bound: float | None = None) -> None:
        self.actions: list[tuple[str, Action]] = list(actions or [])
        self.bound = bound if bound is not None else _bound_from_env()
        self.triggered_by: str | None = None
        self.failures: list[str] = []
        self._clock = clock if clock is not None and not clock.is_virtual else WallClock()
        self._lock = threading.Lock()
        self._previous: dict[int, Any] = {}
        self._installed = False
        self._torn_down = threading.Event()  # uninstall() ran: the watchdog has nothing to cut

    def add(self, name: str, action: Action) -> None:
        self.actions.append((name, action))

    def trigger(self, reason: str) -> bool:
        """Apply the safe state (once); True if this call did it."""
        with self._lock:
            if self.triggered_by is not None:
                return False
            self.triggered_by = reason
        for name, action in self.actions:
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - one failing action must not stop the rest
                self.failures.append(f"{name}: {exc}")
                log.error("safe state (%s): %s failed: %s", reason, name, exc)
        return True

    def install(self) -> SafeStateGuard:
        if self._installed:
            return self
        self._installed = True
        self._torn_down.clear()
        atexit.register(self._at_exit)
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def uninstall(self) -> None:
        """Restore the previous handlers; the teardown is over, so a watchdog armed by a
        signal stands down."""
        self._torn_down.set()
        if not self._installed:
            return
        self._installed = False
        atexit.unregister(self._at_exit)
        if threading.current_thread() is threading.main_thread():
            for signum, previous in self._previous.items():
                if signal.getsignal(signum) == self._on_signal:
                    signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    def _at_exit(self) -> None:
        self.trigger("exit")

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        first = self.trigger(name)
        if first:
            print(f"mbus-rig: {name}: rig put in safe state; stopping", file=sys.stderr, flush=True)
            self._clock.call_at(self._clock.now() + self.bound, self._watchdog)
        raise KeyboardInterrupt(name)

    def _watchdog(self) -> None:
        if self._torn_down.is_set():
            return
        print(f"mbus-rig: teardown took longer than {self.bound:g} s after a signal; exiting",
              file=sys.stderr, flush=True)
        os._exit(WATCHDOG_EXIT_STATUS)


@contextlib.contextmanager
def stop_on_signal() -> Iterator[threading.Event]:
    """An Event that SIGINT or SIGTERM sets while the block runs (for the long-running
    commands: ``while not stop.wait(0.5): ...``); the previous handlers come back after."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
