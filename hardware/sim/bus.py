"""The simulated M-Bus segment: a master endpoint, up to 250 slave endpoints, physical faults.

Two channels refine docs/design.md's "AND of all senders" rule with the physics of docs/mbus-facts.md
"Character and physical layer":

* ``down`` (bus voltage): the master's characters. Every slave hears it.
* ``up`` (bus current): every slave's characters and the collision sink. Only the master
  hears it; slaves do not hear each other.

A slave also hears its own signal (the TSS721A echo: the AND of the bus voltage and its own
transmission), and the master hears ``down`` too when its level converter echoes (``echo``).
Each receiver applies the one UART routine of :mod:`hardware.sim.uart` to the AND of what it
hears. Faults are physical: a power cut or a short holds ``down`` at space (a short holds
``up`` at space too), slaves run on for their hold-up time and then lose their state, and
need their power-up time once the supply returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from hardware.trace import Trace, TraceEntry
from protocol.chars import RxChar, WireBytes, as_wire
from protocol.errors import ConfigError
from protocol.timing import BITS_PER_CHAR, check_baud

from .engine import Event, Simulation
from .uart import Channel, CharRecord, Pending, Receiver, Segment, View

if TYPE_CHECKING:
    from hardware.gpio.backend import GpioBackend

MAX_SLAVES = 250
"""Unit loads on one segment (docs/mbus-facts.md "Hardware: the two-Pi rig")."""
HOLD_UP_S = 0.090
"""TSS721A 3.3 V hold-up after bus loss, 47 uF at 1 mA (docs/mbus-facts.md)."""
POWER_UP_S = 0.3
"""TSS721A start-up once the bus returns, 47 uF (docs/mbus-facts.md; real meters up to about 5 s)."""
FAULT_ROLES = ("bus_power_cut", "slave_disconnect", "bus_short", "collision", "noise")
"""Output fault lines the bus follows (``hardware/lines.py`` roles); asserted = fault on."""
INPUT_ROLES = ("slave_power_fail",)
"""Input lines the bus drives: the TSS721A PF output (high while the bus is good)."""


class Endpoint:
    """One UART on the bus: transmits on its channel, receives through its view."""

    def __init__(self, bus: SimBus, name: str, baud: int, channel: Channel, view: View) -> None:
        self.bus = bus
        self.name = name
        self._baud = check_baud(baud)
        self._channel = channel
        self._sent: list[CharRecord] = []
        self.tx_end = 0.0
        self.clock_error = 0.0
        """Relative error of this UART's transmit bit clock (0.02: bits 2 % short, i.e. 2 %
        fast). Receivers sample at the nominal rate; a receiver's own error is the same as an
        opposite error of the sender."""
        self.rx = Receiver(name, view, self._baud)

    @property
    def on_receive(self) -> Callable[[RxChar], None] | None:
        """Called with every received character (at its stop-bit sample time)."""
        return self.rx.on_char

    @on_receive.setter
    def on_receive(self, callback: Callable[[RxChar], None] | None) -> None:
        self.rx.on_char = callback

    @property
    def baud(self) -> int:
        return self._baud

    @baud.setter
    def baud(self, baud: int) -> None:
        """Reprogram the UART now: characters queued before keep the rate they were sent at."""
        self._baud = check_baud(baud)
        self.rx.set_baud(baud)
        self._baud_changed(baud)

    def _baud_changed(self, baud: int) -> None:
        pass

    @property
    def powered(self) -> bool:
        """The UART's device is running (the master always is)."""
        return True

    def can_send(self) -> bool:
        return True

    def transmit(self, data: bytes | WireBytes, at: float | None = None) -> float:
        """Queue ``data`` from ``at`` (default now; never before the previous transmission
        ends) at the current baud; return the end of the last stop bit."""
        wire = as_wire(data)
        sim = self.bus.sim
        now = sim.now()
        t = max(now if at is None else at, now, self.tx_end)
        if not wire.data:
            return t
        tb = 1.0 / (self._baud * (1.0 + self.clock_error))
        if not self.can_send():
            self.tx_end = t + len(wire.data) * BITS_PER_CHAR * tb
            return self.tx_end
        self._before_send()
        self._sent = [r for r in self._sent if r.cut > now]
        for i, value in enumerate(wire.data):
            rec = CharRecord(self.name, t, tb, value, i in wire.bad_parity)
            self._channel.add(rec)
            self._sent.append(rec)
            t = rec.end
        self.tx_end = t
        self._after_send()
        return t

    def cancel_output(self) -> None:
        """Stop sending now: a character under way is cut, queued ones never start."""
        now = self.bus.sim.now()
        for rec in self._sent:
            if rec.cut > now:
                rec.cut = max(rec.t0, now)
        self._sent = []
        self.tx_end = min(self.tx_end, now)

    @property
    def busy_until(self) -> float:
        """When the last queued character's stop bit ends."""
        return self.tx_end

    def _before_send(self) -> None:
        pass

    def _after_send(self) -> None:
        pass


