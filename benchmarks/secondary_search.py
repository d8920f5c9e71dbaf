"""Secondary search: the rig's search against libmbus's (reimplemented baseline), on the
simulated bus in virtual time.

Populations: 1, 10, 50 and 250 slaves with random IDs, and adversarial ones: long shared ID
prefixes, IDs differing only in manufacturer, only in version, only in medium (hex digits
libmbus never tries), and clean-E5 pairs (two slaves answering a selection at the same
moment, so their E5s merge into one clean E5), and the shared-prefix IDs bit-aligned (every
slave answering after the same delay, so RSP_UDs AND on the wire).

For each: slaves found, probes (selections and reads sent; ours with the probes of the
access-number check, protocol.link.search) and bus time, ours and libmbus's.
Ours must find every slave everywhere and use less bus time in total. Last line:
``secondary_search: X bus-time ratio (ours/libmbus)`` (total bus time over all populations).

    python benchmarks/secondary_search.py [--baud 2400] [--seed 1] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocol.meter import MeterProfile, heat_meter_profile  # noqa: E402
from rig.tools import libmbus_baseline  # noqa: E402
from rig.tools.bus import open_sim  # noqa: E402
from rig.tools.output import print_table  # noqa: E402

MANUFACTURERS = ("KAM", "ABB", "ELS", "LUG", "SEN", "ITW", "EFE", "ZRI", "DME", "NZR")
"""Codes with hex digits A-F: KAM 2C2D, ABB 0442, ELS 1593, LUG 32A7, SEN 4DAE, ..."""
VERSIONS = (0x01, 0x0A, 0x1B, 0x2C, 0x3D, 0x4E, 0x5F, 0xA0, 0xB7, 0xE1)
MEDIA = (0x04, 0x0C, 0x07, 0x16, 0x0A, 0x0B, 0x0D, 0x15, 0x06, 0x03)


def _meter(base: MeterProfile, index: int, *, id: int, manufacturer: str | None = None,
           version: int | None = None, medium: int | None = None,
           delay: float | None = None) -> MeterProfile:
    """Slave ``index``: unconfigured (address 0), its own fabrication number, and its own
    response delay (real meters differ; ``delay`` None: drawn from the index)."""
    if delay is None:
        delay = random.Random(index).uniform(0.010, 0.100)
    return dataclasses.replace(
        base, id=id, address=0, name=f"slave{index}", fabrication_number=10_000_000 + index,
        response_delay=delay,
        manufacturer=manufacturer if manufacturer is not None else base.manufacturer,
        version=version if version is not None else base.version,
        medium=medium if medium is not None else base.medium)


def random_ids(count: int) -> Callable[[MeterProfile, random.Random], list[MeterProfile]]:
    def build(base: MeterProfile, rng: random.Random) -> list[MeterProfile]:
        ids = rng.sample(range(100_000_000), count)
        return [_meter(base, i, id=ids[i]) for i in range(count)]
    return build


def shared_prefix(base: MeterProfile, rng: random.Random) -> list[MeterProfile]:
    """About 25 IDs sharing their first 6 digits, among them 5 or more sharing 7."""
    prefix = rng.randrange(1_000_000) * 100
    ids = sorted(set(rng.sample(range(prefix, prefix + 100), 20)) | {prefix + 40 + k for k in range(5)})
    return [_meter(base, i, id=v) for i, v in enumerate(ids)]


def shared_prefix_aligned(base: MeterProfile, rng: random.Random) -> list[MeterProfile]:
    """The shared-prefix IDs, every slave answering after exactly the same delay: their
    answers are bit-aligned and AND together on the wire, and the AND of RSP_UDs that differ
    in one ID byte can be a valid frame (the slave whose bits are a subset of the others')."""
    return [dataclasses.replace(m, response_delay=0.050) for m in shared_prefix(base, rng)]


def only_manufacturer(base: MeterProfile, rng: random.Random) -> list[MeterProfile]:
    same = rng.randrange(100_000_000)
    return [_meter(base, i, id=same, manufacturer=m) for i, m in enumerate(MANUFACTURERS)]


def only_version(base: MeterProfile, rng: random.Random) -> list[MeterProfile]:
    same = rng.randrange(100_000_000)
    return [_meter(base, i, id=same, version=v) for i, v in enumerate(VERSIONS)]


def only_medium(base: MeterProfile, rng: random.Random) -> list[MeterProfile]:
    same = rng.randrange(100_000_000)
    return [_meter(base, i, id=same, medium=m) for i, m in enumerate(MEDIA)]


def clean_e5_pairs(base: MeterProfile, rng: random.Random) -> list[MeterProfile]:
    """5 pairs, each pair with IDs differing in the last digit and the same response delay:
    a selection matching both gets one clean merged E5."""
    meters = []
    for pair in range(5):
        first = rng.randrange(10_000_000) * 10
        delay = rng.uniform(0.010, 0.100)
        for k in range(2):
            meters.append(_meter(base, 2 * pair + k, id=first + k * 7, delay=delay))
    return meters


POPULATIONS: dict[str, Callable[[MeterProfile, random.Random], list[MeterProfile]]] = {
    "random 1": random_ids(1),
    "random 10": random_ids(10),
    "random 50": random_ids(50),
    "random 250": random_ids(250),
    "shared prefix": shared_prefix,
    "shared prefix, bit-aligned": shared_prefix_aligned,
    "only manufacturer (10)": only_manufacturer,
    "only version (10)": only_version,
    "only medium (10)": only_medium,
    "clean-E5 pairs (10)": clean_e5_pairs,
}


@dataclass
class Run:
    found: int
    missed: list[str]
    probes: int
    bus_time: float
    cpu: float
    checks: int = 0  # probes of the access-number check (included in probes)


def _expected(profiles: list[MeterProfile]) -> set[str]:
    return {str(p.secondary) for p in profiles}


def run_ours(profiles: list[MeterProfile], *, baud: int, seed: int) -> Run:
    started = time.process_time()
    bus = open_sim(profiles, baud=baud, seed=seed, retries=2)
    try:
        t0 = bus.clock.now()
        result = bus.master.search_secondary(bus.mask_of("F" * 16))
        bus_time = bus.clock.now() - t0
    finally:
        bus.close()
    found = {str(s) for s in result.found}
    missed = sorted(_expected(profiles) - found)
    return Run(len(found & _expected(profiles)), missed, result.probes, bus_time,
               time.process_time() - started, result.verifications)


def run_libmbus(profiles: list[MeterProfile], *, baud: int, seed: int) -> Run:
    started = time.process_time()
    bus = open_sim(profiles, baud=baud, seed=seed, retries=0)
    try:
        result = libmbus_baseline.scan_secondary(bus.port, bus.clock)
    finally:
        bus.close()
    found = set(result.found)
    missed = sorted(_expected(profiles) - found)
    return Run(len(found & _expected(profiles)), missed, result.probes, result.bus_time,
               time.process_time() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baud", type=int, default=2400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="skip the 250-slave population")
    parser.add_argument("--only", default=None, help="run only populations containing this text")
    args = parser.parse_args(argv)
    base = heat_meter_profile()
    rows = []
    total_ours = total_lib = 0.0
    all_found = True
    misses: dict[str, list[str]] = {}
    for name, build in POPULATIONS.items():
        if args.quick and name == "random 250":
            continue
        if args.only and args.only not in name:
            continue
        # "X, variant" populations draw the same IDs as "X"
        profiles = build(base, random.Random(f"{args.seed}:{name.split(',')[0]}"))
        ours = run_ours(profiles, baud=args.baud, seed=args.seed)
        lib = run_libmbus(profiles, baud=args.baud, seed=args.seed)
        total_ours += ours.bus_time
        total_lib += lib.bus_time
        all_found &= not ours.missed
        if ours.missed:
            misses[name] = ours.missed
        rows.append((name, len(profiles), ours.found, lib.found, ours.probes, ours.checks,
                     lib.probes,
                     f"{ours.bus_time:.1f}", f"{lib.bus_time:.1f}",
                     f"{ours.bus_time / lib.bus_time:.3f}" if lib.bus_time else "-",
                     f"{ours.cpu + lib.cpu:.1f}"))
        sys.stdout.flush()
    print_table(("population", "slaves", "found ours", "found libmbus", "probes ours",
                 "of which checks", "probes libmbus", "bus s ours", "bus s libmbus", "ratio", "cpu s"), rows,
                title=f"secondary search at {args.baud} baud (virtual bus time)")
    for name, missed in misses.items():
        print(f"ours missed {len(missed)} in {name}: {', '.join(missed)}")
    ratio = total_ours / total_lib if total_lib else float("nan")
    print(f"secondary_search: {ratio:.4f} bus-time ratio (ours/libmbus)")
    return 0 if all_found and ratio < 1 else 1


if __name__ == "__main__":
    sys.exit(main())
