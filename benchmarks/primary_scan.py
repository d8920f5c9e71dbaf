"""Primary scan: the rig's ``mbus-rig scan`` against libmbus's ``mbus-serial-scan``
(reimplemented baseline), on the simulated bus in virtual time.

250 addresses (1-250) at 2400 baud with 5 slaves present. Ours waits for the standard's
response window (330 bit times + 50 ms after the request; 187.5 ms at 2400 baud) and retries
twice; libmbus waits three fixed VTIME reads (3 x 0.3 s at 2400 baud) and purges another
0.9 s after every answer, with no retry (the tool's default -r 0). A second bus adds two
slaves sharing one address: ours reports a collision there, libmbus one device.

Last line: ``primary_scan: X bus-time ratio (ours/libmbus)`` for the 5-slave bus, each with
its default retries (ours 2, libmbus 0); the table also shows ours with 0 retries.

    python benchmarks/primary_scan.py [--baud 2400] [--seed 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocol.meter import MeterProfile  # noqa: E402
from rig.commands.scan import run_primary_scan  # noqa: E402
from rig.tools import libmbus_baseline  # noqa: E402
from rig.tools.bus import open_sim, sim_population  # noqa: E402
from rig.tools.output import print_table  # noqa: E402

ADDRESSES = range(1, 251)
PRESENT = (3, 17, 64, 128, 250)


def five_slaves(baud: int, seed: int) -> list[MeterProfile]:
    profiles = sim_population(len(PRESENT), seed=seed, baud=baud)
    return [dataclasses.replace(p, address=a) for p, a in zip(profiles, PRESENT, strict=True)]


def with_shared_address(baud: int, seed: int) -> list[MeterProfile]:
    profiles = five_slaves(baud, seed)
    extra = sim_population(len(PRESENT) + 1, seed=seed + 1, baud=baud)[-1]
    return [*profiles, dataclasses.replace(extra, address=PRESENT[1], name="twin")]


def run(profiles: list[MeterProfile], *, baud: int, seed: int, retries: int) -> dict[str, object]:
    ours_bus = open_sim(profiles, baud=baud, seed=seed, retries=retries)
    try:
        ours = run_primary_scan(ours_bus, ADDRESSES)
    finally:
        ours_bus.close()
    lib_bus = open_sim(profiles, baud=baud, seed=seed, retries=0)
    try:
        lib = libmbus_baseline.scan_primary(lib_bus.port, lib_bus.clock, addresses=ADDRESSES)
    finally:
        lib_bus.close()
    return {
        "ours_found": [f.address for f in ours.findings if f.status == "ok"],
        "ours_collisions": [f.address for f in ours.findings if f.status == "collision"],
        "ours_time": ours.bus_time_s,
        "lib_found": [int(x.split()[-1]) for x in lib.found],
        "lib_collisions": [int(x.split()[-1]) for x in lib.collisions],
        "lib_time": lib.bus_time,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baud", type=int, default=2400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--retries", type=int, default=2, help="our retries (default 2)")
    args = parser.parse_args(argv)
    rows = []
    results = {}
    cases = (("5 slaves", five_slaves, args.retries),
             ("5 slaves + twin at 17", with_shared_address, args.retries),
             ("5 slaves, ours with 0 retries too", five_slaves, 0))
    for name, build, retries in cases:
        r = run(build(args.baud, args.seed), baud=args.baud, seed=args.seed, retries=retries)
        results[name] = r
        rows.append((name, r["ours_found"], r["ours_collisions"], r["lib_found"], r["lib_collisions"],
                     f"{r['ours_time']:.1f}", f"{r['lib_time']:.1f}",
                     f"{float(r['ours_time']) / float(r['lib_time']):.3f}"))  # type: ignore[arg-type]
    print_table(("bus", "found ours", "collisions ours", "found libmbus", "collisions libmbus",
                 "bus s ours", "bus s libmbus", "ratio"), rows,
                title=f"primary scan of addresses 1-250 at {args.baud} baud (virtual bus time)")
    main_run = results["5 slaves"]
    ok = main_run["ours_found"] == list(PRESENT)
    ratio = float(main_run["ours_time"]) / float(main_run["lib_time"])  # type: ignore[arg-type]
    print(f"primary_scan: {ratio:.4f} bus-time ratio (ours/libmbus)")
    return 0 if ok and ratio < 1 else 1


if __name__ == "__main__":
    sys.exit(main())
