"""The rig when the DUT is a master: the simulated bus with the meters the scenarios put on
it, and the master under test run one operation at a time (docs/design.md "Devices under
test": the roles swap).

:class:`MasterRig` is the :class:`rig.rig.Rig` with the master's side swapped: no master
instrument of its own (the DUT is the master); the emulated master (rig/master_dut.py) runs
the project's tools on the rig's port and virtual clock, an outside master program joins the
bus, then run in real time, through a pseudo-terminal or TCP gateway per operation. The
meters (``add_meter``: the project's emulated meter; ``add_scripted``: a stand-in that
answers whatever a scenario scripts) live for one scenario, like ``sim_population``.
Fault lines, trace, safe state and the lock are the Rig's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from protocol.errors import ConfigError
from protocol.timing import char_time, response_window

from .config import DutConfig, RigConfig
from .dut import Dut
from .master_dut import (
    EmulatedMaster,
    MasterUnderTest,
    OperationResult,
    ProgramMaster,
    find_program,
    report_of,
)
from .master_output import MasterReport
from .rig import NotSupportedError, Rig

SETTLE_LIMIT_S = 60.0
"""Bus time the rig waits at most for the bus to fall quiet around an operation."""
REALTIME_SLACK_S = 0.02
"""How much later than on the bus an outside program may see a character in real time (the
pseudo-terminal bridge's threads): timing scenarios that put an answer at the edge of the
response window keep this much inside it (``MasterRig.timing_slack``)."""


def open_rig(config: RigConfig, *, dut: str | None = None, instance: str | None = None) -> Rig:
    """The rig for ``config``: a MasterRig when the DUT under test is a master."""
    if config.duts and config.dut(dut).is_master:
        return MasterRig(config, dut=dut, instance=instance)
    return Rig(config, dut=dut, instance=instance)


class MasterRig(Rig):
    """A rig whose DUT is a master (see the module docstring)."""

    def __init__(self, config: RigConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.mut: MasterUnderTest | None = None
        self._meter_numbers = 0

    # --- building ---------------------------------------------------------------------------

    @property
    def master_config(self) -> DutConfig:
        return self.config.dut(self._dut_name)

    def _build_hardware(self) -> None:
        raise ConfigError(f"{self.config.source}: a black-box master on a real bus is not "
                          "supported yet (run it on the simulated bus as kind = \"program\")")

    def _build_sim_dut(self, dut_cfg: DutConfig) -> Dut:
        if not dut_cfg.is_master:
            return super()._build_sim_dut(dut_cfg)
        what = ("the project's master (the mbus-rig tools) in process" if dut_cfg.kind ==
                "emulated" else "an outside master program, run per operation")
        self.checked.append(f"DUT {dut_cfg.name}: {what}")
        return Dut(name=dut_cfg.name, kind=dut_cfg.kind, address=0, secondary=None,
                   capabilities=self._capabilities(dut_cfg), bauds=dut_cfg.supported_bauds)

    def _build_master(self) -> None:
        cfg = self.master_config
        settings = cfg.master
        assert settings is not None and self.bus is not None
        if cfg.kind == "emulated":
            from hardware.serial_port import SerialBusPort

            self.port = SerialBusPort(f"mbussim://{self.bus.name}", self.clock, baud=self._baud)
            self.guard.add("master port", self.port.close)
            self.mut = EmulatedMaster(cfg.name, settings, self.clock, f"rig://{self.bus.name}",
                                      self._tool_session)
        else:
            source = self.config.source
            cwd = os.path.dirname(os.path.abspath(source)) if os.path.exists(source) else None
            for op, argv in settings.commands.items():
                if find_program(argv[0], cwd) is None:
                    raise ConfigError(f"DUT {cfg.name}: the {op} command's program "
                                      f"{argv[0]!r} is not found (install it, or give its "
                                      "path in the rig file)")
            self.checked.append(f"DUT {cfg.name}: programs found for "
                                f"{', '.join(settings.commands)}")
            self.mut = ProgramMaster(cfg.name, settings, self.clock,
                                     open_bridge=self._open_bridge, cwd=cwd)

    def _tool_session(self, args: Any) -> Any:
        """The master tools' bus session on the rig's port: the test master with the DUT's
        defects, at the rate and retries the command line gives."""
        from rig.defective_master import TestMaster
        from rig.tools.bus import BusSession

        port = self.port
        port.reset_input()
        if port.baud != args.baud:
            port.set_baud(args.baud)
        master = TestMaster(port, self.clock, retries=args.retries,
                            defects=self.master_config.defects,
                            read_latency=args.read_latency or 0.0)
        if args.timeout is not None:
            master.link.response_timeout = args.timeout
        return BusSession(device=args.device, master=master, clock=self.clock, port=port,
                          trace=None, retries=args.retries)

    def _open_bridge(self) -> tuple[dict[str, object], Callable[[], None]]:
        """A fresh way onto the bus's master endpoint for one run of a master program."""
        from hardware.sim.bridges import MasterPty, TcpGateway

        settings = self.master_config.master
        assert settings is not None and self.runner is not None
        if settings.joins_by == "tty":
            pty = MasterPty(self.runner, self.bus.master)
            return {"tty": pty.path}, pty.close
        gateway = TcpGateway(self.runner, self.bus.master, "127.0.0.1", 0)
        host, port = gateway.address
        return {"tcp": f"{host}:{port}", "tcp_host": host, "tcp_port": port}, gateway.close

    # --- operations -------------------------------------------------------------------------

    def operate(self, operation: str, **values: object) -> OperationResult:
        """Run one operation of the master at the rig's rate, with the bus quiet before and
        after (so the trace from ``start`` to ``end`` holds all it caused)."""
        mut = self.mut
        assert mut is not None
        settings = self.master_config.master
        assert settings is not None
        full = {"baud": self._baud, "retries": settings.retries, **values}
        if settings.joins_by == "tcp":  # a TCP gateway has no rate of its own to follow
            rate = int(str(full["baud"]))
            self.in_sim(lambda: setattr(self.bus.master, "baud", rate))
        self.settle()
        result = mut.run(operation, full)
        self.settle()
        return replace(result, end=self.clock.now())

    def report(self, result: OperationResult) -> MasterReport:
        assert self.mut is not None
        return report_of(self.mut, result)

    def settle(self) -> None:
        """Wait (bus time) until nothing has been on the bus for the response window plus a
        character: whatever answers the last request has come."""
        quiet = response_window(self._baud)[1] + 2 * char_time(min(self._baud, 300))
        limit = self.clock.now() + SETTLE_LIMIT_S
        while self.clock.now() < limit:
            entries = self.trace.entries
            last = entries[-1].time if entries else float("-inf")
            idle = self.clock.now() - last
            if idle >= quiet * (1 - 1e-9):
                return
            self.clock.sleep(max(quiet - idle, char_time(self._baud)))

    # --- rates --------------------------------------------------------------------------------

    def use_baud(self, baud: int) -> None:
        if baud == self._baud:
            return
        dut = self.dut
        if dut.bauds is not None and baud not in dut.bauds:
            raise NotSupportedError(f"master {dut.name} is not run at {baud} Bd (its rig file "
                                    f"gives bauds = {list(dut.bauds)})")
        self._baud = baud
        self.in_sim(lambda: setattr(self.bus.master, "baud", baud))
        if self.port is not None:
            self.port.set_baud(baud)
        self.remove_extra_slaves()

    @property
    def baud(self) -> int:
        return self._baud

    @property
    def timing_slack(self) -> float:
        """0 on virtual time; :data:`REALTIME_SLACK_S` when the bus runs in real time."""
        return 0.0 if self.runner is None else REALTIME_SLACK_S

    # --- meters -------------------------------------------------------------------------------

    def meters(self) -> MeterSide:
        return MeterSide(self)

    def _next_name(self) -> str:
        self._meter_numbers += 1
        return f"meter{self._meter_numbers}"

    def add_meter(self, profile: Any) -> Dut:
        """One emulated meter (protocol.meter) with ``profile`` (its address, identity,
        delay), joining at the rig's rate."""
        name = self._next_name()
        caps = frozenset({"primary", "secondary"})
        made: list[Dut] = []
        self.bus.in_sim(lambda: made.append(self._emulated(None, name, None, None, caps,
                                                           profile=profile)))
        self._extra_slaves.append(made[0])
        return made[0]

    def add_scripted(self, answer: Callable[[bytes], bytes | None], *, delay: float,
                     address: int = 0, secondary: Any = None) -> Dut:
        """A slave that answers each complete frame it hears with ``answer(frame)`` after
        ``delay`` s (None: silence): for answers no meter gives (garbage, twice).
        ``address`` and ``secondary`` are what the scenario's answers say it is."""
        from hardware.sim.scripted import ScriptedSlave

        name = self._next_name()
        made: list[Any] = []

        def build() -> None:
            endpoint = self.bus.add_slave(name, self._baud)
            made.append(_Scripted(self.bus, endpoint, ScriptedSlave(endpoint, answer, delay)))

        self.bus.in_sim(build)
        dut = Dut(name=name, kind="scripted", address=address, secondary=secondary,
                  capabilities=frozenset(), extra={"meter": made[0],
                                                   "endpoint": made[0].endpoint})
        self._extra_slaves.append(dut)
        return dut

    def remove_extra_slaves(self) -> None:
        if self.bus is None:
            return
        self.bus.in_sim(super().remove_extra_slaves)

    def close(self) -> None:
        mut = self.mut
        if mut is not None:
            mut.close()  # type: ignore[attr-defined]
        super().close()


class _Scripted:
    """A scripted slave as the rig removes it after the scenario."""

    def __init__(self, bus: Any, endpoint: Any, slave: Any) -> None:
        self.bus = bus
        self.endpoint = endpoint
        self.slave = slave

    def remove(self) -> None:
        self.endpoint.on_receive = None
        self.bus.remove_slave(self.endpoint)


class MeterSide:
    """``meters`` in a master scenario: the rig's meters for this scenario."""

    def __init__(self, rig: MasterRig) -> None:
        self._rig = rig
        self.meters: list[Dut] = []
        self._profiles: list[Any] = []

    def add(self, profile: Any) -> Dut:
        meter = self._rig.add_meter(profile)
        self.meters.append(meter)
        self._profiles.append(profile)
        return meter

    def reference_search(self) -> Any:
        """The project's own secondary search over the same meters (their profiles, at the
        rig's rate) on a bus of its own, on virtual time: the SearchResult to compare a
        master's search with (probes, bus time)."""
        from hardware.serial_port import SerialBusPort
        from hardware.sim import SimBus, Simulation, VirtualClock
        from hardware.sim.meter import SimMeter
        from hardware.sim.registry import unregister
        from protocol.meter import MeterCore
        from rig.master import Master

        baud = self._rig.baud
        sim = Simulation(self._rig.config.bus.seed)
        name = f"{self._rig.bus.name}-reference"
        bus = SimBus(sim, master_baud=baud, name=name, trace=False)
        try:
            for profile in self._profiles:
                start = replace(profile, baud=baud) if baud in profile.bauds else profile
                SimMeter.on_bus(bus, MeterCore(start))
            clock = VirtualClock(sim)
            port = SerialBusPort(f"mbussim://{name}", clock, baud=baud)
            try:
                return Master(port, clock).search_secondary()
            finally:
                port.close()
        finally:
            unregister(name)

    def scripted(self, answer: Callable[[bytes], bytes | None], *, delay: float,
                 address: int = 0, secondary: Any = None) -> Dut:
        meter = self._rig.add_scripted(answer, delay=delay, address=address,
                                       secondary=secondary)
        self.meters.append(meter)
        return meter

    def __iter__(self) -> Iterator[Dut]:
        return iter(self.meters)

    def __len__(self) -> int:
        return len(self.meters)

    def clear(self) -> None:
        self._rig.remove_extra_slaves()
        self.meters.clear()
