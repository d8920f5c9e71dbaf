"""A master as the device under test: the ``[[dut]] role = "master"`` part of a rig file.

The rig's side is then a population of emulated meters, and the DUT is an M-Bus master run
per operation (docs/design.md "Devices under test": the roles swap). Three kinds:

- ``emulated``: the project's own master engine (the ``mbus-rig`` tools' code), in this
  process on the simulated bus's virtual clock; ``--defect`` switches named master defects
  on (rig/defective_master.py). The reference: it passes the master suite.
- ``program``: an outside master program, one run per operation, from the command templates
  under ``[dut.commands]``, joined to the simulated bus (running in real time) through a
  pseudo-terminal ``{tty}`` or a raw TCP gateway ``{tcp}``.
- ``black-box``: a master on a real bus, triggered by the same command templates (without
  ``{tty}``), judged from the trace of the slave-Pi agent the rig file lists as its meter.

Schema (docs/rig-files.md "A master as the DUT"; docs/testing-a-master.md)::

    [[dut]]
    name = "libmbus"  role = "master"  kind = "program"
    output = "json" | "libmbus-xml" | "none"   # what the program prints
    retries = 2          # the retries the master is configured to make (0-9)
    timeout = 120        # s one operation may take before it counts as hung
    bauds = [2400]       # the rates it can be run at
    [dut.commands]
    read = "mbus-serial-request-data-multi-reply -b {baud} {tty} {address}"
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protocol.errors import ConfigError
from protocol.link.master import DEFAULT_RETRIES, MAX_RETRIES
from protocol.timing import BAUD_RATES, DEFAULT_BAUD

if TYPE_CHECKING:
    from .config import BusConfig, DutConfig

ROLES: tuple[str, ...] = ("slave", "master")
MASTER_KINDS: tuple[str, ...] = ("emulated", "program", "black-box")
OUTPUTS: tuple[str, ...] = ("json", "libmbus-xml", "none")

#: What a master DUT can be asked to do, and the placeholders each command needs.
OPERATIONS: dict[str, tuple[str, ...]] = {
    "read": ("address",),
    "read_secondary": ("secondary",),
    "scan": (),
    "scan_secondary": (),
    "set_address": ("address", "new_address"),
    "switch_baud": ("address", "new_baud"),
    "reset": ("address",),
}
"""``read`` reads every telegram of the slave (a multi-telegram readout to its end)."""

PLACEHOLDERS: dict[str, str] = {
    "tty": "the pseudo-terminal joined to the simulated bus (8N1: a pty carries no parity)",
    "tcp": "HOST:PORT of a raw TCP gateway to the bus",
    "tcp_host": "the gateway's host",
    "tcp_port": "the gateway's port",
    "baud": "the rate to talk at",
    "address": "the slave's primary address (0-250, or 254 for broadcast)",
    "secondary": "the slave's secondary address, 16 hex digits (libmbus's form)",
    "new_address": "the new primary address (set_address)",
    "new_baud": "the new rate (switch_baud)",
    "first": "the first primary address to scan",
    "last": "the last primary address to scan",
    "retries": "the retries the rig file declares",
}
BUS_PLACEHOLDERS = ("tty", "tcp", "tcp_host", "tcp_port")

#: Capability names of master DUTs: ``op_NAME`` for each operation it has, ``reports`` when
#: its output is parsed (json, libmbus-xml).
OPERATION_CAPABILITIES: tuple[str, ...] = tuple(f"op_{name}" for name in OPERATIONS)
MASTER_CAPABILITIES: tuple[str, ...] = (*OPERATION_CAPABILITIES, "reports")

MASTER_DUT_KEYS: tuple[str, ...] = ("name", "role", "kind", "commands", "output", "retries",
                                    "timeout", "bauds", "baud", "defects")
"""Keys of a master's ``[[dut]]`` table (docs/rig-files.md "A master as the DUT")."""

DEFAULT_TIMEOUT_S = 120.0
MAX_TIMEOUT_S = 3600.0


@dataclass(frozen=True, slots=True)
class MasterSettings:
    """How the rig runs and judges a master DUT."""

    commands: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    output: str = "json"
    retries: int = DEFAULT_RETRIES
    timeout: float = DEFAULT_TIMEOUT_S

    @property
    def operations(self) -> frozenset[str]:
        return frozenset(self.commands)

    @property
    def joins_by(self) -> str | None:
        """How a program joins the simulated bus: "tty", "tcp" or None (no command uses
        either: a black box on a real bus)."""
        used = {name for argv in self.commands.values() for arg in argv
                for name in placeholders(arg)}
        if "tty" in used:
            return "tty"
        if used & {"tcp", "tcp_host", "tcp_port"}:
            return "tcp"
        return None


def placeholders(text: str) -> list[str]:
    """The ``{name}`` fields of a command argument."""
    return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]


def expand(argv: tuple[str, ...], values: Mapping[str, object]) -> list[str]:
    """A command's argv with its placeholders filled in."""
    return [arg.format_map({k: str(v) for k, v in values.items()}) for arg in argv]


def master_capabilities(dut: DutConfig) -> frozenset[str]:
    """What a master DUT can be asked to do (``op_NAME``) and whether its output is read."""
    settings = dut.master
    assert settings is not None
    ops = set(OPERATIONS) if dut.kind == "emulated" else set(settings.commands)
    if settings.joins_by == "tcp":
        ops.discard("switch_baud")  # a TCP gateway has a rate of its own, no switch
    caps = {f"op_{name}" for name in ops}
    if dut.kind == "emulated" or settings.output != "none":
        caps.add("reports")
    return frozenset(caps)


