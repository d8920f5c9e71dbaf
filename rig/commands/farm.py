"""``mbus-rig farm``: the places of a labgrid farm, with their DUT, tags and holder.

The coordinator is ``--coordinator``, else a ``--rig`` file's ``[labgrid] coordinator``, else
``$LG_COORDINATOR`` (labgrid's own tools take the same variable). Exit 2 with one line when
labgrid is not installed or the coordinator does not answer. docs/farm.md.
"""

from __future__ import annotations

import argparse

from protocol.errors import ConfigError
from rig.cli import HelpWithExamples, examples


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "farm", help="list a labgrid farm's places: DUT, tags, who holds them",
        description="List the places of the labgrid coordinator: name, the dut tag, all tags, "
        "who holds each (acquired) or which reservation it is allocated to.",
        formatter_class=HelpWithExamples,
        epilog=examples("mbus-rig farm --rig rig/examples/farm.toml",
                        "mbus-rig farm --coordinator coordinator.lab:20408",
                        "LG_COORDINATOR=coordinator.lab mbus-rig farm"))
    parser.add_argument("--coordinator", metavar="HOST[:PORT]",
                        help="labgrid coordinator (default: the rig file's, else "
                        "$LG_COORDINATOR)")
    parser.add_argument("--rig", metavar="FILE", help="a farm rig file naming the coordinator")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="S",
                        help="seconds to reach the coordinator (default: %(default)s)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rig.config import load_config
    from rig.farm.place import Coordinator, coordinator_address
    from rig.tools.output import print_table

    configured = args.coordinator
    source = "mbus-rig farm"
    if configured is None and args.rig is not None:
        cfg = load_config(args.rig)
        if cfg.labgrid is None:
            raise ConfigError(f"{cfg.source}: no [labgrid] table (not a farm rig file)")
        configured, source = cfg.labgrid.coordinator, cfg.source
    if not 0 < args.timeout <= 3600:
        raise ConfigError(f"--timeout {args.timeout}: out of range (allowed: 0..3600 s)")
    with Coordinator(coordinator_address(configured), connect_timeout=args.timeout,
                     source=source) as coordinator:
        places = coordinator.places()
        rows = [[p.name, p.dut or "-", " ".join(f"{k}={v}" for k, v in sorted(p.tags.items()))
                 or "-", p.acquired or ("reserved" if p.reservation else "free"),
                 p.comment or ""] for p in places]
        print(f"labgrid coordinator {coordinator.address}: {len(places)} place(s)")
        print_table(["place", "dut", "tags", "held by", "comment"], rows)
    return 0
