"""The place's guardian: cleans up after a holder that could not (SIGKILL, OOM, a crash).

A holder (``mbus-rig run`` with a ``[labgrid]`` rig file) cannot release its place when it is
killed outright: labgrid keeps the place acquired and the fault lines stay where the suite
left them. So before it reserves, the holder starts this small process (``python -m
rig.farm.guardian``, in its own session: a signal to the holder's process group does not
reach it) joined to it by a pipe, and tells it, one line at a time, what it holds::

    reservation TOKEN | place NAME | lines URL | run PID | released

The kernel closes the pipe when the holder dies, however it dies. End of input after
``released`` (the holder cleaned up itself): the guardian exits without acting. End of input
without it: the guardian stops the holder's pytest run (SIGTERM: its own safe state; SIGKILL
after :func:`rig.safety.run_stop_bound`), puts every line server in safe state, releases the
place (only while the dead holder still holds it) and cancels the reservation; each step is
bounded and logged, and a failing step does not stop the next.

The first line is the watch (JSON: coordinator, connect_timeout, holder, token_file); the
guardian answers ``ready`` on its standard output once it listens.
"""

from __future__ import annotations

import functools
import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from hardware.clock import WallClock
from protocol.errors import HardwareError, MBusRigError

from ..safety import run_stop_bound

MODULE = "rig.farm.guardian"
#: How long the guardian may take to start and answer ``ready``.
READY_S = 20.0
#: How long the holder waits for the guardian to exit after ``released``.
STAND_DOWN_S = 5.0
PREFIX = "mbus-rig guardian: "


@dataclass(frozen=True, slots=True)
class Watch:
    """What the guardian needs to clean up after the holder: where the coordinator is, under
    which client name the holder holds the place, and the line servers' token file."""

    coordinator: str
    connect_timeout: float
    holder: str
    token_file: str | None = None
    log: str | None = None  # a file the guardian also writes what it does to


@dataclass(slots=True)
class Holding:
    """What the holder said it holds so far (the guardian's side of the pipe)."""

    reservation: str | None = None
    place: str | None = None
    lines: list[str] = field(default_factory=list)
    run: int | None = None
    released: bool = False

    @property
    def nothing(self) -> bool:
        """Nothing held yet (the holder ended before it reserved)."""
        return self.reservation is None and self.place is None and not self.lines \
            and self.run is None

    def take(self, message: str) -> None:
        message = message.strip()
        kind, _, value = message.partition(" ")
        if kind == "reservation":
            self.reservation = value
        elif kind == "place":
            self.place = value
        elif kind == "lines":
            self.lines.append(value)
        elif kind == "run" and value.isdigit():
            self.run = int(value)
        elif kind == "released":
            self.released = True
        else:
            raise HardwareError(f"guardian: unknown message from the holder: {message[:80]!r}")


