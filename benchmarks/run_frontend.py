"""What ``mbus-rig run`` costs before pytest starts: checking the options against the rig
file and the suite (the scenario catalogue), then the rig check (opening and closing the
rig: GPIO, DUT programs, master port, agents), per rig.

The program-DUT rig waits PROGRAM_SETTLE_S for its program to stay up, so most of its time
is that deliberate wait. Wall time: the first repetition (cold: the suite's modules are
imported then, as in a fresh ``mbus-rig run``) and the best of N.

    python benchmarks/run_frontend.py [--repeat 5]

Last line: ``run_frontend: T ms before pytest (built-in sim rig)``.
"""

from __future__ import annotations

import argparse

from hardware.clock import WallClock
from rig.cli import build_parser
from rig.commands import run as run_command
from rig.preflight import check_rig
from rig.tools.output import print_table

RIGS = {"built-in sim rig": "sim", "program DUT (rig/examples/program-dut.toml)":
        "rig/examples/program-dut.toml"}


def measure(rig: str, repeat: int) -> tuple[float, float, float]:
    """(options ms, rig check ms) at best over ``repeat`` runs, and the first run's total."""
    clock = WallClock()
    options, checks = [], []
    for _ in range(repeat):
        args = build_parser().parse_args(["run", "--rig", rig, "--area", "timing"])
        start = clock.now()
        plan = run_command.check_options(args)
        checked = clock.now()
        check_rig(plan.config, args.dut)
        options.append((checked - start) * 1000)
        checks.append((clock.now() - checked) * 1000)
    return min(options), min(checks), options[0] + checks[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = []
    totals = []
    for name, rig in RIGS.items():
        options_ms, check_ms, cold_ms = measure(rig, args.repeat)
        rows.append((name, f"{options_ms:.0f}", f"{check_ms:.0f}",
                     f"{options_ms + check_ms:.0f}", f"{cold_ms:.0f}"))
        totals.append(cold_ms)
    print_table(("rig", "options ms", "rig check ms", "before pytest ms", "first run ms"),
                rows)
    print(f"run_frontend: {totals[0]:.0f} ms before pytest (built-in sim rig, first run)")


if __name__ == "__main__":
    main()
