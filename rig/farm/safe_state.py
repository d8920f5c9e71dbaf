"""``mbus-rig safe-state`` for a farm rig file: a place's fault lines released without holding
the place (docs/farm.md).

The place's resources are read from the coordinator as its matches name them, without
acquiring it (the holder may be the run that died, and acquiring a free place could take it
from a waiting reservation); its line server (``MBusFaultLines``) releases every line and its
agents (``MBusAgent``) disarm their faults. Which places: ``--place``, else the rig file's
``[labgrid] place``, else the places matching its tags that this client holds (a CI job that
sets ``LG_USERNAME`` finds the place its run held). A place this client holds (its run died
before releasing) is released once its lines are safe; one held by someone else keeps its
holder, who is named.
"""

from __future__ import annotations

from collections.abc import Callable

from protocol.errors import ConfigError, HardwareError, MBusRigError

from ..config import RigConfig
from .place import Coordinator, PlaceInfo, coordinator_address
from .resolve import agent_url, lines_url

#: How long the agents and line servers get to answer.
HTTP_TIMEOUT_S = 3.0


def places_to_release(coordinator: Coordinator, cfg: RigConfig,
                      place: str | None) -> list[PlaceInfo]:
    """``place``, else the rig file's place, else its tags' places held by this client."""
    assert cfg.labgrid is not None
    name = place or cfg.labgrid.place
    if name:
        return [coordinator.place(name)]
    tags = dict(cfg.labgrid.tags)
    return [p for p in coordinator.places() if p.acquired == coordinator.name
            and all(p.tags.get(k) == v for k, v in tags.items())]


def farm_safe_state(cfg: RigConfig, place: str | None,
                    disarm: Callable[[str, str, str], str]) -> str:
    """Release the fault lines (and disarm the agents: ``disarm(dut, url, token_file)``) of
    the places :func:`places_to_release` names; a report, one line per step. Raises
    HardwareError when a line server could not release its lines."""
    lg = cfg.labgrid
    assert lg is not None, "not a farm rig file"
    with Coordinator(coordinator_address(lg.coordinator), connect_timeout=lg.connect_timeout,
                     source=cfg.source) as coordinator:
        places = places_to_release(coordinator, cfg, place)
        if not places:
            shown = ", ".join(f"{k}={v}" for k, v in sorted(lg.tags.items()))
            return (f"no place with {shown} is held by {coordinator.name}: nothing to release "
                    f"(--place NAME names one)")
        notes: list[str] = []
        failures: list[str] = []
        for info in places:
            _one_place(coordinator, cfg, info, notes, failures, disarm)
    if failures:
        raise HardwareError("; ".join(notes + failures))
    return "\n".join(notes)


def _one_place(coordinator: Coordinator, cfg: RigConfig, info: PlaceInfo, notes: list[str],
               failures: list[str], disarm: Callable[[str, str, str], str]) -> None:
    from ..agent.client import read_token_file
    from .lines import RemoteGpio

    name = info.name
    resources = coordinator.resources(name, acquired=False)
    url = lines_url(resources, name)
    if url is None:
        notes.append(f"place {name}: no fault lines (no MBusFaultLines resource)")
    else:
        if cfg.gpio.token_file is None:
            raise ConfigError(f"{cfg.source}: gpio.token_file: missing (place {name} has a "
                              f"line server, {url}: give its token file)")
        try:
            gpio = RemoteGpio(url, read_token_file(cfg.gpio.token_file), timeout=HTTP_TIMEOUT_S)
            notes.append(f"place {name}: line server {url}: {gpio.safe_state()}")
        except MBusRigError as exc:
            failures.append(f"place {name}: line server {url}: {exc}")
    for dut in cfg.duts:
        if dut.kind == "agent" and dut.token_file is not None:
            notes.append(f"place {name}: "
                         f"{disarm(dut.name, agent_url(resources, dut.name, name), str(dut.token_file))}")
    if info.acquired == coordinator.name:
        if failures:
            notes.append(f"place {name}: kept (held by {info.acquired}): its lines are not safe")
        else:
            coordinator.release(name)
            notes.append(f"place {name}: released (held by {info.acquired}, this client)")
    elif info.acquired:
        notes.append(f"place {name}: held by {info.acquired}: its lines released anyway, the "
                     "place left to its holder")
