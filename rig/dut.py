"""Devices under test: what scenarios see of a DUT, and the outside programs the rig runs.

docs/architecture.md "Rig and DUT": a :class:`Dut` has ``name``, ``kind`` ("emulated",
"program", "black-box", "agent"), ``address``, ``secondary``, ``capabilities``, ``profile``
and ``control`` -- None for a DUT only the wire can reach, else an object with ``arm(kind,
count=1, **params)``, ``disarm()``, ``set_defects(names)``, ``identity()``, ``trace()``
(:class:`DutControl`): local for an emulated slave on the simulated bus, HTTP for the agent.

:class:`DutProgram` runs an outside slave program from its command template, with ``{tty}``
replaced by the pty it joins the simulated bus through; it is stopped at the end (terminate,
then kill after a bound) and its output is kept for the report. A program that died is named
as dead (:class:`ProgramDeath`: its exit status and the tail of its output) and can be
started again (``restart``) with the same command, working directory and environment.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from protocol.errors import HardwareError
from protocol.identity import SecondaryAddress

#: How long a stopping DUT program gets after SIGTERM before SIGKILL (and after SIGKILL).
PROGRAM_STOP_BOUND_S = 2.0
#: How much of a dead DUT program's last output a failure message quotes.
DEATH_TAIL_LINES = 15
DEATH_TAIL_CHARS = 2000


@dataclass(frozen=True, slots=True)
class ProgramDeath:
    """A DUT program found exited: its name, exit status (negative: killed by that signal)
    and the end of what it wrote in the run that ended."""

    name: str
    status: int
    tail: str

    @property
    def summary(self) -> str:
        """'DUT program slave exited with status 1' (with the signal's name if killed)."""
        text = f"DUT program {self.name} exited with status {self.status}"
        if self.status < 0:
            try:
                text += f" (killed by {signal.Signals(-self.status).name})"
            except ValueError:
                pass
        return text

    def describe(self) -> str:
        """The summary and the tail of its output, indented."""
        if not self.tail.strip():
            return f"{self.summary}; it wrote nothing"
        lines = "\n".join(f"    {line}" for line in self.tail.rstrip().splitlines())
        return f"{self.summary}; the end of its output:\n{lines}"


@runtime_checkable
class DutControl(Protocol):
    """Control of a DUT from inside (emulated slave or the slave-Pi agent)."""

    def arm(self, kind: str, count: int = 1, **params: Any) -> None: ...

    def disarm(self) -> None: ...

    def set_defects(self, names: Iterable[str]) -> None: ...

    def identity(self) -> dict[str, Any]: ...

    def trace(self) -> list[dict[str, Any]]: ...


@dataclass(eq=False)
class Dut:
    """A device under test as scenarios see it."""

    name: str
    kind: str
    address: int
    secondary: SecondaryAddress | None
    capabilities: frozenset[str]
    profile: Any = field(default=None, repr=False)
    control: DutControl | None = field(default=None, repr=False)
    bauds: tuple[int, ...] | None = None  # supported rates when known (declared, or the profile's)
    fabrication: int | None = None  # fabrication number, when known (enhanced selection)
    sends_fabrication: bool = False  # its RSP_UD carries the fabrication number (VIF 78)
    program: DutProgram | None = field(default=None, repr=False)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)  # the rig's own handles (endpoint ...)

    def describe(self) -> str:
        parts = [f"{self.name} ({self.kind})", f"primary {self.address}"]
        if self.secondary is not None:
            parts.append(f"secondary {self.secondary} ({self.secondary.manufacturer_letters})")
        return ", ".join(parts)


def expand_command(template: Sequence[str], tty: str) -> list[str]:
    """The argv of an outside DUT program: ``{tty}`` replaced by the pty path."""
    return [arg.replace("{tty}", tty) for arg in template]


