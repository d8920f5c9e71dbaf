"""Running a master DUT, one operation at a time (rig/master_config.py names them).

Every master is driven the same way: an operation (``read``, ``scan``, ...) with its values
(``address``, ``baud``, ...) becomes a command line, the master runs it, and the rig keeps
its exit status, what it printed and when on the rig clock it ran; the bus trace of that
time is the other half of the evidence.

- :class:`EmulatedMaster`: the project's own ``mbus-rig`` tools, run in this process by
  :func:`rig.cli.main` on the rig's simulated bus and virtual clock (device ``rig://NAME``,
  registered in ``rig.tools.bus.IN_PROCESS``), with the test master's defects switched on.
- :class:`ProgramMaster`: an outside program (no shell), started per operation with ``{tty}``
  (a fresh pseudo-terminal on the bus's master endpoint) or ``{tcp}`` (a raw TCP gateway on
  127.0.0.1) filled in, stopped after ``timeout`` seconds (SIGTERM to its process group, then
  SIGKILL): a master that hangs is reported as hung, never waited for.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import shutil
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from hardware.clock import Clock, WallClock
from protocol.errors import HardwareError

from .master_config import MasterSettings, expand
from .master_output import MasterReport, parse_output

#: A stopping master program gets this long after SIGTERM before SIGKILL (wall time).
STOP_BOUND_S = 2.0
#: How much of a master's output a failure message quotes.
QUOTE_CHARS = 300

TOOL_COMMANDS: dict[str, str] = {
    "read": "mbus-rig read -d {tty} -b {baud} -r {retries} -a {address} --all-telegrams --json",
    "read_secondary": "mbus-rig read -d {tty} -b {baud} -r {retries} --secondary {secondary} "
                      "--all-telegrams --json",
    "scan": "mbus-rig scan -d {tty} -b {baud} -r {retries} --range {first}-{last} --json",
    "scan_secondary": "mbus-rig scan --secondary -d {tty} -b {baud} -r {retries} --json",
    "set_address": "mbus-rig set-address -d {tty} -b {baud} -r {retries} -a {address} "
                   "--new {new_address} --json",
    "switch_baud": "mbus-rig switch-baud -d {tty} -b {baud} -r {retries} -a {address} "
                   "--to {new_baud} --json",
    "reset": "mbus-rig reset -d {tty} -b {baud} -r {retries} -a {address} --json",
}
"""The project's own tools as a master: what the emulated master runs in process, and what
rig/examples/master-tools.toml gives an outside run of them (a test keeps both the same)."""


@dataclass(frozen=True, slots=True)
class OperationResult:
    """One operation of the master: the command, its exit status and output, and when."""

    operation: str
    command: tuple[str, ...]
    status: int | None  # None: did not finish within the timeout (stopped by the rig)
    stdout: str
    stderr: str
    start: float  # rig clock
    end: float
    wall_s: float

    @property
    def hung(self) -> bool:
        return self.status is None

    @property
    def crashed(self) -> bool:
        """Killed by a signal it did not ask for, or died with a Python traceback."""
        killed = self.status is not None and self.status < 0
        return killed or "Traceback (most recent call last)" in self.stderr + self.stdout

    @property
    def ok(self) -> bool:
        return self.status == 0

    def describe(self) -> str:
        """One line: the command, how it ended and the last thing it said."""
        if self.hung:
            ended = f"did not finish within {self.wall_s:.0f} s (stopped)"
        elif self.status is not None and self.status < 0:
            ended = f"was killed by signal {-self.status}"
        else:
            ended = f"exited {self.status}"
        said = (self.stderr.strip() or self.stdout.strip()).splitlines()
        last = f": {said[-1][:QUOTE_CHARS]}" if said else " (printed nothing)"
        return f"`{shlex.join(self.command)}` {ended}{last}"


class MasterUnderTest(Protocol):
    """What scenarios drive: one operation per call."""

    name: str
    kind: str
    settings: MasterSettings

    def run(self, operation: str, values: Mapping[str, object]) -> OperationResult: ...


def report_of(master: MasterUnderTest, result: OperationResult) -> MasterReport:
    """What the master's output of ``result`` says (nothing for ``output = "none"``)."""
    return parse_output(master.settings.output, result.operation, result.stdout)


