"""The named defects ``--defect`` can switch on, by the role of the DUT they apply to.

Each role registers a catalogue (name -> what the defective device does wrong); ``mbus-rig
run --defect``, ``--list-defects`` and the pytest plugin's ``--defect`` all check and list
from here, so a new kind of DUT (a master under test) adds its defects with one
:func:`register` call and every front end knows them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from protocol.errors import ConfigError

from .config import RigConfig

SLAVE = "slave"
"""The role of every DUT today: a slave (meter) the rig's master talks to."""

Catalogue = Callable[[], Mapping[str, str]]
_CATALOGUES: dict[str, Catalogue] = {}


def register(role: str, catalogue: Catalogue) -> None:
    """Make ``catalogue()`` (name -> description) the defects of DUTs with ``role``."""
    _CATALOGUES[role] = catalogue


def slave_defects() -> dict[str, str]:
    """The emulated slave's defects: link-engine and device-level (protocol.meter)."""
    from protocol.link.slave import DEFECTS
    from protocol.meter import DEVICE_DEFECTS

    return dict(sorted({**DEFECTS, **DEVICE_DEFECTS}.items()))


register(SLAVE, slave_defects)

MASTER = "master"
"""A master under test (rig file ``role = "master"``): the test master's defects."""


def master_defects() -> dict[str, str]:
    """The test master's defects (rig/defective_master.py)."""
    from .defective_master import MASTER_DEFECTS

    return dict(MASTER_DEFECTS)


register(MASTER, master_defects)


def dut_role(dut: Any) -> str:
    """The role of a DUT (its rig-file ``role`` where it has one, else a slave)."""
    return str(getattr(dut, "role", None) or SLAVE)


def defects_for(role: str) -> dict[str, str]:
    """The defects DUTs with ``role`` can be switched into (empty for an unknown role)."""
    catalogue = _CATALOGUES.get(role)
    return dict(catalogue()) if catalogue is not None else {}


def check_defects(config: RigConfig, dut_name: str | None, names: Iterable[str]) -> None:
    """``--defect NAME...`` for the DUT under test: ConfigError naming the first problem (no
    emulated DUT to switch it on in, or a name the DUT's role does not have)."""
    wanted = sorted(set(names))
    if not wanted:
        return
    if not any(d.kind == "emulated" for d in config.duts):
        raise ConfigError(f"--defect needs an emulated DUT; rig {config.name!r} has none")
    role = dut_role(config.dut(dut_name))
    known = defects_for(role)
    for name in wanted:
        if name not in known:
            raise ConfigError(f"--defect {name}: unknown defect of a {role} DUT "
                              f"(allowed: {', '.join(known) or 'none'}; "
                              "mbus-rig run --list-defects describes them)")