class Guardian:
    """The holder's side: starts the guardian, tells it what is held, stands it down."""

    def __init__(self, watch: Watch) -> None:
        self.log = watch.log or "its standard error"
        self._proc = subprocess.Popen([sys.executable, "-m", MODULE], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, start_new_session=True)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._pipe: IO[bytes] = self._proc.stdin
        try:
            self._send(json.dumps(asdict(watch)))
            ready, _, _ = select.select([self._proc.stdout], [], [], READY_S)
            answer = self._proc.stdout.readline().decode(errors="replace").strip() if ready else ""
            if answer != "ready":
                code = self._proc.poll()
                how = f"exited {code}" if code is not None else f"no answer within {READY_S:g} s"
                raise HardwareError(f"the place's guardian did not start ({how})")
        except BaseException:
            self._end()
            raise
        self._proc.stdout.close()

    def tell(self, kind: str, value: object = "") -> None:
        """One line to the guardian (``reservation``, ``place``, ``lines``, ``run``)."""
        self._send(f"{kind} {value}".strip())

    def _send(self, line: str) -> None:
        try:
            self._pipe.write(line.encode() + b"\n")
            self._pipe.flush()
        except (BrokenPipeError, ValueError):
            raise HardwareError(f"the place's guardian is gone (see {self.log})") from None

    def stand_down(self) -> None:
        """The holder cleaned up itself: the guardian exits without acting."""
        try:
            self._send("released")
        except HardwareError:
            pass
        self._end()

    def _end(self) -> None:
        try:
            self._pipe.close()
        except OSError:
            pass
        try:
            self._proc.wait(STAND_DOWN_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


# --- the guardian process ------------------------------------------------------------------


_log: list[Path] = []


def _say(text: str) -> None:
    """On the standard error inherited from the holder (the CI step's log) and in the log."""
    try:
        print(PREFIX + text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
    for log in _log:
        try:
            with open(log, "a", encoding="utf-8") as out:
                out.write(PREFIX + text + "\n")
        except OSError:
            pass


def _step(what: str, action: Callable[[], object]) -> None:
    """One cleanup step: its failure is said, and the next step runs."""
    try:
        action()
    except MBusRigError as exc:
        _say(f"{what}: {exc}")
    except Exception as exc:  # noqa: BLE001 - the guardian must get to the next step
        _say(f"{what}: {type(exc).__name__}: {exc}")


def stop_run(pid: int, bound: float | None = None) -> str:
    """SIGTERM to the holder's orphaned pytest run (its own safe state), SIGKILL if it is still
    there after ``bound``; how it ended."""
    bound = run_stop_bound() if bound is None else bound
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return "already gone"
    try:
        for sig, wait in ((signal.SIGTERM, bound), (signal.SIGKILL, bound)):
            try:
                signal.pidfd_send_signal(handle, sig)
            except ProcessLookupError:
                return "ended"
            ended, _, _ = select.select([handle], [], [], wait)
            if ended:
                return "ended" if sig == signal.SIGTERM else "killed"
        raise HardwareError(f"pytest run {pid} still there {2 * bound:g} s after SIGKILL")
    finally:
        os.close(handle)


def clean_up(watch: Watch, holding: Holding) -> None:
    """What the dead holder did not do: stop its run, lines safe, place released."""
    _say(f"holder {watch.holder} is gone without releasing"
         f"{' place ' + holding.place if holding.place else ''}; cleaning up")
    if holding.run is not None:
        run = holding.run
        _step(f"pytest run {run}", lambda: _say(f"pytest run {run}: {stop_run(run)}"))
    if holding.lines:
        _step("line servers", lambda: _lines_safe(holding.lines, watch.token_file))
    if holding.place is None and holding.reservation is None:
        return
    _step(f"labgrid coordinator {watch.coordinator}", lambda: _give_back(watch, holding))


def _lines_safe(urls: Iterable[str], token_file: str | None) -> None:
    from ..agent.client import read_token_file
    from .lines import RemoteGpio

    if token_file is None:
        raise HardwareError("no token file for the line server")
    token = read_token_file(token_file)
    for url in urls:
        _step(f"line server {url}", functools.partial(_line_server_safe, RemoteGpio(url, token)))


def _line_server_safe(gpio: Any) -> None:
    _say(f"line server {gpio.url}: {gpio.safe_state()}")


def _give_back(watch: Watch, holding: Holding) -> None:
    from .place import Coordinator

    with Coordinator(watch.coordinator, connect_timeout=watch.connect_timeout,
                     source="guardian") as coordinator:
        if holding.place is not None:
            _step(f"place {holding.place}", functools.partial(_release, coordinator,
                                                              holding.place, watch.holder))
        if holding.reservation is not None:
            token = holding.reservation
            _step(f"reservation {token}", lambda: coordinator.cancel(token))


def _release(coordinator: Any, place: str, holder: str) -> None:
    """Release ``place`` while the dead ``holder`` still holds it; say who holds it after."""
    coordinator.release(place, holder=holder)
    now = coordinator.place(place).acquired
    _say(f"released labgrid place {place}" if now is None
         else f"labgrid place {place}: held by {now}, left alone")


def main(stdin: IO[str], stdout: IO[str]) -> int:
    """Read the watch, answer ``ready``, follow the holder until end of input; then clean up
    unless the holder said ``released``."""
    try:
        raw: Any = json.loads(stdin.readline())
        watch = Watch(**raw)
    except (ValueError, TypeError) as exc:
        _say(f"bad watch line from the holder: {exc}")
        return 2
    if watch.log:
        _log.append(Path(watch.log))
    print("ready", file=stdout, flush=True)
    holding = Holding()
    for message in stdin:
        _step("message", functools.partial(holding.take, message))
    if holding.released or holding.nothing:
        return 0
    clock = WallClock()
    started = clock.now()
    clean_up(watch, holding)
    _say(f"done in {clock.now() - started:.1f} s")
    return 0


if __name__ == "__main__":
    for _sig in (signal.SIGINT, signal.SIGHUP):  # the terminal's, meant for the holder
        signal.signal(_sig, signal.SIG_IGN)
    sys.exit(main(sys.stdin, sys.stdout))
