"""The slave agent's runtime: a MeterCore bound to the TSS721A UART in a loop thread.

One thread owns the wire and the core (as :class:`hardware.sim.meter.SimMeter` does on the
simulated bus): it reads characters with a short deadline, feeds them to the core, polls the
core at its deadlines, sends each ``Transmit`` at its time and applies ``SetBaud``. Requests
from the HTTP threads (arm, defects, baud, reset) are queued to that thread and answered when
it has run them, so the core is never touched by two threads.

Power (docs/mbus-facts.md "Hardware: the two-Pi rig"): the TSS721A's PF output says the bus supply
failed. The Pi runs on, so the agent plays the meter's power loss itself: while PF is
asserted the slave neither hears nor answers, and when it is released the core starts over
(:meth:`MeterCore.power_lost`) and the UART returns to the profile's rate.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from hardware.clock import Clock
from hardware.lines import Line
from hardware.port import BusPort
from hardware.profile import require_baud
from hardware.trace import Trace, TraceEntry
from protocol.chars import RxChar
from protocol.errors import HardwareError, MBusRigError, RigTimeoutError
from protocol.identity import MEDIUM_NAMES
from protocol.link.slave import SetBaud, SlaveAction
from protocol.meter import FAULTS, MeterCore, MeterProfile, defect_names
from protocol.timing import char_time

log = logging.getLogger("mbus-rig.agent")

T = TypeVar("T")

READ_SLICE = 0.05
"""Longest read before the loop looks at queued requests (seconds)."""
TRACE_CAPACITY = 50_000
COMMAND_TIMEOUT = 5.0


def jsonable(value: Any) -> Any:
    """Plain JSON data from dataclasses, tuples, bytes (hex), mappings and sets."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes | bytearray):
        return value.hex(" ").upper()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(jsonable(v) for v in value)
    return value


