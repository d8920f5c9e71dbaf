"""Opening the bus named by ``--device``, and what every master tool does with it.

``--device`` forms:

- a serial device: ``/dev/ttyUSB0``, ``/dev/ttyAMA0``;
- any pyserial URL: ``socket://HOST:PORT`` (a TCP M-Bus gateway or ``mbus-rig virtual-meter``),
  ``rfc2217://HOST:PORT``, ``loop://``;
- the simulated bus, in-process on virtual time: ``sim`` (one emulated meter at address 1),
  ``sim:N`` (N meters at addresses 1..N, 1 <= N <= 250). The meters use the built-in heat
  meter profile, or ``--profile FILE``; their identification numbers are drawn from
  ``--seed`` (same seed, same bus). The meters run at ``--baud``.

A :class:`BusSession` holds the master instrument, the clock and the trace; ``call`` runs a
master request and turns a failure into one line naming the target and the baud rate.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import os
import random
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from hardware.clock import Clock, WallClock
from protocol.errors import ConfigError, FrameError, LinkError, NoAnswerError
from protocol.fields import ADDRESS_SELECTED, PRIMARY_MAX
from protocol.identity import SecondaryAddress, manufacturer_letters, medium_name
from rig.master import exchange_of

from .errors import link_error

if TYPE_CHECKING:
    from protocol.meter import MeterProfile

T = TypeVar("T")

SIM_PREFIX = "sim"
MAX_SIM_METERS = PRIMARY_MAX
FIRST_SIM_ID = 10_000_000
"""Simulated meters get random 8-digit identification numbers from here up."""


def parse_sim_device(device: str) -> int | None:
    """Number of meters for ``sim`` / ``sim:N``; None for any other device."""
    if device != SIM_PREFIX and not device.startswith(SIM_PREFIX + ":"):
        return None
    count_text = device[len(SIM_PREFIX) + 1:] if device != SIM_PREFIX else "1"
    allowed = f"sim or sim:N with 1 <= N <= {MAX_SIM_METERS}"
    try:
        count = int(count_text)
    except ValueError:
        raise ConfigError(f"--device {device!r}: {count_text!r} is not a number (allowed: {allowed})") from None
    if not 1 <= count <= MAX_SIM_METERS:
        raise ConfigError(f"--device {device!r}: {count} meters (allowed: {allowed})")
    return count


def sim_population(count: int, *, seed: int, baud: int,
                   profile: MeterProfile | None = None) -> list[MeterProfile]:
    """``count`` meter profiles at addresses 1..count with distinct random IDs and
    fabrication numbers (seeded), listening at ``baud`` where their profile supports it and
    at the profile's own rate otherwise (a meter never gains a rate its profile lacks)."""
    base = sim_base_profile(profile)
    rate = baud if baud in base.bauds else base.baud
    rng = random.Random(seed)
    ids = rng.sample(range(FIRST_SIM_ID, 100_000_000), count)
    fabrication = rng.sample(range(FIRST_SIM_ID, 100_000_000), count)
    return [dataclasses.replace(base, id=ids[i], address=i + 1, baud=rate,
                                fabrication_number=fabrication[i], name=f"meter{i + 1}")
            for i in range(count)]


def sim_base_profile(profile: MeterProfile | None) -> MeterProfile:
    """The profile of ``sim`` meters: ``--profile``'s, else the built-in heat meter."""
    from protocol.meter import heat_meter_profile

    return profile if profile is not None else heat_meter_profile()


