"""The rig file (TOML): master port, bus, DUTs, GPIO fault lines -- parsed and validated.

Everything is checked here, before anything touches hardware: a wrong file raises
:class:`ConfigError` naming the file, the key and what is allowed. The built-in simulated rig
(``--rig sim``) needs no file: :func:`builtin_sim_config`.

Schema (see ``rig/examples/*.toml`` and docs/rig-files.md, which lists every key)::

    name = "bench"                      # optional, shown in reports
    [master]  port = "/dev/ttyAMA0" | "mbussim://NAME" | "socket://host:port"
              baud = 2400  echo = false  retries = 2  read_latency = 0.0 (socket://, rfc2217://: 0.2)
    [bus]     kind = "sim" | "real"   seed = 1
    [bus.sim] noise_rate = 0.0 ...      # simulated-bus parameters (sim only)
    [gpio]    backend = "sim" | "rpi" | "auto"
    [[gpio.lines]] role = "bus_power_cut"  pin = 17  active_high = true  name = "..."
    [[dut]]   name kind address secondary baud features profile command url token_file defects
    [report]  standard_url = "file:///.../EN{part}.pdf#page={page}"   # your copy of the standard
    [report.pages] "EN 13757-2 link layer, timing" = 21             # clause -> page ({page})
    [labgrid] place = "mbus-1"  tags = {dut = "..."}  coordinator = "host:port"
              connect_timeout = 10  acquire_timeout = 3600   # a rig pair of a farm (rig/farm/)
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from hardware.config_file import read_toml
from hardware.lines import pin_advice
from hardware.serial_port import default_read_latency
from hardware.sim.serial_port import SCHEME as SIM_SCHEME
from protocol.errors import ConfigError
from protocol.fields import PRIMARY_MAX
from protocol.identity import SecondaryAddress
from protocol.link.master import DEFAULT_RETRIES, MAX_READ_LATENCY, MAX_RETRIES
from protocol.timing import BAUD_RATES, DEFAULT_BAUD

from .master_config import MASTER_CAPABILITIES, ROLES, MasterSettings, master_capabilities
from .standard_link import template_problem

Mode = Literal["sim", "loopback", "hardware"]
DutKind = Literal["emulated", "program", "black-box", "agent"]

DUT_KINDS: tuple[str, ...] = ("emulated", "program", "black-box", "agent")
BUS_KINDS: tuple[str, ...] = ("sim", "real")
GPIO_BACKENDS: tuple[str, ...] = ("sim", "rpi", "auto", "remote")

#: Capabilities a DUT can claim (docs/architecture.md "Capability names").
PROTOCOL_CAPABILITIES: tuple[str, ...] = (
    "primary", "secondary", "enhanced_selection", "wildcard_selection", "set_address",
    "baud_switch", "reset", "multi_telegram", "req_ud1", "fcb",
)
#: Capabilities the rig provides: DUT control and the physical fault lines.
RIG_CAPABILITIES: tuple[str, ...] = (
    "control", "power_fault", "disconnect", "short", "collision_injector", "noise", "multi_slave",
    "parity",
)
CAPABILITIES: tuple[str, ...] = PROTOCOL_CAPABILITIES + RIG_CAPABILITIES + MASTER_CAPABILITIES

#: Fault-line roles (hardware/lines.py) and the capability each gives the rig.
LINE_ROLES: dict[str, str | None] = {
    "bus_power_cut": "power_fault",
    "slave_disconnect": "disconnect",
    "bus_short": "short",
    "collision": "collision_injector",
    "noise": "noise",
    "slave_power_fail": None,  # an input: the TSS721A PF line
}

#: Simulated-bus parameters a rig file may set in ``[bus.sim]`` (all numbers >= 0).
SIM_PARAMETERS: dict[str, str] = {
    "noise_rate": "bit-flip probability per sampled bit while the noise line is asserted (0..1)",
    "collision_window": "how long the collision sink holds space once asserted, seconds "
                        "(default: until released)",
    "hold_up": "how long a slave runs on after bus power is lost, seconds",
    "power_up": "how long a slave needs once bus power returns, seconds",
}

SIM_URL_SCHEME = f"{SIM_SCHEME}://"
#: Master ports reached over a network: the character's parity bit cannot be set per byte
#: there (RFC 2217 changes the remote UART's settings asynchronously; raw TCP has none).
NETWORK_PORT_SCHEMES: tuple[str, ...] = ("rfc2217://", "socket://")
#: Limits of the ``[labgrid]`` timeouts, seconds.
LABGRID_TIMEOUT_MAX = 7 * 24 * 3600.0

#: The keys each table of a rig file takes (docs/rig-files.md documents every one).
TOP_KEYS: tuple[str, ...] = ("name", "master", "bus", "gpio", "dut", "report", "labgrid")
MASTER_KEYS: tuple[str, ...] = ("port", "baud", "echo", "retries", "read_latency")
BUS_KEYS: tuple[str, ...] = ("kind", "seed", "sim")
GPIO_KEYS: tuple[str, ...] = ("backend", "lines", "url", "token_file")
LINE_KEYS: tuple[str, ...] = ("role", "pin", "active_high", "name")
REPORT_KEYS: tuple[str, ...] = ("standard_url", "pages")
LABGRID_KEYS: tuple[str, ...] = ("place", "tags", "coordinator", "connect_timeout",
                                 "acquire_timeout")
NO_MASTER_PORT = "(none: the DUT is the master)"


@dataclass(frozen=True, slots=True)
class MasterConfig:
    port: str
    baud: int = DEFAULT_BAUD
    echo: bool = False
    retries: int = DEFAULT_RETRIES
    read_latency: float = 0.0  # s; USB-serial masters and TCP gateways deliver characters late


@dataclass(frozen=True, slots=True)
class BusConfig:
    kind: Literal["sim", "real"] = "sim"
    seed: int = 1
    sim: Mapping[str, float] = field(default_factory=dict)

    @property
    def simulated(self) -> bool:
        return self.kind == "sim"


@dataclass(frozen=True, slots=True)
class LineConfig:
    role: str
    pin: int
    active_high: bool = True
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.role


@dataclass(frozen=True, slots=True)
class GpioConfig:
    backend: str = "sim"
    lines: tuple[LineConfig, ...] = ()
    url: str | None = None  # backend "remote": the rig pair's line server (rig/farm/lines.py)
    token_file: Path | None = None  # backend "remote": its bearer token


@dataclass(frozen=True, slots=True)
class LabgridConfig:
    """``[labgrid]``: the rig is a place of a labgrid farm (docs/farm.md).

    ``mbus-rig run`` reserves a place matching ``place`` (its name) and ``tags``, acquires
    it and resolves the master port, fault lines and agent URL from its resources."""

    place: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    coordinator: str | None = None  # None: $LG_COORDINATOR, else labgrid's default
    connect_timeout: float = 10.0
    acquire_timeout: float = 3600.0


@dataclass(frozen=True, slots=True)
class DutConfig:
    """One device under test as the rig file describes it."""

    name: str
    kind: DutKind
    address: int | None = None  # None: the profile's (emulated), else 0 (unconfigured)
    secondary: SecondaryAddress | None = None
    baud: int = DEFAULT_BAUD
    bauds: tuple[int, ...] | None = None  # declared (or the profile's); None: unknown
    features: frozenset[str] = frozenset()
    profile: str | None = None  # profile file (relative to the rig file), a shipped name, None
    fabrication: int | None = None  # fabrication number (enhanced selection)
    sends_fabrication: bool = False  # its RSP_UD carries the fabrication number (VIF 78)
    command: tuple[str, ...] = ()  # program (and local agent): argv template with {tty}
    env: tuple[tuple[str, str], ...] = ()  # program: environment variables added
    cwd: Path | None = None  # program: working directory (default: the rig file's folder)
    url: str | None = None  # agent
    token_file: Path | None = None  # agent
    defects: frozenset[str] = frozenset()  # emulated: named defects switched on
    meter_profile: Any = field(default=None, compare=False, repr=False)
    """The loaded profile: an emulated DUT's meter; for other kinds what it is known to send."""
    role: str = "slave"  # "master": the DUT is a master (rig/master_config.py)
    master: MasterSettings | None = None  # role "master": commands, output, retries ...

    @property
    def supported_bauds(self) -> tuple[int, ...]:
        """The rates the DUT supports: declared (``bauds``) or its profile's; else its one
        rate (the baud scenarios then skip: the other rates are not known)."""
        return self.bauds or tuple(getattr(self.meter_profile, "bauds", None) or (self.baud,))

    @property
    def is_master(self) -> bool:
        return self.role == "master"

    @property
    def needs_tty(self) -> bool:
        """An outside program joins the simulated bus through a pty ({tty} in its command;
        a master program through {tty} or {tcp}): the bus then runs in real time."""
        return bool(self.command) or (self.master is not None and self.kind == "program")


