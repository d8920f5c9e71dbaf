"""Hold a farm place around a suite run: reserve, wait, acquire, resolve; at the end the safe
state first, then release (``mbus-rig run`` with a ``[labgrid]`` rig file).

Waiting is labgrid's reservation queue: the run says once, visibly, what it waits for and who
holds it, and gives up after ``[labgrid] acquire_timeout`` with one line. SIGTERM, SIGINT and
SIGHUP end the wait (the reservation is cancelled); once the place is held, every exit path
(the suite's end, an error, those signals) puts the fault lines in safe state through the
place's line server and then releases the place. The cleanup itself is not interrupted by
further signals. For the exit paths no handler sees (SIGKILL, a crash), the place's guardian
(:mod:`rig.farm.guardian`) does the same after the holder is gone.
"""

from __future__ import annotations

import functools
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from hardware.clock import WallClock
from hardware.config_file import read_toml
from protocol.errors import ConfigError, HardwareError, MBusRigError, RigTimeoutError

from ..config import RigConfig
from .guardian import Guardian, Watch
from .place import Coordinator, PlaceInfo, coordinator_address
from .resolve import agent_url, lines_url, master_port, resolved_rig, to_toml

#: How often the reservation is polled while waiting (labgrid-client polls every 1 s).
POLL_S = 0.5
#: Name of the resolved rig file written next to the reports.
RESOLVED_NAME = "farm-rig.toml"
#: Name of the guardian's log next to the reports (what it did after a holder died).
GUARDIAN_LOG = "farm-guardian.log"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class HeldPlace:
    """The place this run holds, the rig file resolved from it, and its guardian."""

    name: str
    rig_file: Path
    coordinator: str
    guardian: Guardian

    def run_started(self, pid: int) -> None:
        """The pytest run on the place: the guardian stops it first if this holder dies."""
        self.guardian.tell("run", pid)


def _no_run(pid: int) -> None:
    """A rig that is not a farm place has no guardian to tell."""


@dataclass(frozen=True, slots=True)
class SuiteRig:
    """What pytest runs on (``--rig``), and whom to tell its pid once it has started."""

    rig: str
    run_started: Callable[[int], None] = _no_run


def selector(cfg: RigConfig) -> tuple[dict[str, str], str]:
    """labgrid reservation filters for the rig file's place/tags, and how to say them."""
    assert cfg.labgrid is not None
    filters = dict(cfg.labgrid.tags)
    if cfg.labgrid.place:
        filters["name"] = cfg.labgrid.place
    shown = ", ".join(f"{k}={v}" for k, v in sorted(cfg.labgrid.tags.items()))
    if cfg.labgrid.place:
        what = f"place {cfg.labgrid.place}" + (f" ({shown})" if shown else "")
    else:
        what = f"a free place with {shown}"
    return filters, what


def _tags_of(filters: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(filters.items()))


def _tags(place: PlaceInfo) -> str:
    return _tags_of(dict(place.tags)) or "no tags"


def matching(places: list[PlaceInfo], filters: dict[str, str]) -> list[PlaceInfo]:
    """The places a reservation with ``filters`` can get (labgrid: ``name`` is the name)."""
    return [p for p in places
            if all((p.name if k == "name" else p.tags.get(k)) == v for k, v in filters.items())]


@contextmanager
def farm_rig(cfg: RigConfig, rig: str, report: Path, say: Say) -> Iterator[SuiteRig]:
    """The rig for pytest: ``rig`` itself, or for a ``[labgrid]`` rig file the resolved rig
    of the place held for the block."""
    if cfg.labgrid is None:
        yield SuiteRig(rig)
        return
    with hold_place(cfg, report, say) as held:
        yield SuiteRig(str(held.rig_file), held.run_started)


@contextmanager
def hold_place(cfg: RigConfig, report: Path, say: Say) -> Iterator[HeldPlace]:
    """Hold the place ``cfg`` names for the block; yields the place and the resolved rig."""
    lg = cfg.labgrid
    assert lg is not None, "not a farm rig file"
    with _signals_end_the_wait():
        coordinator = Coordinator(coordinator_address(lg.coordinator),
                                  connect_timeout=lg.connect_timeout, source=cfg.source)
        try:
            filters, what = selector(cfg)
            candidates = matching(coordinator.places(), filters)
            if not candidates:
                known = ", ".join(f"{p.name} ({_tags(p)})" for p in coordinator.places())
                raise ConfigError(f"{cfg.source}: [labgrid]: coordinator {coordinator.address} "
                                  f"has no place matching {_tags_of(filters)} "
                                  f"(places: {known or 'none'})")
            token_file = cfg.gpio.token_file
            guardian = Guardian(Watch(coordinator.address, lg.connect_timeout, coordinator.name,
                                      str(token_file) if token_file else None,
                                      str(report.resolve() / GUARDIAN_LOG)))
            try:
                token = _wait_for_allocation(coordinator, filters, what, lg.acquire_timeout, say,
                                             guardian)
                try:
                    place = _acquire(coordinator, token, what, guardian)
                    say(f"acquired labgrid place {place} (coordinator {coordinator.address}, "
                        f"holder {coordinator.name})")
                    with _released(coordinator, place, cfg, say) as lines:
                        rig_file = _resolve(coordinator, cfg, place, report, lines,
                                            lg.connect_timeout, guardian)
                        yield HeldPlace(place, rig_file, coordinator.address, guardian)
                finally:
                    _quietly(lambda: coordinator.cancel(token))
            finally:
                guardian.stand_down()  # last: a holder killed while cleaning up is covered
        finally:
            coordinator.close()