class SlaveRuntime:
    """The AgentBackend of ``mbus-rig agent``: one emulated slave on one port."""

    fault_kinds = frozenset(FAULTS)
    defect_names = frozenset(defect_names())

    def __init__(
        self,
        port: BusPort,
        clock: Clock,
        profile: MeterProfile,
        *,
        port_name: str = "",
        echo: bool = True,
        power_fail: Line | None = None,
        trace_capacity: int = TRACE_CAPACITY,
    ) -> None:
        self.port = port
        self.clock = clock
        self.profile = profile
        self.loaded_profile = profile
        self.port_name = port_name
        self.echo = echo
        self.power_fail_line = power_fail
        self.core = MeterCore(profile, echo=echo)
        self.started = clock.now()
        self.received = 0
        self.sent = 0
        self.power_losses = 0
        self.last_error: str | None = None
        self._powered = True
        self._trace: deque[TraceEntry] = deque(maxlen=trace_capacity)
        self._trace_lock = threading.Lock()
        self._commands: queue.Queue[tuple[Callable[[], Any], queue.Queue[Any]]] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.port.baud != self.core.baud:
            self.port.set_baud(self.core.baud)
        if power_fail is not None:
            power_fail.backend.on_change(power_fail.pin, self._pf_changed)

    # --- the loop thread -------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="agent-slave", daemon=True)
        self._thread.start()
        if self.power_fail_line is not None and self.power_fail_line.is_asserted:
            self._submit(self._power_down)

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except MBusRigError as exc:  # a port failure: report, keep serving HTTP
                self.last_error = str(exc)
                log.error("slave loop: %s", exc)
                self._stop.wait(1.0)
            except Exception as exc:  # a bug: report it over /status, keep the agent up
                self.last_error = f"internal error: {exc!r}"
                log.exception("slave loop")
                self._stop.wait(1.0)

    def _step(self) -> None:
        self._run_commands()
        now = self.clock.now()
        deadline = now + READ_SLICE
        core_deadline = self.core.next_deadline
        if core_deadline is not None:
            deadline = min(deadline, max(core_deadline, now))
        ch = self.port.read_char(deadline)
        if ch is None:
            self._perform(self.core.poll(self.clock.now()))
            return
        self.received += 1
        if not self._powered:
            self._record(ch, "M>S", "unpowered")
            return
        self._record(ch, "M>S", "rx")
        self._perform(self.core.receive(ch))

    def _perform(self, actions: list[SlaveAction]) -> None:
        for action in actions:
            if isinstance(action, SetBaud):
                self.port.set_baud(action.baud)  # a preceding write has already drained
                continue
            wait = action.not_before - self.clock.now()
            if wait > 0:
                self.clock.sleep(wait)
            start = self.clock.now()
            self.port.write(action.data)
            self.sent += len(action.data)
            ct = char_time(self.port.baud)
            for i, value in enumerate(action.data):
                self._append(TraceEntry(start + (i + 1) * ct, "S>M", self.port.baud, value,
                                        source="tx"))

    def _record(self, ch: RxChar, direction: str, source: str) -> None:
        self._append(TraceEntry(ch.time, direction, self.port.baud, ch.value, ch.parity_error,
                                ch.framing_error, source))

    def _append(self, entry: TraceEntry) -> None:
        with self._trace_lock:
            self._trace.append(entry)

    # --- requests from other threads -------------------------------------------------------

    def _run_commands(self) -> None:
        while True:
            try:
                fn, reply = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                reply.put((True, fn()))
            except Exception as exc:
                reply.put((False, exc))

    def _submit(self, fn: Callable[[], T], timeout: float = COMMAND_TIMEOUT) -> T:
        """Run ``fn`` in the loop thread and return its result (or raise its error)."""
        if not self.alive:
            return fn()  # not started (tests, start-up): nobody else touches the core
        reply: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._commands.put((fn, reply))
        try:
            ok, value = reply.get(timeout=timeout)
        except queue.Empty:
            raise RigTimeoutError(f"the slave loop did not take the request within {timeout} s") from None
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def _pf_changed(self, _pin: int, _level: bool) -> None:
        line = self.power_fail_line
        assert line is not None
        failed = line.is_asserted
        try:
            self._submit(self._power_down if failed else self._power_up)
        except MBusRigError as exc:
            log.error("power-fail line: %s", exc)

    def _power_down(self) -> None:
        self._powered = False
        self.power_losses += 1

    def _power_up(self) -> None:
        if self._powered:
            return
        self._powered = True
        self.core.power_lost()
        self.port.reset_input()
        self.port.set_baud(self.core.baud)

    # --- AgentBackend ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "port": self.port_name,
            "baud": self.port.baud,
            "address": self.core.address,
            "selected": self.core.selected,
            "powered": self._powered,
            "power_fail": self.power_fail(),
            "armed": jsonable(self.core.armed),
            "defects": sorted(self.core.defects),
            "received": self.received,
            "sent": self.sent,
            "answers": self.core.answers,
            "collisions": self.core.collisions,
            "power_losses": self.power_losses,
            "uptime": self.clock.now() - self.started,
            "loop_running": self.alive,
            "last_error": self.last_error,
            "echo": self.echo,
        }

    def identity(self) -> dict[str, Any]:
        sec = self.core.identity
        p = self.profile
        return {
            "name": p.name,
            "address": self.core.address,
            "secondary": str(sec),
            "id": p.id,
            "manufacturer": p.manufacturer,
            "version": p.version,
            "medium": p.medium,
            "medium_name": MEDIUM_NAMES.get(p.medium, "unknown"),
            "fabrication_number": p.fabrication_number,
        }

    def profile_info(self) -> dict[str, Any]:
        data: dict[str, Any] = jsonable(self.profile)
        data["fault_kinds"] = dict(FAULTS)
        data["defect_names"] = sorted(self.defect_names)
        return data

    def arm(self, kind: str, count: int, params: dict[str, Any]) -> dict[str, Any]:
        fault = self._submit(lambda: self.core.arm(kind, count, **params))
        return {"armed": jsonable(fault), "all": jsonable(self.core.armed)}

    def disarm(self) -> dict[str, Any]:
        self._submit(self.core.disarm)
        return {"armed": []}

    def set_defects(self, names: list[str]) -> dict[str, Any]:
        self._submit(lambda: self.core.set_defects(names))
        return {"defects": sorted(self.core.defects)}

    def set_baud(self, baud: int) -> dict[str, Any]:
        """Put the slave at ``baud`` (one of its profile's rates) as if it had started there:
        link state starts over; defects and armed faults stay."""

        def change() -> None:
            require_baud(self.profile, baud)
            self.profile = dataclasses.replace(self.profile, baud=baud)
            self._new_core(keep_controls=True)

        self._submit(change)
        return {"baud": self.port.baud}

    def trace(self, since: float | None, limit: int | None, frames: bool) -> dict[str, Any]:
        with self._trace_lock:
            entries = [e for e in self._trace if since is None or e.time >= since]
        if limit is not None:
            entries = entries[-limit:]
        trace = Trace(entries)
        body: dict[str, Any] = {"now": self.clock.now(), "count": len(entries)}
        if frames:
            body["frames"] = trace.frames_json()
        else:
            body["entries"] = trace.to_json()
        return body

    def clear_trace(self) -> dict[str, Any]:
        with self._trace_lock:
            self._trace.clear()
        return {"count": 0}

    def power_fail(self) -> dict[str, Any]:
        line = self.power_fail_line
        if line is None:
            return {"wired": False, "asserted": None, "pin": None}
        try:
            asserted = line.is_asserted
        except HardwareError as exc:
            raise HardwareError(f"power-fail line: {exc}") from None
        return {"wired": True, "asserted": asserted, "pin": line.pin,
                "active_high": line.active_high}

    def reset(self) -> dict[str, Any]:
        """Back to the start: the profile as loaded, nothing armed, no defects."""

        def fresh() -> None:
            self.profile = self.loaded_profile
            self._new_core(keep_controls=False)

        self._submit(fresh)
        return {"baud": self.port.baud, "address": self.core.address, "armed": [],
                "defects": []}

    def _new_core(self, *, keep_controls: bool) -> None:
        old = self.core
        self.core = MeterCore(self.profile, echo=self.echo,
                              defects=old.defects if keep_controls else ())
        if keep_controls:
            for fault in old.armed:
                self.core.arm(fault.kind, fault.remaining, **fault.params)
        self.port.reset_input()
        self.port.set_baud(self.core.baud)
