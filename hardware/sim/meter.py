"""Emulated meters on the simulated bus: a MeterCore bound to a slave endpoint.

:class:`SimMeter` feeds the endpoint's received characters (its own echo included: the
endpoint models the TSS721A) to the core, sends each ``Transmit`` at its time, applies
``SetBaud`` after the transmission or at once, and polls the core at its deadlines (the
baud-rate fallback).

Power (EN 13757-2 / docs/mbus-facts.md "Slave readiness"): when the endpoint reports that the device
lost its supply (after the TSS721A hold-up time), the core's link starts over
(:meth:`MeterCore.power_lost`: profile address, profile baud rate, deselected, FCB
expectation and readout page reset) and the UART goes back to the profile's rate. What
persists: the profile, the application's access number, status and alarm (the metrology
of a meter runs on its own battery), and the armed faults and defects (rig controls).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

from protocol.chars import RxChar
from protocol.errors import ConfigError
from protocol.fields import PRIMARY_MAX
from protocol.link.slave import SetBaud, SlaveAction
from protocol.meter import MeterCore, MeterProfile

from .bus import SimBus, SlaveEndpoint
from .engine import Event

MAX_ID = 99_999_999


class SimMeter:
    """A MeterCore on a simulated slave endpoint."""

    def __init__(self, endpoint: SlaveEndpoint, core: MeterCore) -> None:
        self.endpoint = endpoint
        self.core = core
        self.sim = endpoint.bus.sim
        self.power_losses = 0
        self._poll: Event | None = None
        endpoint.baud = core.baud
        endpoint.on_receive = self._receive
        endpoint.on_power = self._power

    @classmethod
    def on_bus(cls, bus: SimBus, profile: MeterProfile | MeterCore, *,
               name: str | None = None) -> SimMeter:
        """Connect a new slave endpoint for ``profile`` (or a ready core) and bind it."""
        core = profile if isinstance(profile, MeterCore) else MeterCore(profile)
        endpoint = bus.add_slave(name or f"meter{len(bus.slaves) + 1}", core.baud)
        return cls(endpoint, core)

    @property
    def name(self) -> str:
        return self.endpoint.name

    @property
    def profile(self) -> MeterProfile:
        return self.core.profile

    def remove(self) -> None:
        """Take the meter off the bus."""
        if self._poll is not None:
            self._poll.cancel()
        self.endpoint.on_receive = None
        self.endpoint.on_power = None
        self.endpoint.bus.remove_slave(self.endpoint)

    # --- callbacks from the bus -------------------------------------------------------------

    def _receive(self, ch: RxChar) -> None:
        actions = self.core.receive(ch)
        if actions or self._poll is not None:
            self._run(actions)
        # else nothing to do: a deadline (the baud fallback) only comes with a SetBaud action

    def _power(self, powered: bool) -> None:
        if powered:
            return
        self.power_losses += 1
        self.core.power_lost()
        self.endpoint.cancel_output()
        self.endpoint.baud = self.core.baud
        self._schedule_poll()

    def _on_poll(self) -> None:
        self._poll = None
        self._run(self.core.poll(self.sim.now()))

    # --- actions ----------------------------------------------------------------------------

    def _run(self, actions: Sequence[SlaveAction]) -> None:
        end: float | None = None
        for action in actions:
            if isinstance(action, SetBaud):
                if action.after_transmit and end is not None and end > self.sim.now():
                    self.sim.schedule(end, functools.partial(self._set_baud, action.baud))
                else:
                    self._set_baud(action.baud)
            else:
                at = max(action.not_before, self.sim.now())
                end = self.endpoint.transmit(action.data, at)
        self._schedule_poll()

    def _set_baud(self, baud: int) -> None:
        if self.endpoint.baud != baud:
            self.endpoint.baud = baud

    def _schedule_poll(self) -> None:
        deadline = self.core.next_deadline
        if self._poll is not None:
            if deadline is not None and self._poll.time == deadline:
                return
            self._poll.cancel()
            self._poll = None
        if deadline is not None:
            self._poll = self.sim.schedule(max(deadline, self.sim.now()), self._on_poll)


def meter_population(profile: MeterProfile, count: int, *, first_address: int | None = None,
                     baud: int | None = None) -> list[MeterProfile]:
    """``count`` copies of ``profile`` with distinct identification numbers (ID, ID+1, ...,
    wrapping at 99999999) at consecutive primary addresses from ``first_address`` (default
    the profile's). Address 0 (unconfigured) stays 0 for all: reach them by secondary address.
    ``baud`` (one of the profile's rates) replaces the profile's start rate."""
    first = profile.address if first_address is None else first_address
    if count < 1:
        raise ConfigError(f"{count} meters: at least 1")
    if first != 0 and first + count - 1 > PRIMARY_MAX:
        raise ConfigError(f"{count} meters from address {first} end at {first + count - 1} "
                          f"(allowed: addresses up to {PRIMARY_MAX}; start lower or use 0)")
    if count > MAX_ID + 1:
        raise ConfigError(f"{count} meters cannot have distinct 8-digit IDs")
    if baud is not None and baud not in profile.bauds:
        raise ConfigError(f"baud {baud} is not a rate of profile {profile.name} "
                          f"(allowed: {', '.join(map(str, profile.bauds))})")
    rate = profile.baud if baud is None else baud
    return [dataclasses.replace(
        profile, id=(profile.id + i) % (MAX_ID + 1), address=first + i if first else 0,
        baud=rate, name=profile.name if count == 1 else f"{profile.name}-{i + 1}")
        for i in range(count)]


def add_meters(bus: SimBus, profiles: Sequence[MeterProfile]) -> list[SimMeter]:
    """One SimMeter per profile on ``bus`` (endpoint names meter1, meter2, ...)."""
    return [SimMeter.on_bus(bus, p) for p in profiles]


def put_meters(bus: SimBus, profile: MeterProfile, count: int, *,
               first_address: int | None = None, baud: int | None = None) -> list[SimMeter]:
    """``count`` meters of ``profile`` with distinct IDs on ``bus`` (see meter_population)."""
    return add_meters(bus, meter_population(profile, count, first_address=first_address,
                                            baud=baud))
