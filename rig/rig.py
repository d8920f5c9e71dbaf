"""The Rig: the composition root that turns a rig config into clock, port, master, DUTs,
fault lines and trace (docs/architecture.md "Rig and DUT").

One code path for simulated and real buses: the master always talks through
:class:`hardware.serial_port.SerialBusPort`, over ``mbussim://NAME`` on the simulated bus
and over a UART (or any pyserial URL) on hardware; faults always go through GPIO lines
(:class:`hardware.lines.FaultLines`), which the simulated bus follows on a SimGpio. Nothing
above the Rig knows which it is, except by asking ``rig.mode``.

Safe state on every exit path (rig/safety.py): ``close()`` (also on exceptions, through the
context manager), atexit, SIGTERM/SIGINT. A rig that is not all-software takes a lock file so
two sessions never share it.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from hardware.clock import Clock, WallClock
from hardware.lines import FaultLines
from hardware.trace import Trace
from protocol.errors import ConfigError, HardwareError, MBusRigError
from protocol.identity import SecondaryAddress

from .config import SIM_URL_SCHEME, DutConfig, RigConfig
from .dut import Dut, DutProgram, EmulatedControl, ProgramDeath, expand_command
from .safety import RigLock, SafeStateGuard, lock_path_for

log = logging.getLogger(__name__)

_bus_numbers = itertools.count(1)

#: A started DUT program gets this long (wall time) to open its pty before the first request.
PROGRAM_SETTLE_S = 0.5
#: An agent DUT started by the rig must answer its API within this (wall time).
AGENT_READY_S = 15.0


class NotSupportedError(MBusRigError):
    """The rig or DUT cannot do what a scenario asks (the plugin turns it into a skip)."""


#: faults.inject kinds -> fault-line role (the role names themselves are accepted too).
FAULT_KINDS: dict[str, str] = {
    "power_cut": "bus_power_cut",
    "disconnect": "slave_disconnect",
    "short": "bus_short",
    "collision": "collision",
    "noise": "noise",
}


@dataclass
class InjectedFault:
    """One physical fault: its line is asserted from ``start`` until ``end`` (None: until
    cleared)."""

    kind: str
    role: str
    start: float
    end: float | None


class Faults:
    """``faults.inject(kind, **params)``: physical faults through the rig's GPIO lines.

    Kinds: ``power_cut``, ``disconnect``, ``short``, ``collision``, ``noise`` (or the line
    role names). Common parameters: ``at`` (clock time to switch on; default now) and
    ``duration`` (seconds, then it wears off; default: until ``clear()``). On the simulated
    bus, ``collision`` also takes ``window`` (how long the sink holds space once on) and
    ``noise`` takes ``rate`` (bit-flip probability per sampled bit); both are set on the bus
    before the line switches, as a signal generator is set before its relay closes.
    """

    def __init__(self, rig: Rig) -> None:
        self._rig = rig
        self.injected: list[InjectedFault] = []

    def role_of(self, kind: str) -> str:
        role = FAULT_KINDS.get(kind, kind)
        if role not in FAULT_KINDS.values():
            allowed = ", ".join(FAULT_KINDS)
            raise ConfigError(f"fault kind {kind!r}: expected one of {allowed}")
        if role not in self._rig.lines:
            raise NotSupportedError(f"fault {kind!r}: rig {self._rig.config.name!r} has no "
                                    f"{role} line")
        return role

    def inject(self, kind: str, *, at: float | None = None, duration: float | None = None,
               **params: Any) -> InjectedFault:
        rig = self._rig
        role = self.role_of(kind)
        self._prepare(kind, role, params)
        clock = rig.clock
        start = clock.now() if at is None else max(at, clock.now())
        if duration is not None and duration < 0:
            raise ConfigError(f"fault {kind!r}: duration {duration} is negative")
        line = rig.lines[role]
        fault = InjectedFault(kind, role, start, None if duration is None else start + duration)
        self.injected.append(fault)

        def switch_on() -> None:
            if self._current(fault):
                line.assert_()

        def wear_off() -> None:
            if self._current(fault):  # a later inject on this line, or clear(), wins
                line.release()

        if start <= clock.now():
            line.assert_()
        else:
            clock.call_at(start, switch_on)
        if fault.end is not None:
            clock.call_at(fault.end, wear_off)
        return fault

    def _current(self, fault: InjectedFault) -> bool:
        """``fault`` is still in force: not cleared, not replaced by a later one on its line,
        and the rig is not closed (a timer must never switch a fault on after safe state)."""
        later = [f for f in self.injected if f.role == fault.role]
        return not self._rig.closed and bool(later) and later[-1] is fault

    def _prepare(self, kind: str, role: str, params: dict[str, Any]) -> None:
        bus = self._rig.bus
        allowed = {"collision": {"window"}, "noise": {"rate"}}.get(role, set())
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise ConfigError(f"fault {kind!r}: unknown parameter {unknown[0]!r} (allowed: "
                              f"{', '.join(sorted(allowed | {'at', 'duration'}))})")
        if not params:
            return
        if bus is None:
            raise NotSupportedError(f"fault {kind!r}: {', '.join(params)} can only be set on "
                                    "the simulated bus (the real rig's hardware fixes it)")
        if role == "noise":
            rate = float(params["rate"])
            self._rig.in_sim(lambda: bus.set_noise(rate, rate))
        elif role == "collision":
            window = float(params["window"])
            self._rig.in_sim(lambda: bus.set_collision(None, window))

    def clear(self) -> None:
        """Every fault off now; the simulated bus's fault settings back to the rig file's."""
        self._rig.lines.safe_state()
        self.injected.clear()
        self._rig.reset_bus_settings()

    @property
    def active(self) -> list[str]:
        """Names of the fault lines that are asserted now."""
        return self._rig.lines.asserted()


class LiveTrace:
    """A scenario's part of the rig trace: the characters from ``start`` on, read when asked
    (so it grows while the scenario runs). Everything a :class:`Trace` offers works on it."""

    def __init__(self, trace: Trace, start: float) -> None:
        self._trace = trace
        self.start = start

    def snapshot(self) -> Trace:
        return self._trace.since(self.start)

    def since(self, t: float) -> Trace:
        return self._trace.since(max(t, self.start))

    def __len__(self) -> int:
        return len(self.snapshot())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.snapshot(), name)


class Rig:
    """The rig built from a :class:`RigConfig`; use as a context manager.

    Attributes (docs/architecture.md): ``clock``, ``master``, ``duts``, ``dut`` (the one under
    test), ``lines``, ``trace``, ``faults``, ``mode``, ``config``; ``bus`` is the SimBus on a
    simulated rig (None on hardware; only the rig and its tests use it).
    """

    def __init__(self, config: RigConfig, *, dut: str | None = None, instance: str | None = None,
                 gpio: Any = None, lock: bool | None = None) -> None:
        self.config = config
        self.mode = config.mode
        self._dut_name = config.dut(dut).name if config.duts else None
        self._instance = instance
        self._gpio_override = gpio
        self._want_lock = (self.mode != "sim") if lock is None else lock
        self.clock: Clock = WallClock()
        self.bus: Any = None
        self.sim: Any = None
        self.runner: Any = None
        self.trace = Trace()
        self.gpio: Any = None
        self.lines = FaultLines()
        self.port: Any = None
        self.master: Any = None
        self.duts: list[Dut] = []
        self.faults = Faults(self)
        self.guard = SafeStateGuard()
        self.lock: RigLock | None = None
        self._bridges: list[Any] = []
        self._programs: list[DutProgram] = []
        self._extra_slaves: list[Dut] = []
        self.exchange_listeners: list[Callable[[Any], None]] = []
        """Called with every ``Exchange`` the master completes (the report's steps)."""
        self.late_answer_listeners: list[Callable[[Any], None]] = []
        """Called with every ``LateAnswer`` ``master.late_answer`` hears (a report step)."""
        self.checked: list[str] = []
        """What opening the rig checked, one line each (``mbus-rig rig check`` prints it)."""
        self._levels: Any = None  # the simulated bus's LevelRecorder (None on hardware)
        self._baud = config.master.baud
        self._opened = False
        self._closed = False

    # --- building ------------------------------------------------------------------------------

    def __enter__(self) -> Rig:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> Rig:
        if self._opened:
            return self
        self._opened = True
        try:
            self.config.require_resolved()
            if self._want_lock:
                self.lock = RigLock(lock_path_for(self.config.name, self.config.source),
                                    rig_name=self.config.name).acquire()
            self.guard.add("fault lines", self._lines_safe)
            self.guard.add("DUT programs", self._stop_programs)
            self.guard.install()
            if self.config.bus.simulated:
                self._build_sim()
            else:
                self._build_hardware()
            self._build_master()
        except BaseException:
            self.close()
            raise
        return self

    def _gpio_backend(self) -> Any:
        """The GPIO backend the fault lines need (:func:`open_gpio`), as the rig check lists
        it."""
        if self._gpio_override is not None:
            return self._gpio_override
        cfg = self.config.gpio
        backend = open_gpio(self.config, clock=self.clock)
        if not cfg.lines:
            self.checked.append("GPIO: no fault lines in the rig file, no backend needed")
        else:
            self.checked.append(f"GPIO: backend {backend.name!r} opened for "
                                f"{len(cfg.lines)} fault line{'s' if len(cfg.lines) != 1 else ''} "
                                f"({', '.join(line.label for line in cfg.lines)})")
        return backend

    def _bus_name(self) -> str:
        base = self.config.master.port[len(SIM_URL_SCHEME):] or "sim"
        parts = [base, self._instance or "main", str(os.getpid()), str(next(_bus_numbers))]
        return "-".join(parts)

    def _build_sim(self) -> None:
        """The simulated bus: on virtual time, or -- when an outside program joins through a
        pty (loopback) -- run along the wall clock by a RealTimeRunner."""
        from hardware.sim import RealTimeRunner, RunnerClock, SimBus, Simulation, VirtualClock
        from hardware.sim.levels import LevelRecorder

        cfg = self.config
        self.sim = Simulation(cfg.bus.seed)
        if self.mode == "loopback":
            self.runner = RealTimeRunner(self.sim).start()
            self.guard.add("real-time runner", self.runner.stop)
            self.clock = RunnerClock(self.runner)
        else:
            self.clock = VirtualClock(self.sim)
        with self.sim.lock:  # the runner thread (if any) waits until the bus is built
            sim_params = cfg.bus.sim
            kwargs = {k: float(sim_params[k]) for k in ("hold_up", "power_up") if k in sim_params}
            self.bus = SimBus(self.sim, master_baud=cfg.master.baud, echo=cfg.master.echo,
                              name=self._bus_name(), trace=self.trace, **kwargs)
            self._levels = LevelRecorder(self.bus)
            self.reset_bus_settings()
            self.gpio = gpio = self._gpio_backend()
            self.lines = FaultLines.from_specs(self.gpio, cfg.gpio.lines)
            for dut_cfg in cfg.duts:
                self.duts.append(self._build_sim_dut(dut_cfg))
            targets = [d.extra["endpoint"] for d in self.duts if "endpoint" in d.extra]
            self.bus.wire_lines(gpio, {line.role: line.pin for line in cfg.gpio.lines},
                                active_high={line.role: line.active_high
                                             for line in cfg.gpio.lines},
                                disconnect=targets[:1])

    def in_sim(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the simulated bus (under its lock when it runs in real time)."""
        self.bus.in_sim(fn)

    def _build_hardware(self) -> None:
        cfg = self.config
        self.clock = WallClock()
        self.gpio = self._gpio_backend()
        self.lines = FaultLines.from_specs(self.gpio, cfg.gpio.lines)
        for dut_cfg in cfg.duts:
            self.duts.append(self._build_remote_dut(dut_cfg))

    def _build_master(self) -> None:
        from hardware.serial_port import SerialBusPort
        from rig.master import Master

        cfg = self.config.master
        url = f"{SIM_URL_SCHEME}{self.bus.name}" if self.bus is not None else cfg.port
        self.port = SerialBusPort(url, self.clock, baud=cfg.baud, echo=cfg.echo)
        self.guard.add("master port", self.port.close)
        self.checked.append(f"master port: {cfg.port} opened at {cfg.baud} Bd")
        trace = None if self.bus is not None else self.trace  # the sim bus taps the wire
        self.master = Master(self.port, self.clock, retries=cfg.retries, trace=trace,
                             read_latency=cfg.read_latency)
        self.master.run = self._observed(self.master.run, self.exchange_listeners)
        self.master.late_answer = self._observed(self.master.late_answer,
                                                 self.late_answer_listeners)

    @staticmethod
    def _observed(method: Callable[..., Any],
                  listeners: list[Callable[[Any], None]]) -> Callable[..., Any]:
        """``Master.run`` (every request goes through it) or ``Master.late_answer`` telling
        ``listeners`` what it brought (an Exchange; a LateAnswer, when one came)."""

        def observed(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            if result is not None:
                for listener in list(listeners):
                    listener(result)
            return result

        return observed

    def reset_bus_settings(self) -> None:
        """The simulated bus's fault settings as the rig file has them."""
        bus = self.bus
        if bus is None:
            return
        rate = float(self.config.bus.sim.get("noise_rate", 0.0))
        window = self.config.bus.sim.get("collision_window")

        def reset() -> None:
            bus.set_noise(rate, rate)
            bus.set_collision(None, None if window is None else float(window))

        self.in_sim(reset)

    # --- DUTs ----------------------------------------------------------------------------------

    def _capabilities(self, dut_cfg: DutConfig) -> frozenset[str]:
        return self.config.capabilities(dut_cfg)

    def _build_sim_dut(self, dut_cfg: DutConfig) -> Dut:
        if dut_cfg.kind == "emulated":
            dut = self._emulated(dut_cfg, dut_cfg.name, dut_cfg.address, dut_cfg.secondary,
                                 self._capabilities(dut_cfg))
            self.checked.append(f"DUT {dut.name}: emulated meter (profile {dut.profile.name}) "
                                f"at primary address {dut.address} on the simulated bus")
            return dut
        if dut_cfg.command:
            return self._program_dut(dut_cfg)
        raise ConfigError(f"{self.config.source}: dut.{dut_cfg.name}: a {dut_cfg.kind} DUT on "
                          "the simulated bus needs a command with {tty} to join it")

    def _emulated(self, dut_cfg: DutConfig | None, name: str, address: int | None,
                  secondary: SecondaryAddress | None, caps: frozenset[str],
                  profile: Any = None) -> Dut:
        from hardware.profile import read_profile
        from hardware.sim.meter import SimMeter
        from protocol.meter import MeterCore

        if profile is None:
            profile = (dut_cfg.meter_profile if dut_cfg is not None and dut_cfg.meter_profile
                       else read_profile(dut_cfg.profile if dut_cfg else None))
        profile = _with_identity(profile, address, secondary)
        if dut_cfg is None and self._baud in profile.bauds:
            profile = replace(profile, baud=self._baud)  # an extra slave joins at today's rate
        defects = dut_cfg.defects if dut_cfg is not None else frozenset()
        meter = SimMeter.on_bus(self.bus, MeterCore(profile, defects=defects), name=name)
        sends = dut_cfg.sends_fabrication if dut_cfg is not None else profile.sends_fabrication
        return Dut(name=name, kind="emulated", address=profile.address,
                   secondary=profile.secondary, capabilities=caps, profile=profile,
                   control=EmulatedControl(meter, self.trace), bauds=tuple(profile.bauds),
                   fabrication=profile.fabrication_number, sends_fabrication=sends,
                   extra={"endpoint": meter.endpoint, "meter": meter})

    def _program_dut(self, dut_cfg: DutConfig) -> Dut:
        from hardware.sim.bridges import SlavePty

        bridge = SlavePty(self.runner, self.bus, name=dut_cfg.name, baud=dut_cfg.baud)
        self._bridges.append(bridge)
        program = DutProgram(dut_cfg.name, expand_command(dut_cfg.command, bridge.path),
                             cwd=str(dut_cfg.cwd) if dut_cfg.cwd else self._rig_file_folder(),
                             env=dict(dut_cfg.env))
        self._programs.append(program)
        control = self._agent_control(dut_cfg) if dut_cfg.kind == "agent" else None
        self._wait_ready(program, control)
        self.checked.append(f"DUT {dut_cfg.name}: program started (pid {program.pid}) and "
                            f"still running after {PROGRAM_SETTLE_S:g} s" if control is None
                            else f"DUT {dut_cfg.name}: agent started (pid {program.pid}) "
                                 f"and answers at {dut_cfg.url}")
        return self._outside_dut(dut_cfg, control, program=program,
                                 extra={"endpoint": bridge.endpoint, "bridge": bridge})

    def _rig_file_folder(self) -> str | None:
        """Where a DUT program runs unless its ``cwd`` says otherwise."""
        source = self.config.source
        return os.path.dirname(os.path.abspath(source)) if os.path.exists(source) else None

    def _outside_dut(self, dut_cfg: DutConfig, control: Any, **handles: Any) -> Dut:
        """A program, black-box or agent DUT as its rig-file declarations describe it."""
        address, secondary = self._identity(dut_cfg, control)
        return Dut(name=dut_cfg.name, kind=dut_cfg.kind, address=address, secondary=secondary,
                   capabilities=self._capabilities(dut_cfg), control=control,
                   profile=dut_cfg.meter_profile, bauds=dut_cfg.bauds,
                   fabrication=dut_cfg.fabrication, sends_fabrication=dut_cfg.sends_fabrication,
                   **handles)

    def _identity(self, dut_cfg: DutConfig, control: Any) -> tuple[int, SecondaryAddress | None]:
        """Primary and secondary address: the rig file's, else what an agent reports, else
        its declared profile's."""
        address, secondary = dut_cfg.address, dut_cfg.secondary
        if control is not None and (address is None or secondary is None):
            ident = control.identity()
            if address is None and isinstance(ident.get("address"), int):
                address = ident["address"]
            if secondary is None and isinstance(ident.get("secondary"), str):
                try:
                    secondary = SecondaryAddress.parse(ident["secondary"])
                except ValueError:
                    secondary = None
        profile = dut_cfg.meter_profile
        if profile is not None:
            address = profile.address if address is None else address
            secondary = profile.secondary if secondary is None else secondary
        return (0 if address is None else address), secondary

    def _wait_ready(self, program: DutProgram, control: Any) -> None:
        """Give a started program time to open its pty; an agent until its API answers."""
        clock = WallClock()
        deadline = clock.now() + (AGENT_READY_S if control is not None else PROGRAM_SETTLE_S)
        while True:
            if not program.running:
                said = " | ".join(program.output().strip().splitlines()[-3:])[-300:]
                raise HardwareError(f"DUT {program.name}: {' '.join(program.argv)} exited "
                                    f"while starting (status {program.process.poll()})"
                                    f"{': ' + said if said else ', no output'}")
            if control is not None:
                try:
                    control.status()
                    return
                except MBusRigError as exc:
                    if clock.now() >= deadline:
                        raise HardwareError(f"DUT {program.name}: the agent did not answer "
                                            f"within {AGENT_READY_S:g} s ({exc})") from None
            elif clock.now() >= deadline:
                return
            clock.sleep(0.05)

    def _build_remote_dut(self, dut_cfg: DutConfig) -> Dut:
        control = self._agent_control(dut_cfg) if dut_cfg.kind == "agent" else None
        if control is not None:
            try:
                control.status()
            except MBusRigError as exc:
                raise HardwareError(f"DUT {dut_cfg.name}: the agent does not answer "
                                    f"({exc})") from None
            self.checked.append(f"DUT {dut_cfg.name}: agent answers at {dut_cfg.url}")
        else:
            self.checked.append(f"DUT {dut_cfg.name}: {dut_cfg.kind}, reached only through "
                                "the bus (nothing to check before the run)")
        return self._outside_dut(dut_cfg, control)

    def _agent_control(self, dut_cfg: DutConfig) -> Any:
        from rig.agent.client import AgentClient, read_token_file

        assert dut_cfg.url is not None and dut_cfg.token_file is not None
        try:
            token = read_token_file(dut_cfg.token_file)
        except ConfigError as exc:
            raise ConfigError(f"{self.config.source}: dut.{dut_cfg.name}: {exc}") from None
        return AgentClient(dut_cfg.url, token)

    @property
    def dut(self) -> Dut:
        """The DUT under test (``--dut``, else the rig file's first)."""
        for d in self.duts:
            if d.name == self._dut_name:
                return d
        raise ConfigError(f"rig {self.config.name!r} has no DUT")

    def capabilities(self, dut: Dut | None = None) -> frozenset[str]:
        return (dut or self.dut).capabilities

    def dut_identity(self) -> str:
        """The DUT's identity as it reports it (control), else as the rig file says."""
        d = self.dut
        if d.control is not None:
            try:
                ident = d.control.identity()
            except MBusRigError as exc:
                return f"{d.describe()} (identity unavailable: {exc})"
            if isinstance(ident, dict):
                return ", ".join(f"{k}={v}" for k, v in ident.items())
            return str(ident)
        return d.describe()

    def restart_dead_programs(self) -> list[tuple[ProgramDeath, str]]:
        """Every DUT program that has exited since it was last started, started again: the
        pty flushed and back at its first rate, the master back at the rig's rate (a program
        starts at its own), FCBs reset. Returns (death, what was done) for each: "restarted
        (pid N)" or "could not be restarted: why"."""
        done: list[tuple[ProgramDeath, str]] = []
        for dut in self.duts:
            program = dut.program
            death = None if program is None else program.death()
            if program is None or death is None:
                continue
            bridge = dut.extra.get("bridge")
            try:
                if bridge is not None:
                    bridge.reset()
                program.restart()
                self._wait_ready(program, dut.control)
                if self.master is not None:
                    self.master.set_baud(self.config.master.baud)
                    self.master.link.reset_fcb()
                    self._baud = self.config.master.baud
                done.append((death, f"restarted it (pid {program.pid})"))
            except MBusRigError as exc:
                done.append((death, f"could not restart it: {exc}"))
        return done

    def dut_output(self) -> str:
        """What the outside DUT programs wrote (for the report)."""
        return "\n".join(f"--- {p.name} (pid {p.pid}) ---\n{p.output()}" for p in self._programs)

    # --- per scenario --------------------------------------------------------------------------

    def begin_test(self, name: str = "") -> float:
        """Mark the start of a scenario; returns its start time on the rig clock."""
        if self.runner is not None and self.runner.error is not None:
            raise HardwareError(f"the simulated bus stopped: {self.runner.error}")
        if self._levels is not None:
            self._levels.restart()
        return self.clock.now()

    def end_test(self) -> None:
        """After a scenario: faults off, DUT-internal faults disarmed, extra slaves gone."""
        self.faults.clear()
        for d in self.duts:
            if d.control is not None:
                try:
                    d.control.disarm()
                except MBusRigError as exc:
                    log.warning("DUT %s: disarm failed: %s", d.name, exc)
        self.remove_extra_slaves()

    def bus_levels(self, start: float, end: float) -> tuple[Any, ...] | None:
        """The bus levels over [start, end] of the current scenario (``Waveform`` s: master
        voltage, slave current), or None on a real bus, which the rig cannot sample."""
        return None if self._levels is None else self._levels.levels(start, end)

    def trace_view(self, start: float) -> LiveTrace:
        return LiveTrace(self.trace, start)

    def use_baud(self, baud: int) -> None:
        """Put the master and every DUT at ``baud``; NotSupportedError if a DUT cannot."""
        if baud == self._baud:
            return
        for d in self.duts:
            if d.bauds is not None and baud not in d.bauds:
                raise NotSupportedError(f"DUT {d.name} does not support {baud} Bd (it supports "
                                        f"{', '.join(map(str, d.bauds))})")
        for d in self.duts:
            meter = d.extra.get("meter")
            if meter is not None:
                self.in_sim(functools.partial(_restart_at, meter, baud))
            elif d.control is not None and hasattr(d.control, "set_baud"):
                d.control.set_baud(baud)  # the agent switches its UART directly
            elif "baud_switch" in d.capabilities:
                self.master.switch_baud(d.address, baud)
            else:
                raise NotSupportedError(f"DUT {d.name} cannot be put at {baud} Bd: it does "
                                        "not claim baud_switch")
        self.master.set_baud(baud)
        self._baud = baud

    # --- extra emulated slaves (sim only) ------------------------------------------------------

    def population(self) -> Population:
        if self.bus is None:
            raise NotSupportedError(f"rig {self.config.name!r} is {self.mode}: extra emulated "
                                    "slaves need the simulated bus")
        return Population(self)

    def add_slave(self, what: SecondaryAddress | Any, address: int = 0) -> Dut:
        """One more emulated slave: a secondary address (built-in profile with that identity)
        or a MeterProfile."""
        n = len(self._extra_slaves) + 1
        caps = frozenset({"primary", "secondary"})
        if isinstance(what, SecondaryAddress):
            d = self._emulated(None, f"extra{n}", address, what, caps)
        else:
            d = self._emulated(None, f"extra{n}", address, None, caps, profile=what)
        d.kind = "emulated"
        self._extra_slaves.append(d)
        return d

    def remove_extra_slaves(self) -> None:
        while self._extra_slaves:
            self._extra_slaves.pop().extra["meter"].remove()

    # --- safe state and closing -----------------------------------------------------------------

    def _lines_safe(self) -> None:
        report = self.lines.safe_state()
        if not report.ok:
            raise HardwareError(str(report))

    def _stop_programs(self) -> None:
        for program in self._programs:
            program.stop()

    def safe_state(self) -> None:
        """Every fault line released and DUT programs stopped, now (idempotent)."""
        self._lines_safe()
        self._stop_programs()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.guard.trigger("close")
        for program in self._programs:
            program.close()
        for bridge in self._bridges:
            try:
                bridge.close()
            except Exception as exc:  # noqa: BLE001 - teardown goes on
                log.warning("bridge %s: close failed: %s", bridge, exc)
        self.remove_extra_slaves()
        try:
            self.lines.close()
        except MBusRigError as exc:
            log.error("fault lines: %s", exc)
        if self.bus is not None:
            self.bus.close()
        self.guard.uninstall()
        if self.lock is not None:
            self.lock.release()


def open_gpio(config: RigConfig, *, clock: Clock | None = None) -> Any:
    """The GPIO backend a rig file's fault lines need (the rig and ``mbus-rig safe-state``
    share it). With no lines, none is needed: a simulated one stands in. ``remote``: a farm
    rig pair's line server. ``auto`` on a real bus must find RPi.GPIO: a simulated stand-in
    there would make every injected fault, and every release, a silent no-op."""
    from hardware.gpio.factory import open_backend

    gpio = config.gpio
    if not gpio.lines:
        return open_backend("sim", clock=clock)
    if gpio.backend == "remote":
        from rig.agent.client import read_token_file
        from rig.farm.lines import RemoteGpio

        assert gpio.url is not None and gpio.token_file is not None
        return RemoteGpio(gpio.url, read_token_file(gpio.token_file))
    kind = "rpi" if gpio.backend == "auto" and not config.bus.simulated else gpio.backend
    return open_backend(kind, clock=clock)


class Population:
    """``sim_population``: extra emulated slaves for one scenario, removed after it."""

    def __init__(self, rig: Rig) -> None:
        self._rig = rig
        self.slaves: list[Dut] = []

    def add(self, items: Iterable[SecondaryAddress | Any] | SecondaryAddress | Any,
            address: int = 0) -> list[Dut]:
        if isinstance(items, SecondaryAddress) or not isinstance(items, Iterable):
            items = [items]
        added = [self._rig.add_slave(item, address) for item in items]
        self.slaves.extend(added)
        return added

    def __iter__(self) -> Iterator[Dut]:
        return iter(self.slaves)

    def __len__(self) -> int:
        return len(self.slaves)

    def clear(self) -> None:
        self._rig.remove_extra_slaves()
        self.slaves.clear()


def _restart_at(meter: Any, baud: int) -> None:
    """An emulated slave starting over at ``baud``, as if powered up with that rate set:
    same profile, defects and armed faults (the rig puts it there without a baud switch on
    the wire, so scenarios at every rate start alike)."""
    from protocol.meter import MeterCore

    old = meter.core
    core = MeterCore(replace(old.profile, baud=baud), defects=old.defects)
    for fault in old.armed:
        core.arm(fault.kind, fault.remaining, **dict(fault.params))
    meter.core = core
    meter.endpoint.baud = baud


def _with_identity(profile: Any, address: int | None, secondary: SecondaryAddress | None) -> Any:
    """The profile with the rig file's primary and secondary address, where given."""
    from protocol.identity import manufacturer_letters

    changes: dict[str, Any] = {}
    if address is not None:
        changes["address"] = address
    if secondary is not None:
        changes.update(id=secondary.id, manufacturer=manufacturer_letters(secondary.manufacturer),
                       version=secondary.version, medium=secondary.medium)
    return replace(profile, **changes) if changes else profile