@dataclass(frozen=True, slots=True)
class ReportConfig:
    """``[report]``: where clause links point (rig/standard_link.py)."""

    standard_url: str | None = None  # a link template, None: clauses are not linked
    pages: Mapping[str, int] = field(default_factory=dict)  # clause reference -> page


@dataclass(frozen=True, slots=True)
class RigConfig:
    name: str
    source: str  # the file, or "<built-in sim>"
    master: MasterConfig
    bus: BusConfig
    gpio: GpioConfig
    duts: tuple[DutConfig, ...]
    report: ReportConfig = ReportConfig()
    labgrid: LabgridConfig | None = None  # a farm rig file, not yet resolved (rig/farm/)

    @property
    def mode(self) -> Mode:
        """"sim": all in software; "loopback": simulated bus joined by an outside program
        through a pty; "hardware": a real bus."""
        if not self.bus.simulated:
            return "hardware"
        return "loopback" if any(d.needs_tty for d in self.duts) else "sim"

    def require_resolved(self) -> RigConfig:
        """This config, unless it is a farm rig file not yet resolved for a place: that is a
        ConfigError saying how to run it (only ``mbus-rig run``, which holds the place, and
        ``mbus-rig safe-state`` take one)."""
        if self.labgrid is not None:
            raise ConfigError(f"{self.source}: [labgrid]: this rig is a farm place; run it with "
                              "`mbus-rig run --rig FILE` (it acquires the place, resolves its "
                              "resources into DIR/farm-rig.toml and checks that rig)")
        return self

    def dut(self, name: str | None) -> DutConfig:
        """The DUT called ``name`` (when None: the master of a master rig, else the first)."""
        if not self.duts:
            raise ConfigError(f"{self.source}: no [[dut]] in the rig file")
        if name is None:  # a master rig tests its master; its other DUTs are the meters
            return next((d for d in self.duts if d.is_master), self.duts[0])
        for dut in self.duts:
            if dut.name == name:
                return dut
        names = ", ".join(d.name for d in self.duts)
        raise ConfigError(f"{self.source}: no DUT named {name!r} (the rig has: {names})")

    @property
    def line_capabilities(self) -> frozenset[str]:
        caps = {LINE_ROLES[line.role] for line in self.gpio.lines}
        return frozenset(c for c in caps if c is not None)

    def capabilities(self, dut: DutConfig) -> frozenset[str]:
        """What a scenario can rely on with ``dut``: its claimed features, the fault lines,
        DUT control (emulated and agent DUTs), parity on its wire (not through a pty), and
        more slaves (the simulated bus can add
        them; on a real bus only when the rig file lists several DUTs)."""
        caps = set(dut.features) | self.line_capabilities
        if dut.is_master:
            caps |= master_capabilities(dut)
        if dut.needs_tty:
            # A pseudo-terminal carries neither the parity bit nor bus power: a DUT joined
            # through one cannot see a parity error, nor lose its supply with the bus.
            caps.discard("power_fault")
        elif not self.master.port.startswith(NETWORK_PORT_SCHEMES):
            caps.add("parity")
        if dut.kind in ("emulated", "agent") and not dut.is_master:
            caps.add("control")
        if self.bus.simulated or len(self.duts) > 1:
            caps.add("multi_slave")
        return frozenset(caps)

    def with_overrides(self, *, seed: int | None = None, baud: int | None = None,
                       defects: frozenset[str] | None = None) -> RigConfig:
        """A copy with the command-line overrides (--seed, --baud, --defect) applied."""
        cfg = self
        if seed is not None:
            cfg = replace(cfg, bus=replace(cfg.bus, seed=seed))
        if baud is not None:
            cfg = replace(cfg, master=replace(cfg.master, baud=baud),
                          duts=tuple(replace(d, baud=baud) for d in cfg.duts))
        if defects:
            cfg = replace(cfg, duts=tuple(
                replace(d, defects=d.defects | defects) if d.kind == "emulated" else d
                for d in cfg.duts))
        return cfg


