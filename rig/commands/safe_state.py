"""``mbus-rig safe-state [--rig FILE] [--place NAME]``: release every fault line of a rig, now.

For CI's always-run step after a cancelled job, and for a person at the bench. It needs no
lock (the session that held the rig may be the one that died), touches only the GPIO lines
(and asks an agent DUT to disarm its faults), and exits non-zero if any line could not be
released. A farm rig file's lines are its place's line server's (rig/farm/safe_state.py); a
resolved farm rig file (``DIR/farm-rig.toml``) names that line server itself.
"""

from __future__ import annotations

import argparse
import sys

from hardware.lines import FaultLines
from protocol.errors import ConfigError, HardwareError, MBusRigError
from rig.cli import HelpWithExamples, examples
from rig.config import RigConfig, load_config
from rig.safety import RigLock, lock_path_for

AGENT_TIMEOUT_S = 3.0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "safe-state", help="release every fault line of the rig (CI always-run step)",
        description="Put the rig in its safe state: every fault line released (healthy bus), "
                    "faults armed in an agent DUT disarmed.",
        formatter_class=HelpWithExamples,
        epilog=examples("mbus-rig safe-state --rig rig/examples/two-pi.toml",
                        "mbus-rig safe-state --rig rig/examples/farm.toml --place mbus-1",
                        "mbus-rig safe-state --rig reports-hw/farm-rig.toml"))
    parser.add_argument("--rig", default="sim", metavar="sim|FILE",
                        help="the rig file (default: the built-in simulated rig)")
    parser.add_argument("--place", metavar="NAME",
                        help="for a farm rig file: the labgrid place whose lines to release "
                             "(default: the rig file's place, else the places matching its "
                             "tags that this client holds, LG_USERNAME)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.rig)
    if cfg.labgrid is not None:  # a farm rig file: the place's line server, not local GPIO
        from rig.farm.safe_state import farm_safe_state

        print(farm_safe_state(cfg, args.place, _disarm_agent))
        return 0
    if args.place is not None:
        raise ConfigError(f"--place {args.place}: only for a farm rig file ({cfg.source} has "
                          "no [labgrid] table)")
    holder = RigLock(lock_path_for(cfg.name, cfg.source)).holder()
    if holder is not None:
        print(f"note: rig {cfg.name!r} is in use by pid {holder}; releasing its lines anyway",
              file=sys.stderr)
    lines = safe_state(cfg)
    print(lines)
    return 0


def safe_state(cfg: RigConfig) -> str:
    """Release every fault line in ``cfg`` (and disarm agent DUTs); a one-line report.
    Raises HardwareError when a line could not be released."""
    from rig.rig import open_gpio

    backend = open_gpio(cfg)  # no lines: no GPIO needed
    lines = FaultLines.from_specs(backend, cfg.gpio.lines)  # set up = driven released
    report = lines.close()
    if not report.ok:
        raise HardwareError(f"rig {cfg.name!r}: {report}")
    notes = [f"rig {cfg.name!r}: {report} ({', '.join(report.released) or 'no lines'}; "
             f"GPIO backend {backend.name})"]
    for dut in cfg.duts:
        if dut.kind == "agent" and dut.url is not None and dut.token_file is not None:
            notes.append(_disarm_agent(dut.name, dut.url, str(dut.token_file)))
    return "\n".join(notes)


def _disarm_agent(name: str, url: str, token_file: str) -> str:
    try:
        from rig.agent.client import AgentClient, read_token_file

        AgentClient(url, read_token_file(token_file), timeout=AGENT_TIMEOUT_S).disarm()
    except MBusRigError as exc:
        return f"DUT {name}: agent at {url} not disarmed ({exc})"
    return f"DUT {name}: agent faults disarmed"