_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def master_dut(raw: Any, source: str, where: str, base: Path, bus: BusConfig) -> DutConfig:
    """Validate a ``[[dut]]`` table with ``role = "master"``."""
    from .config import DutConfig, _strings, _Table

    t = _Table(raw, source, where, MASTER_DUT_KEYS)
    name = t.get("name", str, required=True)
    if not _NAME.match(name):
        t.fail("name", f"{name!r}: use letters, digits, '_', '.', '-'")
    t.where = f"dut.{name}"
    kind = t.choice("kind", MASTER_KINDS, "emulated")
    baud = t.baud("baud", DEFAULT_BAUD)
    bauds = _bauds(t, kind, baud)
    retries = t.int_range("retries", DEFAULT_RETRIES, 0, MAX_RETRIES)
    timeout = t.number_range("timeout", DEFAULT_TIMEOUT_S, 1.0, MAX_TIMEOUT_S)
    output = t.choice("output", OUTPUTS, "json")
    defects = frozenset(_strings(t, "defects"))
    if defects:
        from .defective_master import check_defects

        try:
            check_defects(defects)
        except ConfigError as exc:
            t.fail("defects", str(exc))
    commands = _commands(t, kind, bus)
    if kind == "emulated":
        if not bus.simulated:
            t.fail("kind", "the emulated master runs on the simulated bus; on a real bus use "
                           "\"black-box\"")
        if "output" in t.data:
            t.fail("output", "the emulated master prints the project's JSON; only for "
                             "kind = \"program\" or \"black-box\"")
    elif defects:
        t.fail("defects", "only for the emulated master (kind = \"emulated\")")
    if kind == "program" and not bus.simulated:
        t.fail("kind", "a master program joins the simulated bus through {tty} or {tcp}; on "
                       "a real bus use \"black-box\"")
    if kind == "black-box" and bus.simulated:
        t.fail("kind", "a black-box master is judged on a real bus; on the simulated bus run "
                       "it as kind = \"program\" with {tty} or {tcp}")
    settings = MasterSettings(commands=commands, output=output, retries=retries,
                              timeout=timeout)
    return DutConfig(name=name, kind=kind, baud=baud, bauds=bauds,  # type: ignore[arg-type]
                     role="master", defects=defects, master=settings)


def _bauds(t: Any, kind: str, baud: int) -> tuple[int, ...]:
    if "bauds" not in t.data:
        return tuple(BAUD_RATES) if kind == "emulated" else (baud,)
    values = t.get("bauds", list)
    if not values:
        t.fail("bauds", "is empty (give the rates the master can be run at)")
    for value in values:
        if isinstance(value, bool) or value not in BAUD_RATES:
            t.fail("bauds", f"{value!r} is not an M-Bus baud rate "
                            f"(allowed: {', '.join(map(str, BAUD_RATES))})")
    return tuple(sorted(set(values)))


def _commands(t: Any, kind: str, bus: BusConfig) -> dict[str, tuple[str, ...]]:
    from .config import _strings, _Table

    raw = t.get("commands", dict, {})
    if kind == "emulated":
        if raw:
            t.fail("commands", "the emulated master needs no commands (it is the project's "
                               "own master); only for kind = \"program\" or \"black-box\"")
        return {}
    if not raw:
        t.fail("commands", f"missing (a {kind} master needs at least one of: "
                           f"{', '.join(OPERATIONS)})")
    table = _Table(raw, t.source, f"{t.where}.commands", tuple(OPERATIONS))
    commands: dict[str, tuple[str, ...]] = {}
    for op in table.data:
        argv = tuple(_strings(table, op, split=True))
        if not argv:
            table.fail(op, "is empty")
        used: set[str] = set()
        for arg in argv:
            try:
                used.update(placeholders(arg))
            except ValueError as exc:
                table.fail(op, f"{arg!r}: {exc}")
        unknown = sorted(used - set(PLACEHOLDERS))
        if unknown:
            table.fail(op, f"unknown placeholder {{{unknown[0]}}} (allowed: "
                           f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)})")
        missing = [p for p in OPERATIONS[op] if p not in used]
        if missing:
            table.fail(op, f"needs {{{missing[0]}}} ({PLACEHOLDERS[missing[0]]})")
        joins = used & set(BUS_PLACEHOLDERS)
        if kind == "program" and not joins:
            table.fail(op, "needs {tty} or {tcp} (or {tcp_host} and {tcp_port}): how the "
                           "program reaches the simulated bus")
        if kind == "black-box" and joins:
            table.fail(op, f"{{{sorted(joins)[0]}}} is for programs on the simulated bus; a "
                           "black-box master has its own port")
        commands[op] = argv
    if kind == "program":
        kinds = {"tty" if "tty" in {n for a in argv for n in placeholders(a)} else "tcp"
                 for argv in commands.values()}
        if len(kinds) > 1:
            t.fail("commands", "use {tty} in every command or {tcp} in every command, not both")
    return commands


def check_master_rig(source: str, bus: BusConfig, duts: list[DutConfig]) -> None:
    """One master per rig; on the simulated bus the scenarios build the meters themselves,
    on a real bus the rig file's other DUTs (slave-Pi agents) are the meters."""
    masters = [d for d in duts if d.is_master]
    if len(masters) > 1:
        raise ConfigError(f"{source}: dut: {masters[0].name!r} and {masters[1].name!r} are "
                          "both masters (one master per bus)")
    others = [d for d in duts if not d.is_master]
    if bus.simulated and others:
        raise ConfigError(f"{source}: dut.{others[0].name}: a master rig on the simulated bus "
                          "builds its meters per scenario; list no slave DUTs")
    if not bus.simulated and not any(d.kind == "agent" for d in others):
        raise ConfigError(f"{source}: dut: a black-box master on a real bus is judged from a "
                          "slave-Pi agent's trace; add a [[dut]] with kind = \"agent\"")