# --- the built-in simulated rig -------------------------------------------------------------

#: GPIO lines of the built-in simulated rig: every fault role, on BCM 17-27 (docs/mbus-facts.md: fault
#: lines on BCM 9-27, not 14/15/26, active high with pull-downs).
SIM_LINES: tuple[LineConfig, ...] = (
    LineConfig("bus_power_cut", 17, True, "bus power cut"),
    LineConfig("slave_disconnect", 27, True, "slave disconnect"),
    LineConfig("bus_short", 22, True, "bus short"),
    LineConfig("collision", 23, True, "collision sink"),
    LineConfig("noise", 24, True, "noise"),
)

#: The emulated DUT of the built-in simulated rig (the built-in heat meter profile).
SIM_DUT_ADDRESS = 5


#: What the project's slave engine always does (docs/architecture.md capability names).
ENGINE_CAPABILITIES = frozenset({"primary", "secondary", "wildcard_selection", "set_address",
                                 "reset", "fcb", "req_ud1"})


def profile_capabilities(profile: Any) -> frozenset[str]:
    """What an emulated DUT with ``profile`` supports: the engine's capabilities, plus
    enhanced selection (a fabrication number), baud switch (more than one rate) and
    multi-telegram readout (more than one page)."""
    caps = set(ENGINE_CAPABILITIES)
    if profile.fabrication_number is not None:
        caps.add("enhanced_selection")
    if len(profile.bauds) > 1:
        caps.add("baud_switch")
    if len(profile.pages) > 1:
        caps.add("multi_telegram")
    return frozenset(caps)