class DutProgram:
    """An outside DUT program: started in its own process group, output kept in a file.

    ``stop()`` sends SIGTERM to the group, waits at most ``bound`` seconds, then SIGKILL:
    never a hang, whatever the program does.
    """

    def __init__(self, name: str, argv: Sequence[str], *, cwd: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.cwd = cwd
        self._log = tempfile.TemporaryFile(prefix=f"mbus-rig-dut-{name}-")
        child_env = {**os.environ, **(env or {})}
        # programs installed next to this Python (mbus-rig in a virtualenv) are found
        child_env["PATH"] = os.pathsep.join(
            [os.path.dirname(sys.executable), child_env.get("PATH", os.defpath)])
        self.env = child_env
        self.returncode: int | None = None
        self._final: str | None = None
        self._run_start = 0  # where this run's output starts in the log
        self.starts = 0
        try:
            self.process = self._spawn()
        except HardwareError:
            self._log.close()
            raise

    def _spawn(self) -> subprocess.Popen[bytes]:
        """Start the program (its own process group, output to the log)."""
        try:
            process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                cwd=self.cwd, env=self.env, start_new_session=True)
        except OSError as exc:
            raise HardwareError(f"DUT {self.name}: cannot start {self.argv[0]!r} "
                                f"({exc.strerror or exc})") from None
        self.starts += 1
        return process

    def death(self) -> ProgramDeath | None:
        """The program's exit since it was last started, else None (it runs)."""
        status = self.process.poll()
        if status is None:
            return None
        tail = self.run_output()[-DEATH_TAIL_CHARS:]
        return ProgramDeath(self.name, status, "\n".join(tail.splitlines()[-DEATH_TAIL_LINES:]))

    def restart(self) -> None:
        """Start the program again (stopping what is left of it first); the log notes it."""
        status = self.stop()
        self._log.seek(0, os.SEEK_END)
        self._log.write(f"--- mbus-rig: {self.name} exited with status {status}; "
                        f"restarted ---\n".encode())
        self._log.flush()
        self._run_start = self._log.tell()
        self.returncode = None
        self.process = self._spawn()

    def run_output(self) -> str:
        """What the program wrote since it was last started."""
        return self._final if self._final is not None else self._read(self._run_start)

    def _read(self, start: int) -> str:
        self._log.flush()
        return os.pread(self._log.fileno(), 1 << 24, start).decode(errors="replace")

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, bound: float = PROGRAM_STOP_BOUND_S) -> int | None:
        """Terminate (then kill); return the exit status (None if it could not be reaped)."""
        if self.process.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.process.pid, sig)
                try:
                    self.process.wait(timeout=bound)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self.returncode = self.process.poll()
        return self.returncode

    def output(self) -> str:
        """Everything the program wrote to stdout and stderr so far."""
        if self._final is not None:
            return self._final
        return self._read(0)

    def close(self) -> str:
        """Stop it and return its whole output."""
        if self._final is None:
            self.stop()
            self._final = self.output()
            self._log.close()
        return self._final


class EmulatedControl:
    """:class:`DutControl` of an emulated slave on the simulated bus (a SimMeter's core).

    It reaches the core through the SimMeter each time, so it follows a core the rig
    replaces (a new baud rate). ``trace()`` is the part of the rig trace this slave sent.
    """

    def __init__(self, meter: Any, trace: Any) -> None:
        self._meter = meter
        self._trace = trace

    def arm(self, kind: str, count: int = 1, **params: Any) -> None:
        self._meter.core.arm(kind, count, **params)

    def disarm(self) -> None:
        self._meter.core.disarm()

    def set_defects(self, names: Iterable[str]) -> None:
        self._meter.core.set_defects(names)

    def identity(self) -> dict[str, Any]:
        core = self._meter.core
        ident = core.identity
        return {"secondary": str(ident), "manufacturer": ident.manufacturer_letters,
                "address": core.address, "baud": core.baud,
                "defects": sorted(core.defects)}

    def trace(self) -> list[dict[str, Any]]:
        name = self._meter.name
        return [e for e in self._trace.to_json()
                if name in str(e.get("source", "")).split("+")]