class MasterEndpoint(Endpoint):
    """The master's UART behind its level converter: sends on ``down``, hears ``up``."""

    def __init__(self, bus: SimBus, baud: int) -> None:
        super().__init__(bus, "master", baud, bus.down, bus._master_view())
        self.before_send: list[Callable[[], None]] = []
        """Called in the simulation right before the master's characters go onto the bus
        (a slave on a pty takes the rate its program set: ``bridges.SlavePty``)."""

    def _before_send(self) -> None:
        for callback in list(self.before_send):
            callback()

    def _baud_changed(self, baud: int) -> None:
        """The trace taps listen at the master's rate."""
        for tap in self.bus.taps:
            tap.set_baud(baud)


class SlaveEndpoint(Endpoint):
    """A slave's UART behind its TSS721A: sends on ``up``, hears ``down`` and its own echo.

    ``on_power(powered)`` tells the device it lost its supply for good (state is gone) or is
    running again after its power-up time. ``hold_up``/``power_up`` are its TSS721A figures.
    """

    def __init__(self, bus: SimBus, name: str, baud: int, hold_up: float, power_up: float) -> None:
        super().__init__(bus, name, baud, bus.up, bus.slave_view)
        self.hold_up = hold_up
        self.power_up = power_up
        self.on_power: Callable[[bool], None] | None = None
        self._connected = True
        self._powered = True
        self._loss: Event | None = None
        self._rise: Event | None = None
        self._echo: View | None = None
        self._home: Event | None = None

    # --- power and connection -------------------------------------------------------------

    @property
    def powered(self) -> bool:
        """The device is running (on the bus supply or its hold-up capacitor)."""
        return self._powered

    @property
    def supplied(self) -> bool:
        """The bus voltage reaches this slave (bus on, not shorted, connected)."""
        return self._connected and self.bus.supply_ok

    @property
    def connected(self) -> bool:
        return self._connected

    @connected.setter
    def connected(self, value: bool) -> None:
        """Open (False) or close the series relay between this slave and the bus."""
        if value != self._connected:
            self._connected = value
            self._supply_changed()

    def can_send(self) -> bool:
        return self._powered and self.supplied

    def _supply_changed(self) -> None:
        sim = self.bus.sim
        if self.supplied:
            if self._loss is not None:
                self._loss.cancel()  # back within the hold-up time: nothing was lost
                self._loss = None
            if not self._powered and self._rise is None:
                self._rise = sim.schedule(sim.now() + self.power_up, self._power_rises)
        else:
            self.cancel_output()
            if self._rise is not None:
                self._rise.cancel()
                self._rise = None
            if self._powered and self._loss is None:
                self._loss = sim.schedule(sim.now() + self.hold_up, self._power_fails)
        self._update_rx()
        self.bus._pf_update(self)

    def _update_rx(self) -> None:
        if self._powered and self._connected:
            self.rx.enable()
        else:
            self.rx.disable()

    def _power_fails(self) -> None:
        self._loss = None
        self._powered = False
        self._update_rx()
        if self.on_power is not None:
            self.on_power(False)

    def _power_rises(self) -> None:
        self._rise = None
        self._powered = True
        self._update_rx()
        if self.on_power is not None:
            self.on_power(True)

    # --- the TSS721A echo -----------------------------------------------------------------

    def _before_send(self) -> None:
        if self._echo is None:
            bus = self.bus
            self._echo = View(bus.sim, f"{self.name} echo", [(bus.down, None), (bus.up, self.name)])
            self._echo.attach()
        self.rx.set_view(self._echo)

    def _after_send(self) -> None:
        if self._home is not None:
            self._home.cancel()
        self._home = self.bus.sim.schedule(self.tx_end, self._go_home)

    def _go_home(self) -> None:
        """Back on the shared view once the own signal is over and nothing is being received."""
        self._home = None
        sim = self.bus.sim
        if self.tx_end > sim.now():
            self._home = sim.schedule(self.tx_end, self._go_home)
            return
        if self.rx.pending is not None:
            self._home = sim.schedule(self.rx.pending.end, self._go_home)
            return
        self.rx.set_view(self.bus.slave_view)
        if self._echo is not None:
            self._echo.detach()
            self._echo = None