def _wait_for_allocation(coordinator: Coordinator, filters: dict[str, str], what: str,
                         timeout: float, say: Say, guardian: Guardian) -> str:
    clock = WallClock()
    deadline = clock.now() + timeout
    reservation = coordinator.reserve(filters)
    try:
        guardian.tell("reservation", reservation.token)
        announced = False
        while True:
            info = coordinator.poll(reservation.token)
            if info.state in ("allocated", "acquired") and info.place:
                return reservation.token
            if info.state in ("expired", "invalid"):
                raise HardwareError(f"labgrid reservation for {what} became {info.state}")
            held = [f"{p.name} by {p.acquired}" if p.acquired else f"{p.name} reserved"
                    for p in matching(coordinator.places(), filters)]
            holders = "; ".join(held) or "nothing matches now"
            if clock.now() >= deadline:
                raise RigTimeoutError(f"labgrid: {what} was not free within {timeout:g} s "
                                      f"(held: {holders}); gave up waiting")
            if not announced:
                say(f"waiting for {what}: held: {holders} (reservation {reservation.token}; "
                    f"giving up after {timeout:g} s)")
                announced = True
            clock.sleep(min(POLL_S, max(0.0, deadline - clock.now())))
    except BaseException:
        _quietly(lambda: coordinator.cancel(reservation.token))
        raise


def _acquire(coordinator: Coordinator, token: str, what: str, guardian: Guardian) -> str:
    info = coordinator.poll(token)
    if info.place is None:
        raise HardwareError(f"labgrid reservation for {what} lost its place ({info.state})")
    guardian.tell("place", info.place)  # before acquiring: a kill during the call is covered
    coordinator.acquire(info.place)
    return info.place


@contextmanager
def _released(coordinator: Coordinator, place: str, cfg: RigConfig,
              say: Say) -> Iterator[list[str]]:
    """Release ``place`` when the block ends, after the safe state of the line server whose
    URL the block appends to the yielded list."""
    lines: list[str] = []
    try:
        yield lines
    finally:
        with _signals_blocked():
            for url in lines:
                _quietly(functools.partial(_say_safe_state, url, cfg, say), say)
            _quietly(lambda: coordinator.release(place), say)
            say(f"released labgrid place {place}")


def _say_safe_state(url: str, cfg: RigConfig, say: Say) -> None:
    from ..agent.client import read_token_file
    from .lines import RemoteGpio

    assert cfg.gpio.token_file is not None
    say(f"line server {url}: {RemoteGpio(url, read_token_file(cfg.gpio.token_file)).safe_state()}")


def _resolve(coordinator: Coordinator, cfg: RigConfig, place: str, report: Path,
             lines: list[str], timeout: float, guardian: Guardian) -> Path:
    """Wait (bounded) until the place's serial port is served, then write the resolved rig."""
    clock = WallClock()
    deadline = clock.now() + timeout
    while True:
        resources = coordinator.resources(place)
        port = master_port(resources, place)
        if port is not None:
            break
        if clock.now() >= deadline:
            raise HardwareError(f"labgrid place {place}: its serial port was not served within "
                                f"{timeout:g} s of acquiring it (is ser2net installed on the "
                                "exporter?)")
        clock.sleep(0.1)
    url = lines_url(resources, place)
    specs: list[dict[str, object]] = []
    if url is not None:
        if cfg.gpio.token_file is None:
            raise ConfigError(f"{cfg.source}: gpio.token_file: missing (place {place} has a "
                              f"line server, {url}: give its token file)")
        lines.append(url)
        guardian.tell("lines", url)
        from ..agent.client import read_token_file
        from .lines import RemoteGpio

        specs = RemoteGpio(url, read_token_file(cfg.gpio.token_file)).lines()
    agents = {d.name: agent_url(resources, d.name, place) for d in cfg.duts if d.kind == "agent"}
    source = Path(cfg.source)
    data = resolved_rig(read_toml(source, "rig file"), base=source.resolve().parent,
                        source=cfg.source, place=place, port=port, lines=url,
                        line_specs=specs, agents=agents)
    path = report / RESOLVED_NAME
    path.write_text(f"# {cfg.source} resolved for labgrid place {place} "
                    f"(coordinator {coordinator.address})\n" + to_toml(data), encoding="utf-8")
    return path


def _quietly(action: Callable[[], object], say: Say | None = None) -> None:
    """Cleanup goes on after a failing step; the failure is said, not raised."""
    try:
        action()
    except MBusRigError as exc:
        if say is not None:
            say(f"warning: {exc}")


class _Stopped(SystemExit):
    """A stop signal while waiting for or holding a place (exit status 128 + signal)."""


@contextmanager
def _signals_end_the_wait() -> Iterator[None]:
    def stop(signum: int, _frame: FrameType | None) -> None:
        raise _Stopped(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _signals_blocked() -> Iterator[None]:
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
