"""The master suite's wall time: the whole suite against the project's own master on the
simulated bus (the emulated master, in process, virtual time), and against an outside
program master in real time (the project's tools through a pseudo-terminal by default).

Each run is a pytest subprocess (tests_hil._run.run_suite) in one process (no xdist), so the
figures are the suite's own cost; both must pass with 0 failures for the project's master.
Last line: ``master_suite: N s`` (the simulated-bus run at every rate).

    python benchmarks/master_suite.py                 # both runs (the real-time one ~5 min)
    python benchmarks/master_suite.py --skip-realtime # the simulated-bus run only
    python benchmarks/master_suite.py --outside rig/examples/master-pymeterbus.toml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hardware.clock import WallClock  # noqa: E402
from tests_hil._run import run_suite  # noqa: E402

SIM_RIG = ROOT / "tests_hil" / "rigs" / "master.toml"
OUTSIDE_RIG = ROOT / "rig" / "examples" / "master-tools.toml"


def timed(label: str, *options: str) -> float:
    clock = WallClock()
    start = clock.now()
    run = run_suite(*options, workers=0, timeout=3600)
    wall = clock.now() - start
    print(f"{label}: {run.summary()}")
    print(f"{label}: {wall:.1f} s wall")
    return wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baud", default="all",
                        help="rates for the simulated-bus run (default: every M-Bus rate)")
    parser.add_argument("--outside", default=str(OUTSIDE_RIG),
                        help="rig file of the outside program master (real time)")
    parser.add_argument("--skip-realtime", action="store_true",
                        help="only the simulated-bus run")
    args = parser.parse_args(argv)
    sim = timed("project master, simulated bus", "--rig", str(SIM_RIG), "--baud", args.baud)
    if not args.skip_realtime:
        timed(f"outside program master, real time ({Path(args.outside).name})",
              "--rig", args.outside)
    print(f"master_suite: {sim:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
