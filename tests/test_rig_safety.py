"""Safe state and the rig lock (rig/safety.py): every exit path releases the fault lines.

The exit paths that end a process (SIGTERM, SIGINT, atexit) run in a child process whose
simulated GPIO logs every level change to a file; the parent reads the file afterwards.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hardware.gpio import SimGpio
from hardware.lines import FaultLines
from rig.config import SIM_LINES
from rig.safety import RigBusyError, RigLock, SafeStateGuard, lock_path_for, stop_on_signal

ROOT = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT_S = 20


def _lines() -> tuple[SimGpio, FaultLines]:
    gpio = SimGpio()
    return gpio, FaultLines.from_specs(gpio, SIM_LINES)


# --- the guard, in process -------------------------------------------------------------------


def test_guard_runs_every_action_once_even_when_one_fails():
    calls: list[str] = []

    def broken() -> None:
        calls.append("broken")
        raise RuntimeError("relay stuck")

    guard = SafeStateGuard([("broken", broken), ("lines", lambda: calls.append("lines"))])
    assert guard.trigger("close") is True
    assert guard.trigger("exit") is False
    assert calls == ["broken", "lines"]
    assert guard.triggered_by == "close"
    assert guard.failures == ["broken: relay stuck"]


def test_guard_releases_asserted_fault_lines():
    gpio, lines = _lines()
    lines["bus_power_cut"].assert_()
    lines["noise"].assert_()
    assert set(lines.asserted()) == {"bus power cut", "noise"}
    SafeStateGuard([("lines", lines.safe_state)]).trigger("close")
    assert lines.asserted() == []
    assert gpio.level(17) is False  # active high, released = low


def test_guard_install_and_uninstall_restore_signal_handlers():
    before = signal.getsignal(signal.SIGTERM)
    guard = SafeStateGuard().install()
    assert signal.getsignal(signal.SIGTERM) != before
    guard.uninstall()
    assert signal.getsignal(signal.SIGTERM) == before


class _ManualClock:
    """A wall-like clock whose timers run when the test says (the watchdog's deadline)."""

    is_virtual = False

    def __init__(self) -> None:
        self.timers: list[tuple[float, object]] = []

    def now(self) -> float:
        return 100.0

    def sleep(self, seconds: float) -> None:
        raise AssertionError("the guard does not sleep")

    def call_at(self, when: float, callback: object) -> None:
        self.timers.append((when, callback))


@pytest.mark.parametrize("closed_in_time, exits", [(False, True), (True, False)])
def test_watchdog_cuts_only_the_rigs_own_teardown(monkeypatch, closed_in_time, exits):
    """A signal arms the watchdog at the bound; it ends the process only if the rig's teardown
    (up to uninstall(), the end of Rig.close()) has not finished by then: what pytest does
    after that (tracebacks, plugins' summaries, reports) is not cut."""
    exited: list[int] = []
    monkeypatch.setattr(os, "_exit", exited.append)
    clock = _ManualClock()
    guard = SafeStateGuard([("lines", lambda: None)], clock=clock, bound=5.0).install()
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            signal.raise_signal(signal.SIGTERM)
    finally:
        if closed_in_time:
            guard.uninstall()
    assert guard.triggered_by == "SIGTERM"
    [(when, watchdog)] = clock.timers
    assert when == 105.0
    watchdog()  # type: ignore[operator]
    guard.uninstall()
    assert exited == ([143] if exits else [])


# --- the lock --------------------------------------------------------------------------------


def test_second_holder_is_refused_with_the_holders_pid(tmp_path):
    path = tmp_path / "rig.lock"
    with RigLock(path, rig_name="bench"):
        with pytest.raises(RigBusyError) as info:
            RigLock(path, rig_name="bench").acquire()
        message = str(info.value)
        assert f"pid {os.getpid()}" in message and "'bench'" in message and str(path) in message
        assert RigLock(path).holder() == str(os.getpid())
    assert RigLock(path).holder() is None
    RigLock(path).acquire().release()  # free again


def test_lock_paths_differ_per_rig_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MBUS_RIG_LOCK_DIR", str(tmp_path))
    a = lock_path_for("bench", "/etc/a.toml")
    assert a.parent == tmp_path
    assert a != lock_path_for("bench", "/etc/b.toml")
    assert a == lock_path_for("bench", "/etc/a.toml")


LOCK_CHILD = """
import sys
from pathlib import Path
from rig.safety import RigLock
lock = RigLock(Path(sys.argv[1]), rig_name="bench").acquire()
print("locked", flush=True)
sys.stdin.readline()
"""


def _wait_line(proc: subprocess.Popen[str], expected: str) -> None:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], CHILD_TIMEOUT_S)
    assert ready, f"child did not print {expected!r} in time"
    line = proc.stdout.readline().strip()
    assert line == expected, (line, proc.stderr.read() if proc.stderr else "")