class SimBus:
    """One M-Bus segment on a :class:`Simulation`.

    ``master_baud`` is the master UART's rate, ``echo`` whether the master's level converter
    echoes its own frame. ``name`` registers the bus for ``mbussim://NAME``. ``trace`` gets
    every character: M>S as a receiver at the master's rate hears the bus voltage, S>M as
    one hears the bus current (the master's view without its echo).
    """

    def __init__(
        self,
        sim: Simulation,
        *,
        master_baud: int = 2400,
        echo: bool = False,
        name: str | None = None,
        trace: Trace | None | bool = True,
        hold_up: float = HOLD_UP_S,
        power_up: float = POWER_UP_S,
    ) -> None:
        self.sim = sim
        self.down = Channel(sim, "down")
        self.up = Channel(sim, "up")
        self.slave_view = View(sim, "slaves", [(self.down, None)]).attach()
        self.up_view = View(sim, "up", [(self.up, None)]).attach()
        self._echo_view: View | None = None
        self._echo = echo
        self.hold_up = hold_up
        self.power_up = power_up
        self.slaves: list[SlaveEndpoint] = []
        self.taps: list[Receiver] = []
        self.power_on = True
        self.shorted = False
        self._power_seg: Segment | None = None
        self._short_segs: list[Segment] = []
        self._sink: Segment | None = None
        self.collision_start: float | None = None
        self.collision_duration: float | None = None
        self.noise_down = 0.0
        self.noise_up = 0.0
        self.disconnect_targets: list[SlaveEndpoint] = []
        """Slaves behind the disconnect relay (empty: every slave)."""
        self._pf_lines: list[tuple[GpioBackend, int]] = []
        self._break: Segment | None = None
        self.master_port: object | None = None
        """The open ``mbussim://`` port on the master endpoint, if any."""
        self.master = MasterEndpoint(self, master_baud)
        baud = self.master.baud
        self.taps = [
            Receiver("tap M>S", self.slave_view, baud, self._tap("M>S"), enabled=False),
            Receiver("tap S>M", self.up_view, baud, self._tap("S>M"), enabled=False),
        ]
        self._trace: Trace | None = None
        self.trace = Trace() if trace is True else (None if trace is False else trace)
        self.name = name
        if name is not None:
            from .registry import register

            register(name, self)

    def in_sim(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the bus at the current time: directly on virtual time, through the
        runner (under its lock, caught up to the wall clock) when one drives the bus."""
        runner = self.sim.runner
        if runner is not None:
            runner.call(fn)
        else:
            with self.sim.lock:
                fn()

    def close(self) -> None:
        """Unregister the ``mbussim://`` name (an open port keeps working)."""
        if self.name is not None:
            from .registry import lookup, unregister

            try:
                if lookup(self.name) is self:
                    unregister(self.name)
            except ConfigError:
                pass

    # --- endpoints ------------------------------------------------------------------------

    def _master_view(self) -> View:
        if not self._echo:
            return self.up_view
        if self._echo_view is None:
            self._echo_view = View(self.sim, "master echo", [(self.up, None), (self.down, None)])
            self._echo_view.attach()
        return self._echo_view

    @property
    def echo(self) -> bool:
        return self._echo

    @echo.setter
    def echo(self, value: bool) -> None:
        self._echo = value
        self.master.rx.set_view(self._master_view())

    def add_slave(
        self,
        name: str | None = None,
        baud: int | None = None,
        *,
        hold_up: float | None = None,
        power_up: float | None = None,
    ) -> SlaveEndpoint:
        """Connect a slave endpoint (powered, connected, receiving from now on) at ``baud``
        (default: the master's rate); ``hold_up``/``power_up`` default to the bus's."""
        if len(self.slaves) >= MAX_SLAVES:
            raise ConfigError(f"a segment takes at most {MAX_SLAVES} slaves (unit loads)")
        name = name or f"slave{len(self.slaves) + 1}"
        if name == "master" or any(s.name == name for s in self.slaves):
            raise ConfigError(f"slave name {name!r} is already used on this bus")
        ep = SlaveEndpoint(
            self,
            name,
            self.master.baud if baud is None else baud,
            self.hold_up if hold_up is None else hold_up,
            self.power_up if power_up is None else power_up,
        )
        self.slaves.append(ep)
        if not ep.supplied:
            ep._powered = False
            ep._supply_changed()
        return ep

    def remove_slave(self, ep: SlaveEndpoint) -> None:
        """Take a slave off the bus for good."""
        ep.cancel_output()
        ep.rx.disable()
        for event in (ep._loss, ep._rise, ep._home):
            if event is not None:
                event.cancel()
        if ep._echo is not None:
            ep._echo.detach()
        self.slaves.remove(ep)
        self.up.forget(ep.name)
        if ep in self.disconnect_targets:
            self.disconnect_targets.remove(ep)

    @property
    def trace(self) -> Trace | None:
        """Where the bus tap records every character (None: no tap, a little faster)."""
        return self._trace

    @trace.setter
    def trace(self, trace: Trace | None) -> None:
        self._trace = trace
        for tap in self.taps:
            if trace is None:
                tap.disable()
            else:
                tap.enable()

    def _tap(self, direction: str) -> Callable[[RxChar, Pending], None]:
        """A tap receiver's output: a TraceEntry naming the senders heard."""

        def deliver(ch: RxChar, pending: Pending) -> None:
            if self._trace is not None:
                self._trace.append(
                    TraceEntry(
                        ch.time,
                        direction,
                        pending.baud,
                        ch.value,
                        ch.parity_error,
                        ch.framing_error,
                        "+".join(pending.sources()),
                    )
                )

        return deliver

    # --- faults ---------------------------------------------------------------------------

    @property
    def supply_ok(self) -> bool:
        """The bus carries its voltage (power on and not shorted)."""
        return self.power_on and not self.shorted

    def set_power(self, on: bool) -> None:
        """Bus power on/off (off: the voltage is gone, slaves hear space and run on hold-up)."""
        if on == self.power_on:
            return
        self.power_on = on
        now = self.sim.now()
        if on:
            if self._power_seg is not None:
                self._power_seg.cut = now
                self._power_seg = None
        else:
            self._power_seg = Segment("power cut", now)
            self.down.add(self._power_seg)
        self._supply_all()

    def set_short(self, on: bool) -> None:
        """Short the bus: the voltage collapses and the master sees continuous current (space)."""
        if on == self.shorted:
            return
        self.shorted = on
        now = self.sim.now()
        if on:
            self._short_segs = [Segment("short", now), Segment("short", now)]
            self.down.add(self._short_segs[0])
            self.up.add(self._short_segs[1])
        else:
            for seg in self._short_segs:
                seg.cut = now
            self._short_segs = []
        self._supply_all()

    def _supply_all(self) -> None:
        for ep in list(self.slaves):
            ep._supply_changed()

    def set_disconnected(self, on: bool, targets: Iterable[SlaveEndpoint] | None = None) -> None:
        """Open (on) or close the disconnect relay of ``targets`` (default: disconnect_targets,
        or every slave when that is empty)."""
        chosen = list(targets) if targets is not None else (self.disconnect_targets or self.slaves)
        for ep in chosen:
            ep.connected = not on

    def set_collision(self, start: float | None = None, duration: float | None = None) -> None:
        """Collision sink window for the next time the collision line is asserted: space on
        the bus current from ``start`` (absolute; default: the moment of asserting) for
        ``duration`` seconds (default: until the line is released)."""
        if duration is not None and duration < 0:
            raise ConfigError(f"collision duration {duration} is negative")
        self.collision_start = start
        self.collision_duration = duration

    def collision(self, on: bool) -> None:
        """Switch the collision sink (a sender holding space on the bus current)."""
        now = self.sim.now()
        if on:
            if self._sink is not None and self._sink.cut > now:
                return
            begin = max(now, self.collision_start if self.collision_start is not None else now)
            end = begin + self.collision_duration if self.collision_duration is not None else float("inf")
            self._sink = Segment("collision", begin, end)
            self.up.add(self._sink)
        elif self._sink is not None:
            if self._sink.cut > now:
                self._sink.cut = max(now, self._sink.t0)
            self._sink = None

    def master_break(self, on: bool) -> None:
        """The master UART's break condition: the bus voltage held at space."""
        now = self.sim.now()
        if on and self._break is None:
            self._break = Segment("break", now)
            self.down.add(self._break)
        elif not on and self._break is not None:
            self._break.cut = now
            self._break = None

    def set_noise(self, down: float = 0.0, up: float = 0.0) -> None:
        """Bit-flip probability per sampled bit, per direction, for when noise is switched on."""
        for value in (down, up):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"noise rate {value} is not a probability (0..1)")
        self.noise_down = down
        self.noise_up = up
        if self.down.noise or self.up.noise:
            self.noise(True)

    def noise(self, on: bool) -> None:
        """Switch the noise source on the bus."""
        self.down.noise = self.noise_down if on else 0.0
        self.up.noise = self.noise_up if on else 0.0

    def fault(self, role: str, active: bool) -> None:
        """Apply the fault behind a line role (``FAULT_ROLES``); asserted = fault on."""
        if role == "bus_power_cut":
            self.set_power(not active)
        elif role == "bus_short":
            self.set_short(active)
        elif role == "slave_disconnect":
            self.set_disconnected(active)
        elif role == "collision":
            self.collision(active)
        elif role == "noise":
            self.noise(active)
        else:
            raise ConfigError(f"unknown fault role {role!r} (known: {', '.join(FAULT_ROLES)})")

    def wire_lines(
        self,
        gpio: GpioBackend,
        pins: Mapping[str, int],
        *,
        active_high: bool | Mapping[str, bool] = True,
        disconnect: Iterable[SlaveEndpoint] = (),
    ) -> None:
        """Follow fault lines on ``gpio`` as the rig's relays are wired: ``pins`` maps a role
        to a BCM pin; a line is asserted when its level equals its ``active_high``. The
        ``slave_power_fail`` input is driven high while the first disconnect target (or
        first slave) has bus supply."""
        self.disconnect_targets.extend(disconnect)
        for role, pin in pins.items():
            if role in INPUT_ROLES:
                self._pf_lines.append((gpio, pin))
                self._pf_update(None)
                continue
            if role not in FAULT_ROLES:
                known = ", ".join(FAULT_ROLES + INPUT_ROLES)
                raise ConfigError(f"fault line role {role!r} is not known (known: {known})")
            high = active_high if isinstance(active_high, bool) else active_high.get(role, True)

            def follow(_pin: int, level: bool, role: str = role, high: bool = high) -> None:
                self.in_sim(lambda: self.fault(role, level == high))

            gpio.on_change(pin, follow)
            level = getattr(gpio, "level", None)
            if callable(level) and level(pin) == high:
                self.fault(role, True)

    def _pf_update(self, ep: SlaveEndpoint | None) -> None:
        """Drive the PF input(s) from the watched slave's supply."""
        if not self._pf_lines:
            return
        candidates = self.disconnect_targets or self.slaves
        watched = candidates[0] if candidates else None
        if ep is not None and ep is not watched:
            return
        good = watched.supplied if watched is not None else self.supply_ok
        for gpio, pin in self._pf_lines:
            drive = getattr(gpio, "drive", None)
            if callable(drive):
                drive(pin, good)