class BusSession:
    """The master instrument on an open bus, plus what the tools need around it."""

    def __init__(self, *, device: str, master: Any, clock: Clock, port: Any, trace: Any,
                 retries: int, closers: Sequence[Callable[[], None]] = (),
                 sim: Any = None, meters: Sequence[Any] = ()) -> None:
        self.device = device
        self.master = master
        self.clock = clock
        self.port = port
        self.trace = trace
        self.retries = retries
        self.sim = sim
        self.meters = list(meters)
        self._closers = list(closers)

    @property
    def baud(self) -> int:
        return int(self.port.baud)

    def set_baud(self, baud: int) -> None:
        self.master.set_baud(baud)

    def call(self, target: str, request: Callable[[Any], T]) -> T:
        """Run ``request(master)``; a failure becomes one line naming ``target`` and the baud."""
        try:
            return request(self.master)
        except (LinkError, FrameError) as exc:
            exchange = exchange_of(exc)
            late = (self.master.late_answer(exchange)
                    if isinstance(exc, NoAnswerError) and exchange is not None else None)
            raise link_error(exc, target=target, baud=self.baud,
                             attempts=self.retries + 1, late=late) from exc

    def answers(self, address: int) -> bool:
        """Does anything answer SND_NKE at ``address`` (an E5, or a garbled reply)?"""
        from protocol.errors import NoAnswerError

        try:
            self.master.snd_nke(address)
        except NoAnswerError:
            return False
        except (LinkError, FrameError):
            return True
        return True

    def mask_of(self, text: str) -> Any:
        """The link layer's SelectionMask for a 16-digit mask or secondary address."""
        import protocol.link as link

        selection_mask: Any = link.SelectionMask
        parse = getattr(selection_mask, "parse", None)
        return parse(text) if parse is not None else selection_mask(text)

    def resolve(self, args: argparse.Namespace) -> int:
        """The address to talk to: ``--address``, or 253 after selecting ``--secondary``."""
        if getattr(args, "secondary", None) is None:
            return int(args.address)
        text = str(args.secondary)
        self.call(f"secondary {text}", lambda m: m.select(self.mask_of(text)))
        return ADDRESS_SELECTED

    def search_secondary(self, mask: str, progress: Callable[[Any], None] | None = None) -> Any:
        """The secondary search under ``mask``; ``progress`` gets the result so far after
        every probe."""
        return self.call(f"mask {mask}", lambda m: m.search_secondary(self.mask_of(mask),
                                                                      progress=progress))

    @staticmethod
    def delay_ms(exchange: Any) -> float | None:
        """Response delay of an exchange (end of request to first answer char), in ms."""
        inner = getattr(exchange, "exchange", exchange)
        delay = getattr(inner, "response_delay", None)
        return None if delay is None else float(delay) * 1000.0

    def print_trace(self, stream: Any = None) -> None:
        if self.trace is None:
            return
        out = stream if stream is not None else sys.stderr
        out.write(self.trace.to_table() + "\n")

    def close(self) -> None:
        while self._closers:
            closer = self._closers.pop()
            closer()


def target_name(args: argparse.Namespace) -> str:
    secondary = getattr(args, "secondary", None)
    if secondary is not None and not isinstance(secondary, bool):
        return f"secondary {secondary}"
    return f"address {args.address}"


def identity_of_secondary(secondary: SecondaryAddress) -> dict[str, Any]:
    return {"secondary": str(secondary), "id": f"{secondary.id:08d}",
            "manufacturer": manufacturer_letters(secondary.manufacturer),
            "version": secondary.version, "medium": medium_name(secondary.medium)}


def identity_row(reply: Any) -> dict[str, Any]:
    """Who answered a REQ_UD2: secondary address, names, and the A field of the answer."""
    telegram = getattr(reply, "telegram", None)
    header = getattr(telegram, "header", None)
    frame = getattr(reply, "frame", None) or getattr(getattr(reply, "exchange", None), "frame", None)
    row: dict[str, Any] = {"address": getattr(frame, "a", None)}
    if header is not None and hasattr(header, "manufacturer"):
        secondary = SecondaryAddress(header.id, header.manufacturer, header.version, header.medium)
        row.update(identity_of_secondary(secondary))
        row["access_number"] = getattr(header, "access_number", None)
        row["status"] = getattr(header, "status", None)
    else:
        row.update({"secondary": "", "id": "", "manufacturer": "", "version": "", "medium": ""})
    return row


# --- opening -------------------------------------------------------------------------------


def _trace_class() -> Any:
    from hardware.trace import Trace

    return Trace


def open_serial(device: str, *, baud: int, retries: int, timeout: float | None, echo: bool,
                verbose: bool, read_latency: float | None = None) -> BusSession:
    """A real port (or pyserial URL); ``read_latency`` None: the port's default
    (hardware.serial_port.default_read_latency: network ports deliver late)."""
    from hardware.serial_port import SerialBusPort, default_read_latency

    clock = WallClock()
    port = SerialBusPort(device, clock, baud=baud, echo=echo)
    trace = _trace_class()() if verbose else None
    latency = default_read_latency(device) if read_latency is None else read_latency
    master = _master(port, clock, retries=retries, echo=echo, trace=trace, timeout=timeout,
                     read_latency=latency)
    return BusSession(device=device, master=master, clock=clock, port=port, trace=trace,
                      retries=retries, closers=[port.close])


def _master(port: Any, clock: Clock, *, retries: int, echo: bool, trace: Any,
            timeout: float | None, read_latency: float = 0.0) -> Any:
    from rig.master import Master

    del echo  # the port drops the master's echo (hardware.serial_port)
    master = Master(port, clock, retries=retries, trace=trace, read_latency=read_latency)
    if timeout is not None:
        _set_timeout(master, timeout)
    return master


def _set_timeout(master: Any, timeout: float) -> None:
    link = master.link
    if hasattr(link, "response_timeout"):
        link.response_timeout = timeout
        return
    raise ConfigError("--timeout: the link layer cannot change its response window yet "
                      "(it waits 330 bit times + 50 ms, the standard's window)")


_sim_numbers = itertools.count(1)