def builtin_sim_config(seed: int = 1, baud: int = DEFAULT_BAUD) -> RigConfig:
    """The simulated rig ``--rig sim`` uses: one emulated heat meter, every fault line."""
    from hardware.profile import read_profile  # lazily: protocol.meter is a large import

    profile = read_profile(None)
    return RigConfig(
        name="sim",
        source="<built-in sim>",
        master=MasterConfig(port=SIM_URL_SCHEME + "sim", baud=baud),
        bus=BusConfig(kind="sim", seed=seed),
        gpio=GpioConfig(backend="sim", lines=SIM_LINES),
        duts=(DutConfig(name="meter", kind="emulated", address=SIM_DUT_ADDRESS, baud=baud,
                        bauds=profile.bauds, features=profile_capabilities(profile),
                        fabrication=profile.fabrication_number,
                        sends_fabrication=profile.sends_fabrication, meter_profile=profile),),
    )


# --- loading and validation -----------------------------------------------------------------


def load_config(spec: str | Path) -> RigConfig:
    """``"sim"`` -> the built-in simulated rig; otherwise parse and validate a TOML rig file."""
    if str(spec) == "sim":
        return builtin_sim_config()
    path = Path(spec)
    data = read_toml(path, "rig file", hint=" (give a TOML rig file or 'sim')")
    return config_from_dict(data, str(path), base=path.parent)


