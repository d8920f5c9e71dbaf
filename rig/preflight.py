"""The rig check before a run: open the rig exactly as the run will, then close it.

``mbus-rig run`` does this before pytest starts and ``mbus-rig rig check FILE`` does only
this: the GPIO backend opens (where the rig has fault lines), each DUT program starts and
is still running a moment later, the master port opens, each agent answers. A problem is a
rig fault, never a DUT failure: one line, exit 2, no scenario run, no report written
(issue 10, "Rig faults are not DUT failures").
"""

from __future__ import annotations

from protocol.errors import ConfigError, MBusRigError

from .config import RigConfig, load_config


class RigCheckError(ConfigError):
    """The rig cannot be used as the rig file says (a usage problem, exit 2)."""


def check_rig(config: RigConfig, dut: str | None = None) -> list[str]:
    """Open and close the rig of ``config`` (the DUT under test: ``dut``, else the first);
    return what was checked, one line each. RigCheckError names the first problem."""
    from .master_rig import open_rig

    try:
        config.dut(dut)
        with open_rig(config, dut=dut) as rig:
            return [f"rig file: {config.source} ({config.name}, {config.mode})", *rig.checked]
    except RigCheckError:
        raise
    except MBusRigError as exc:
        raise RigCheckError(str(exc)) from None


def check_rig_file(spec: str, dut: str | None = None) -> list[str]:
    """:func:`check_rig` for a rig file (or ``sim``); a wrong file is a RigCheckError too."""
    try:
        config = load_config(spec)
    except MBusRigError as exc:
        raise RigCheckError(str(exc)) from None
    return check_rig(config, dut)