def open_sim(profiles: Sequence[MeterProfile], *, device: str = "sim", baud: int, seed: int,
             retries: int, timeout: float | None = None, echo: bool = False,
             verbose: bool = False) -> BusSession:
    """An in-process simulated bus on virtual time, one emulated meter per profile.

    The master talks through ``SerialBusPort`` over ``mbussim://NAME``, the same code path as
    on a real port. ``session.meters`` holds the ``SimMeter`` objects (to arm faults).
    """
    from hardware.serial_port import SerialBusPort
    from hardware.sim import SimBus, Simulation, VirtualClock
    from hardware.sim.meter import SimMeter
    from hardware.sim.registry import unregister
    from protocol.meter import MeterCore

    sim = Simulation(seed)
    clock = VirtualClock(sim)
    name = f"mbus-rig-tools-{os.getpid()}-{next(_sim_numbers)}"
    trace = _trace_class()() if verbose else None
    bus = SimBus(sim, master_baud=baud, echo=echo, name=name,
                 trace=trace if trace is not None else False)
    meters = [SimMeter.on_bus(bus, MeterCore(profile), name=profile.name) for profile in profiles]
    port = SerialBusPort(f"mbussim://{name}", clock, baud=baud, echo=echo)
    master = _master(port, clock, retries=retries, echo=echo, trace=None, timeout=timeout)
    return BusSession(device=device, master=master, clock=clock, port=port, trace=trace,
                      retries=retries, closers=[lambda: unregister(name), port.close],
                      sim=bus, meters=meters)


def load_profile_arg(spec: str | None) -> MeterProfile | None:
    """``--profile``: a profile file or a shipped profile's name, resolved as
    ``virtual-meter`` and rig files resolve it (hardware.profile.read_profile)."""
    if spec is None:
        return None
    from hardware.profile import read_profile

    return read_profile(spec, "--profile")


InProcessBus = Callable[[argparse.Namespace], BusSession]

IN_PROCESS: dict[str, InProcessBus] = {}
"""Buses this process provides by device name: the master suite runs the tools as its
emulated master on the rig's simulated bus and virtual clock (rig/master_dut.py). The
factory gets the parsed arguments (baud, retries, timeout, echo) and returns the session."""


@contextmanager
def open_bus(args: argparse.Namespace) -> Iterator[BusSession]:
    """Open ``args.device`` with the common bus options; print the trace on --verbose."""
    count = parse_sim_device(args.device)
    factory = IN_PROCESS.get(args.device)
    if factory is not None:
        session = factory(args)
    elif count is None:
        if args.profile is not None:
            raise ConfigError("--profile applies to the simulated bus (--device sim or sim:N) only")
        session = open_serial(args.device, baud=args.baud, retries=args.retries,
                              timeout=args.timeout, echo=args.echo, verbose=args.verbose,
                              read_latency=getattr(args, "read_latency", None))
    else:
        profile = sim_base_profile(load_profile_arg(args.profile))
        if args.baud not in profile.bauds:
            from .output import note

            note(f"sim: profile {profile.name} does not support {args.baud} baud (it supports "
                 f"{', '.join(map(str, profile.bauds))}); its meters listen at "
                 f"{profile.baud} baud")
        profiles = sim_population(count, seed=args.seed, baud=args.baud, profile=profile)
        session = open_sim(profiles, device=args.device, baud=args.baud, seed=args.seed,
                           retries=args.retries, timeout=args.timeout, echo=args.echo,
                           verbose=args.verbose)
    try:
        yield session
    finally:
        try:
            if args.verbose:
                session.print_trace()
        finally:
            session.close()


# --- command boilerplate -------------------------------------------------------------------

Body = Callable[[BusSession, argparse.Namespace], int]


def run_on_bus(body: Body, args: argparse.Namespace) -> int:
    """Open the bus the arguments name, run ``body(bus, args)``, close it (trace on -v)."""
    with open_bus(args) as bus:
        return body(bus, args)


def add_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
                body: Body, *, help: str, description: str, examples: Sequence[str],
                target: bool = True, raw_description: bool = False) -> argparse.ArgumentParser:
    """A master-tool subcommand: --address/--secondary (``target``), --json, the bus options;
    its handler runs ``body`` on the open bus; ``examples`` (command lines) end its help.
    Returns the parser for the command's own options."""
    from rig.cli import HelpWithExamples, RawHelpWithExamples
    from rig.cli import examples as examples_epilog

    from . import options

    parser = subparsers.add_parser(
        name, help=help, description=description, epilog=examples_epilog(*examples),
        formatter_class=RawHelpWithExamples if raw_description else HelpWithExamples)
    if target:
        options.add_target_options(parser)
    options.add_json_option(parser)
    options.add_bus_options(parser)
    parser.set_defaults(handler=functools.partial(run_on_bus, body))
    return parser