class _Table:
    """One TOML table being validated: typed getters that name file and key on error."""

    def __init__(self, data: Any, source: str, where: str, allowed: tuple[str, ...]) -> None:
        self.source, self.where = source, where
        if not isinstance(data, dict):
            self.fail("", f"must be a table, not {_kind(data)}")
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            self.fail(unknown[0], f"unknown key (allowed: {', '.join(allowed)})")
        self.data: dict[str, Any] = data

    def fail(self, key: str, problem: str) -> None:
        name = f"{self.where}.{key}" if self.where and key else (self.where or key)
        raise ConfigError(f"{self.source}: {name}: {problem}")

    def get(self, key: str, typ: type | tuple[type, ...], default: Any = None,
            *, required: bool = False) -> Any:
        if key not in self.data:
            if required:
                self.fail(key, "missing (required)")
            return default
        value = self.data[key]
        types = typ if isinstance(typ, tuple) else (typ,)
        if isinstance(value, bool) and bool not in types:
            self.fail(key, f"must be {_names(types)}, not a boolean")
        if not isinstance(value, types):
            self.fail(key, f"must be {_names(types)}, not {_kind(value)}")
        return value

    def choice(self, key: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.get(key, str, default)
        if value not in allowed:
            self.fail(key, f"{value!r} is not allowed (allowed: {', '.join(allowed)})")
        return str(value)

    def baud(self, key: str, default: int) -> int:
        value = int(self.get(key, int, default))
        if value not in BAUD_RATES:
            self.fail(key, f"{value} is not an M-Bus baud rate "
                           f"(allowed: {', '.join(map(str, BAUD_RATES))})")
        return value

    def int_range(self, key: str, default: int, low: int, high: int) -> int:
        return int(self._in_range(key, int(self.get(key, int, default)), low, high))

    def number_range(self, key: str, default: float, low: float, high: float) -> float:
        return self._in_range(key, float(self.get(key, (int, float), default)), low, high)

    def _in_range(self, key: str, value: float, low: float, high: float) -> float:
        if not low <= value <= high:
            shown = int(value) if value == int(value) else value
            self.fail(key, f"{shown} is out of range (allowed: {low}..{high})")
        return value


def _kind(value: Any) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def _names(types: tuple[type, ...]) -> str:
    return " or ".join(_kind(t()) if t in (dict, list, str, bool, int, float) else t.__name__
                       for t in types)


def config_from_dict(data: Mapping[str, Any], source: str, *, base: Path | None = None) -> RigConfig:
    """Validate a parsed rig file; relative paths (profiles, token files) resolve against
    ``base`` (the rig file's folder)."""
    top = _Table(dict(data), source, "", TOP_KEYS)
    base = base or Path.cwd()
    labgrid = (_labgrid(_Table(top.get("labgrid", dict), source, "labgrid", LABGRID_KEYS))
               if "labgrid" in top.data else None)
    bus = _bus(_Table(top.get("bus", dict, {}), source, "bus", BUS_KEYS), farm=labgrid is not None)
    raw_duts = top.data.get("dut")
    master_dut = isinstance(raw_duts, list) and any(
        isinstance(d, dict) and d.get("role") == "master" for d in raw_duts)
    master = _master(top.get("master", dict, {}), source, bus, farm=labgrid is not None,
                     port_required=not master_dut)
    gpio = _gpio(_Table(top.get("gpio", dict, {}), source, "gpio", GPIO_KEYS), bus, base,
                 farm=labgrid is not None)
    dut_tables = top.get("dut", list, [])
    duts: list[DutConfig] = []
    for index, raw in enumerate(dut_tables):
        dut = _dut(raw, source, f"dut[{index}]", base, bus, farm=labgrid is not None)
        if any(d.name == dut.name for d in duts):
            raise ConfigError(f"{source}: dut[{index}].name: {dut.name!r} is used twice")
        duts.append(dut)
    masters = [d for d in duts if d.is_master]
    if masters:
        from .master_config import check_master_rig

        check_master_rig(source, bus, duts)
    addresses = [d.address for d in duts if d.address]
    for address in addresses:
        if addresses.count(address) > 1:
            raise ConfigError(f"{source}: dut: two DUTs at primary address {address}")
    name = top.get("name", str, Path(source).stem)
    report = _report(_Table(top.get("report", dict, {}), source, "report", REPORT_KEYS))
    return RigConfig(name=name, source=source, master=master, bus=bus, gpio=gpio,
                     duts=tuple(duts), report=report, labgrid=labgrid)


def _report(t: _Table) -> ReportConfig:
    url = t.get("standard_url", str)
    if url is not None:
        problem = template_problem(url)
        if problem:
            t.fail("standard_url", problem)
    pages = t.get("pages", dict, {})
    for clause, page in pages.items():
        if isinstance(page, bool) or not isinstance(page, int) or page < 1:
            t.fail(f"pages.{clause!r}", f"must be a page number (1 or more), not {page!r}")
    return ReportConfig(url, dict(pages))


def _labgrid(t: _Table) -> LabgridConfig:
    """``[labgrid]``: which place (a name and/or tags), the coordinator and the timeouts."""
    place = t.get("place", str)
    if place is not None and not _NAME.match(place):
        t.fail("place", f"{place!r}: a place name is letters, digits, '_', '.', '-'")
    tags: dict[str, str] = {}
    for key, value in t.get("tags", dict, {}).items():
        if not _TAG_KEY.match(key):
            t.fail(f"tags.{key}", "a tag name is a lower-case letter, then letters, digits, '_'")
        if not isinstance(value, str) or not _TAG_VALUE.match(value):
            t.fail(f"tags.{key}", "a tag value is a string of lower-case letters, digits, "
                                  "'_', '.', '-'")
        tags[key] = value
    if place is None and not tags:
        t.fail("place", "missing: name a place, or give tags to take any free place with them")
    coordinator = t.get("coordinator", str)
    if coordinator is not None and not coordinator.strip():
        t.fail("coordinator", "is empty (HOST:PORT of labgrid-coordinator)")
    return LabgridConfig(
        place=place, tags=tags, coordinator=coordinator,
        connect_timeout=t.number_range("connect_timeout", 10.0, 0.1, LABGRID_TIMEOUT_MAX),
        acquire_timeout=t.number_range("acquire_timeout", 3600.0, 0.0, LABGRID_TIMEOUT_MAX))


def _bus(t: _Table, *, farm: bool = False) -> BusConfig:
    kind = t.choice("kind", BUS_KINDS, "real" if farm else "sim")
    if farm and kind == "sim":
        t.fail("kind", "a labgrid place is a real rig pair: use \"real\" (or leave it out)")
    seed = t.int_range("seed", 1, 0, 2**63 - 1)
    sim_raw = t.get("sim", dict, {})
    if sim_raw and kind != "sim":
        t.fail("sim", "simulated-bus parameters need bus.kind = \"sim\"")
    sim = _Table(sim_raw, t.source, "bus.sim", tuple(SIM_PARAMETERS))
    params: dict[str, float] = {}
    for key in sim.data:
        value = float(sim.get(key, (int, float)))
        if value < 0:
            sim.fail(key, f"{value} is negative (must be >= 0: {SIM_PARAMETERS[key]})")
        if key == "noise_rate" and value > 1:
            sim.fail(key, f"{value} is not a probability (allowed: 0..1)")
        params[key] = value
    return BusConfig(kind=kind, seed=seed, sim=params)  # type: ignore[arg-type]


def _master(raw: Any, source: str, bus: BusConfig, *, farm: bool = False,
            port_required: bool = True) -> MasterConfig:
    t = _Table(raw, source, "master", MASTER_KEYS)
    if farm and "port" in t.data:
        t.fail("port", "comes from the labgrid place (its NetworkSerialPort): leave it out")
    if not port_required and not bus.simulated and "port" not in t.data:
        # the DUT is the master: the rig has no master port of its own on this bus
        return MasterConfig(port=NO_MASTER_PORT, baud=t.baud("baud", DEFAULT_BAUD))
    default_port = SIM_URL_SCHEME + "sim" if bus.simulated else ("" if farm else None)
    port = t.get("port", str, default_port, required=default_port is None)
    if bus.simulated and not port.startswith(SIM_URL_SCHEME):
        t.fail("port", f"{port!r}: a simulated bus is reached through {SIM_URL_SCHEME}NAME "
                       "(or leave port out)")
    if not bus.simulated and port.startswith(SIM_URL_SCHEME):
        t.fail("port", f"{port!r} is the simulated bus, but bus.kind = \"real\"")
    if not port.strip() and not farm:
        t.fail("port", "is empty (a device such as /dev/ttyAMA0 or a pyserial URL)")
    return MasterConfig(port=port, baud=t.baud("baud", DEFAULT_BAUD),
                        echo=bool(t.get("echo", bool, False)),
                        retries=t.int_range("retries", DEFAULT_RETRIES, 0, MAX_RETRIES),
                        read_latency=t.number_range("read_latency", default_read_latency(port),
                                                    0.0, MAX_READ_LATENCY))


def _gpio(t: _Table, bus: BusConfig, base: Path | None = None, *,
          farm: bool = False) -> GpioConfig:
    backend = t.choice("backend", GPIO_BACKENDS,
                       "remote" if farm else "sim" if bus.simulated else "rpi")
    if farm and backend != "remote":
        t.fail("backend", "a labgrid place's fault lines are its line server's: use \"remote\"")
    if farm and t.get("lines", list, []):
        t.fail("lines", "come from the labgrid place's line server: leave them out")
    url = t.get("url", str)
    token_file = t.get("token_file", str)
    if backend == "remote":
        if url is None and not farm:
            t.fail("url", "missing (required for backend = \"remote\": http://HOST:PORT of "
                          "the rig pair's line server)")
        if url is not None and (farm or not url.startswith(("http://", "https://"))):
            t.fail("url", "comes from the labgrid place: leave it out" if farm
                   else f"{url!r} is not an http:// or https:// URL")
        if token_file is None and not farm:
            t.fail("token_file", "missing (required for backend = \"remote\": the line "
                                 "server's token)")
    elif url is not None or token_file is not None:
        t.fail("url" if url is not None else "token_file", "only for backend = \"remote\"")
    lines: list[LineConfig] = []
    for index, raw in enumerate(t.get("lines", list, [])):
        lt = _Table(raw, t.source, f"gpio.lines[{index}]", LINE_KEYS)
        lt.get("role", str, required=True)
        lt.get("pin", int, required=True)
        role = lt.choice("role", tuple(LINE_ROLES), "")
        pin = lt.int_range("pin", 0, 0, 27)
        try:
            pin_advice(pin, role)
        except ConfigError as exc:
            lt.fail("pin", str(exc))
        line = LineConfig(role=role, pin=pin, active_high=bool(lt.get("active_high", bool, True)),
                          name=lt.get("name", str, ""))
        for other in lines:
            if other.pin == line.pin:
                lt.fail("pin", f"GPIO {pin} is already used by {other.label}")
            if other.role == line.role:
                lt.fail("role", f"{role!r} appears twice")
        lines.append(line)
    if bus.simulated and backend in ("rpi", "remote"):
        t.fail("backend", f"\"{backend}\" drives real relays, but bus.kind = \"sim\" "
                          "(use \"sim\")")
    return GpioConfig(backend=backend, lines=tuple(lines), url=url,
                      token_file=(base or Path.cwd()) / token_file if token_file else None)


_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TAG_KEY = re.compile(r"^[a-z][a-z0-9_]*$")  # labgrid's tag keys (remote/common.py TAG_KEY)
_TAG_VALUE = re.compile(r"^[a-z0-9_.-]+$")

DUT_KEYS: tuple[str, ...] = (
    "name", "kind", "address", "secondary", "baud", "bauds", "features", "profile",
    "fabrication", "sends_fabrication", "command", "env", "cwd", "url", "token_file", "defects",
)
"""Keys of a ``[[dut]]`` table (docs/rig-files.md)."""


def _dut(raw: Any, source: str, where: str, base: Path, bus: BusConfig, *,
         farm: bool = False) -> DutConfig:
    if isinstance(raw, dict) and raw.get("role") == "master":
        from .master_config import master_dut

        return master_dut(raw, source, where, base, bus)
    t = _Table(raw, source, where, (*DUT_KEYS, "role"))
    name = t.get("name", str, required=True)
    if not _NAME.match(name):
        t.fail("name", f"{name!r}: use letters, digits, '_', '.', '-'")
    t.where = f"dut.{name}"
    t.choice("role", ROLES, "slave")
    kind = t.choice("kind", DUT_KINDS, "emulated")
    address = t.int_range("address", 0, 0, PRIMARY_MAX) if "address" in t.data else None
    secondary = _secondary(t)
    features = frozenset(_strings(t, "features"))
    for feature in sorted(features):
        if feature not in PROTOCOL_CAPABILITIES:
            t.fail("features", f"{feature!r} is not a DUT capability "
                               f"(allowed: {', '.join(PROTOCOL_CAPABILITIES)})")
    command = tuple(_strings(t, "command", split=True))
    if command and not any("{tty}" in arg for arg in command):
        t.fail("command", "must contain {tty} (the pty the program opens as its serial port)")
    if command and not bus.simulated:
        t.fail("command", "a program joins a simulated bus through a pty; bus.kind is \"real\"")
    env, cwd = _program_env(t, base, bool(command))
    url = t.get("url", str)
    token_file = t.get("token_file", str)
    profile = t.get("profile", str)
    defects = frozenset(_strings(t, "defects"))
    if kind == "emulated":
        if not bus.simulated:
            t.fail("kind", "an emulated DUT lives on the simulated bus; on a real bus use "
                           "\"agent\" (the slave-Pi) or \"black-box\"")
        for key in ("command", "url", "token_file"):
            if key in t.data:
                t.fail(key, "only for kind = \"program\" or \"agent\"")
    elif "defects" in t.data and kind != "agent":
        t.fail("defects", f"only for an emulated or agent DUT, not kind = {kind!r}")
    if kind == "program" and not command:
        t.fail("command", "missing (required for kind = \"program\": argv with {tty})")
    if kind == "black-box" and command:
        t.fail("command", "a black-box DUT is not started by the rig (use kind = \"program\")")
    if kind == "agent":
        if farm and url:
            t.fail("url", "comes from the labgrid place (its MBusAgent resource): leave it out")
        if not url and not farm:
            t.fail("url", "missing (required for kind = \"agent\": http://HOST:PORT)")
        if url and not url.startswith(("http://", "https://")):
            t.fail("url", f"{url!r} is not an http:// or https:// URL")
        if not token_file:
            t.fail("token_file", "missing (required for kind = \"agent\")")
    elif url or token_file:
        t.fail("url" if url else "token_file", "only for kind = \"agent\"")
    meter_profile = _meter_profile(t, base, profile, emulated=kind == "emulated")
    bauds = _dut_bauds(t, meter_profile)
    default_baud = DEFAULT_BAUD if bauds is None or DEFAULT_BAUD in bauds else bauds[0]
    baud = t.baud("baud", default_baud)
    if bauds is not None and baud not in bauds:
        t.fail("baud", f"{baud} is not one of the DUT's bauds (allowed: "
                       f"{', '.join(map(str, bauds))})")
    fabrication, sends = _fabrication(t, meter_profile)
    if "enhanced_selection" in features and fabrication is None:
        t.fail("fabrication", "missing: the DUT claims enhanced_selection, which selects by "
                              "its fabrication number (add fabrication = N, up to 8 digits)")
    if kind == "emulated":
        meter_profile = _declared_into_profile(meter_profile, bauds, baud, fabrication)
        if not features:
            features = profile_capabilities(meter_profile)
    profile_path = str(base / profile) if profile and profile.endswith(".toml") else profile
    return DutConfig(
        name=name, kind=kind, address=address, secondary=secondary,  # type: ignore[arg-type]
        baud=baud, bauds=bauds, features=features, profile=profile_path,
        fabrication=fabrication, sends_fabrication=sends, command=command, env=env, cwd=cwd,
        url=url, token_file=base / token_file if token_file else None,
        defects=defects, meter_profile=meter_profile,
    )


def _secondary(t: _Table) -> SecondaryAddress | None:
    """``secondary``: "12345678 ABC 1 heat" (ID, manufacturer letters, version, medium name
    or number) or the 16 hex digits in wire order, spaces allowed ("12345678 2D2C 01 04")."""
    if "secondary" not in t.data:
        return None
    text = t.get("secondary", str)
    try:
        return SecondaryAddress.parse_any(text)
    except ValueError as exc:
        t.fail("secondary", f"{exc} (allowed: \"12345678 ABC 1 heat\" or 16 hex digits "
                            f"such as \"12345678 2D2C 01 04\")")
    raise AssertionError("unreachable")


def _meter_profile(t: _Table, base: Path, profile: str | None, *, emulated: bool) -> Any:
    """The DUT's meter profile: an emulated DUT's (the built-in heat meter when none is
    given); for other kinds the records it is known to send, when ``profile`` is given."""
    if profile is None and not emulated:
        return None
    from hardware.profile import read_profile

    spec = profile if profile is None or not profile.endswith(".toml") else str(base / profile)
    try:
        return read_profile(spec)
    except ConfigError as exc:
        t.fail("profile", str(exc))
    raise AssertionError("unreachable")


def _dut_bauds(t: _Table, meter_profile: Any) -> tuple[int, ...] | None:
    """``bauds``: the rates the DUT supports (None when neither declared nor in a profile)."""
    if "bauds" not in t.data:
        return tuple(meter_profile.bauds) if meter_profile is not None else None
    value = t.get("bauds", list)
    allowed = ", ".join(map(str, BAUD_RATES))
    if not value:
        t.fail("bauds", f"is empty (list the rates the DUT supports; allowed: {allowed})")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item not in BAUD_RATES:
            t.fail("bauds", f"{item!r} is not an M-Bus baud rate (allowed: {allowed})")
    return tuple(sorted(set(value)))


FABRICATION_MAX = 99_999_999
"""A fabrication number is 8 BCD digits (enhanced selection: DIF 0C, VIF 78)."""


def _fabrication(t: _Table, meter_profile: Any) -> tuple[int | None, bool]:
    """``fabrication`` (the number enhanced selection uses) and ``sends_fabrication`` (its
    RSP_UD carries it as a VIF 78 record); both default to the profile's where there is one."""
    profile_fab = getattr(meter_profile, "fabrication_number", None)
    fabrication = (t.int_range("fabrication", 0, 0, FABRICATION_MAX)
                   if "fabrication" in t.data else profile_fab)
    sends = bool(t.get("sends_fabrication", bool, getattr(meter_profile, "sends_fabrication",
                                                          False)))
    if sends and fabrication is None:
        t.fail("sends_fabrication", "is true, but the fabrication number is not given "
                                    "(add fabrication = N, 8 digits)")
    if sends and meter_profile is not None and not meter_profile.sends_fabrication:
        t.fail("sends_fabrication", "is true, but the profile's telegrams carry no "
                                    "fabrication number record (VIF 78)")
    return fabrication, sends


def _declared_into_profile(profile: Any, bauds: tuple[int, ...] | None, baud: int,
                           fabrication: int | None) -> Any:
    """An emulated DUT's profile with the rig file's declarations: its rates and starting
    rate, its fabrication number."""
    changes: dict[str, Any] = {"fabrication_number": fabrication}
    if bauds is not None:
        changes.update(bauds=bauds, baud=baud)
    return replace(profile, **changes)


def _program_env(t: _Table, base: Path, started: bool) -> tuple[tuple[tuple[str, str], ...],
                                                                Path | None]:
    """``env = {NAME = "value"}`` and ``cwd`` of a DUT program the rig starts (a command)."""
    for key in ("env", "cwd"):
        if key in t.data and not started:
            t.fail(key, "only for a DUT the rig starts (a command: kind = \"program\", or an "
                        "agent with command)")
    env_table = t.get("env", dict, {})
    env: list[tuple[str, str]] = []
    for key, value in env_table.items():
        if not _ENV_NAME.match(key):
            t.fail("env", f"{key!r} is not an environment variable name (letters, digits, '_'; "
                          f"not starting with a digit)")
        if not isinstance(value, str):
            t.fail("env", f"{key} must be a string, not {_kind(value)} (write {key} = "
                          f"\"{value}\")")
        env.append((key, value))
    cwd = None
    if "cwd" in t.data:
        cwd = base / t.get("cwd", str)
        if not cwd.is_dir():
            t.fail("cwd", f"{cwd} is not a directory (relative paths start at the rig file's "
                          f"folder)")
    return tuple(env), cwd


def _strings(t: _Table, key: str, *, split: bool = False) -> list[str]:
    """An array of strings (or, with ``split``, also one string split like a shell line)."""
    value = t.get(key, (list, str) if split else list, [])
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            t.fail(key, f"cannot be split into arguments ({exc})")
    if not all(isinstance(v, str) for v in value):
        t.fail(key, "must be an array of strings")
    return list(value)
