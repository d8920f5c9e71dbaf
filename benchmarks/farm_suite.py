"""The whole conformance suite against a labgrid place on this machine (rig/farm/lab.py): a
virtual rig pair exported by labgrid-exporter (ser2net, RFC 2217) and its line server.

Runs ``mbus-rig run`` once against the place, in real time, and prints the outcome counts;
the last line is ``farm_suite: S s`` (wall time of the run, the place's acquire and release
included). Needs the farm extra and ser2net (scripts/setup.sh).

    .venv/bin/python benchmarks/farm_suite.py [PYTEST ARGS...]
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from hardware.clock import WallClock
from rig.farm.lab import Lab


def main(extra: list[str]) -> int:
    clock = WallClock()
    with tempfile.TemporaryDirectory(prefix="farm-suite-") as tmp, Lab(Path(tmp)) as lab:
        report = Path(tmp) / "report"
        start = clock.now()
        done = subprocess.run([sys.executable, "-m", "rig", "run", "--rig", str(lab.rig_file()),
                               "--report", str(report), "--no-html", "--", "-q", "-p",
                               "no:cacheprovider", *extra],
                              capture_output=True, text=True, timeout=3600)
        wall = clock.now() - start
        summary = [line for line in done.stdout.splitlines()
                   if re.search(r"\d+ (passed|failed)", line)]
        for line in done.stdout.splitlines():
            if line.startswith(("mbus-rig run:", "FAILED", "ERROR")):
                print(line)
        print(f"exit {done.returncode}: {summary[-1] if summary else done.stderr.strip()[-500:]}")
    print(f"farm_suite: {wall:.1f} s")
    return 0 if done.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