def test_lock_held_by_another_process_and_freed_when_it_dies(tmp_path):
    path = tmp_path / "rig.lock"
    proc = subprocess.Popen([sys.executable, "-c", LOCK_CHILD, str(path)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_line(proc, "locked")
        with pytest.raises(RigBusyError, match=f"pid {proc.pid}"):
            RigLock(path, rig_name="bench").acquire()
    finally:
        proc.kill()  # SIGKILL: no cleanup at all, the kernel still drops the flock
        proc.wait(CHILD_TIMEOUT_S)
    RigLock(path).acquire().release()


# --- exit paths that end the process -----------------------------------------------------------

GUARD_CHILD = """
import signal, sys
from pathlib import Path
from hardware.gpio import SimGpio
from hardware.lines import FaultLines
from rig.config import SIM_LINES
from rig.safety import SafeStateGuard

log = open(sys.argv[1], "a", buffering=1)
gpio = SimGpio()
for line in SIM_LINES:
    gpio.on_change(line.pin, lambda pin, level: log.write(f"{pin} {int(level)}\\n"))
lines = FaultLines.from_specs(gpio, SIM_LINES)
guard = SafeStateGuard([("fault lines", lines.safe_state)]).install()
lines["bus_power_cut"].assert_()
lines["bus_short"].assert_()
mode = sys.argv[2]
if mode == "exit":
    print("ready", flush=True)
    sys.exit(3)          # no close(): only atexit can release the lines
if mode == "raise":
    print("ready", flush=True)
    raise RuntimeError("a fixture blew up")
try:
    print("ready", flush=True)  # inside the try: the signal may come at once
    signal.pause()       # the parent sends SIGTERM or SIGINT
except KeyboardInterrupt as exc:
    log.write(f"interrupted {exc}\\n")
    sys.exit(130)
"""


def _levels(log: Path) -> dict[int, int]:
    """The last level logged for each pin."""
    levels: dict[int, int] = {}
    for row in log.read_text().splitlines():
        parts = row.split()
        if len(parts) == 2 and parts[0].isdigit():
            levels[int(parts[0])] = int(parts[1])
    return levels


@pytest.mark.parametrize("mode, signum, status", [
    ("wait", signal.SIGTERM, 130),
    ("wait", signal.SIGINT, 130),
    ("exit", None, 3),
    ("raise", None, 1),
])
def test_every_exit_path_releases_the_fault_lines(tmp_path, mode, signum, status):
    log = tmp_path / "gpio.log"
    proc = subprocess.Popen([sys.executable, "-c", GUARD_CHILD, str(log), mode], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_line(proc, "ready")
        if signum is not None:
            assert _levels(log) == {17: 1, 22: 1}  # both faults on, the child waits
            proc.send_signal(signum)
        assert proc.wait(CHILD_TIMEOUT_S) == status
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert log.read_text().splitlines()[:2] == ["17 1", "22 1"]  # on first ...
    assert _levels(log) == {17: 0, 22: 0}  # ... released at the end
    if signum is not None:
        assert f"interrupted {signal.Signals(signum).name}" in log.read_text()
        assert "rig put in safe state" in (proc.stderr.read() if proc.stderr else "")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_on_signal_sets_the_event_and_restores_the_handler(signum: int) -> None:
    before = signal.getsignal(signum)
    with stop_on_signal() as stop:
        assert not stop.is_set()
        signal.raise_signal(signum)  # synchronous: the handler has run when this returns
        assert stop.is_set()
    assert signal.getsignal(signum) is before