class EmulatedMaster:
    """The project's tools, in process, on the rig's simulated bus (the reference master).

    ``session_factory(args)`` builds the tools' BusSession on the rig's port with the test
    master (rig/defective_master.py); it is registered under ``device`` while the rig is
    open.
    """

    kind = "emulated"

    def __init__(self, name: str, settings: MasterSettings, clock: Clock, device: str,
                 session_factory: Callable[[Any], Any]) -> None:
        from rig.tools.bus import IN_PROCESS

        self.name = name
        self.settings = settings
        self.clock = clock
        self.device = device
        IN_PROCESS[device] = session_factory

    def run(self, operation: str, values: Mapping[str, object]) -> OperationResult:
        from rig.cli import main

        argv = expand(tuple(shlex.split(TOOL_COMMANDS[operation])),
                      {**values, "tty": self.device})
        out, err = io.StringIO(), io.StringIO()
        wall = WallClock()
        wall_start, start = wall.now(), self.clock.now()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(argv[1:])
            except SystemExit as exc:  # argparse refusing the arguments
                status = exc.code if isinstance(exc.code, int) else 2
            except Exception:  # noqa: BLE001 - a crash of the tools is the verdict's business
                traceback.print_exc()  # as Python prints it for a program: a crash
                status = 1
        return OperationResult(operation, tuple(argv), status, out.getvalue(), err.getvalue(),
                               start, self.clock.now(), wall.now() - wall_start)

    def close(self) -> None:
        from rig.tools.bus import IN_PROCESS

        IN_PROCESS.pop(self.device, None)


class ProgramMaster:
    """An outside master program, run once per operation (``[dut.commands]``).

    ``open_bridge()`` returns the values that say where the bus is (``tty`` or ``tcp``,
    ``tcp_host``, ``tcp_port``) and a function that closes the bridge again.
    """

    kind = "program"

    def __init__(self, name: str, settings: MasterSettings, clock: Clock, *,
                 open_bridge: Callable[[], tuple[dict[str, object], Callable[[], None]]],
                 cwd: str | None = None) -> None:
        self.name = name
        self.settings = settings
        self.clock = clock
        self._open_bridge = open_bridge
        self.cwd = cwd

    def run(self, operation: str, values: Mapping[str, object]) -> OperationResult:
        template = self.settings.commands.get(operation)
        if template is None:
            raise HardwareError(f"master {self.name}: no command for {operation!r}")
        where, close = self._open_bridge()
        try:
            argv = expand(template, {**values, **where})
            start = self.clock.now()
            status, out, err, wall_s = run_bounded(argv, self.settings.timeout, cwd=self.cwd,
                                                   name=self.name)
            return OperationResult(operation, tuple(argv), status, out, err, start,
                                   self.clock.now(), wall_s)
        finally:
            close()

    def close(self) -> None:
        pass


def program_env() -> dict[str, str]:
    """The environment of an outside program: ours, with programs installed next to this
    Python (``mbus-rig`` in a virtualenv) found first, and unbuffered Python output."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable),
                                   env.get("PATH", os.defpath)])
    env["PYTHONUNBUFFERED"] = "1"
    return env


def find_program(name: str, cwd: str | None) -> str | None:
    """Where ``name`` (a command's first word) is: a path (relative to ``cwd``), or found on
    the PATH an outside program gets; None when it is nowhere."""
    if os.sep in name:
        path = os.path.join(cwd or os.getcwd(), name)
        return path if os.access(path, os.X_OK) else None
    return shutil.which(name, path=program_env()["PATH"])


def run_bounded(argv: list[str], timeout: float, *, cwd: str | None = None,
                name: str = "master") -> tuple[int | None, str, str, float]:
    """Run ``argv`` (no shell) in its own process group; (status, stdout, stderr, wall s).
    Past ``timeout`` the group gets SIGTERM, then SIGKILL: status None."""
    wall = WallClock()
    start = wall.now()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=cwd, env=program_env(),
                                start_new_session=True)
    except OSError as exc:
        raise HardwareError(f"master {name}: cannot start {argv[0]!r} "
                            f"({exc.strerror or exc})") from None
    status: int | None
    try:
        out, err = proc.communicate(timeout=timeout)
        status = proc.returncode
    except subprocess.TimeoutExpired:
        status = None
        out, err = _stop(proc)
    return (status, out.decode(errors="replace"), err.decode(errors="replace"),
            wall.now() - start)


def _stop(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """SIGTERM to the group, then SIGKILL after :data:`STOP_BOUND_S`; what it printed."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            return proc.communicate(timeout=STOP_BOUND_S)
        except subprocess.TimeoutExpired:
            continue
    return b"", b""
