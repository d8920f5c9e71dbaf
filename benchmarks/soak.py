"""Soak: many request/answer exchanges on a noisy simulated bus with random armed faults.

Two emulated meters (addresses 1 and 2) on the simulated bus with bit-flip noise in both
directions (default 1e-4 per sampled bit) and, now and then, a random device fault armed in
one of them (corrupt checksum, silence, late, truncated, wrong address, wrong C field) for
1-3 answers. The master sends REQ_UD2 (90 %) or SND_NKE (10 %), one attempt each (no
retries), and every outcome is checked against what the slave actually put on the wire:

- accepted: a frame the master took must be byte for byte a frame a slave sent, and name
  the address asked (else WRONG);
- wrong address: a valid frame naming another address (the wrong_address fault) is
  rejected, never accepted as the asked slave's answer;
- corrupted: the characters the master received differ from what the slave sent (noise, or
  an armed fault that breaks the frame): the master must reject it (else WRONG);
- nothing may hang: every exchange ends within request + response window + the longest
  answer + the gap limit (virtual time; else HUNG).

Last line: ``soak: N exchanges, W wrong`` (W counts WRONG and HUNG).

    python benchmarks/soak.py [N] [--ber 1e-4] [--seed 1] [--baud 2400]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocol.chars import WireBytes, as_wire  # noqa: E402
from protocol.frames import decode, encode  # noqa: E402
from protocol.link import master as link  # noqa: E402
from protocol.link.master import Outcome  # noqa: E402
from protocol.meter import FAULTS, MeterProfile, heat_meter_profile  # noqa: E402
from protocol.timing import char_time, frame_time, response_window  # noqa: E402
from rig.tools.bus import open_sim  # noqa: E402
from rig.tools.output import print_table  # noqa: E402

FAULT_RATE = 0.02
"""Chance per exchange of arming a fault."""
NKE_SHARE = 0.10
MAX_ANSWER_BYTES = 261


def population(baud: int) -> list[MeterProfile]:
    base = heat_meter_profile()
    return [dataclasses.replace(base, id=20_000_000 + a, address=a, baud=baud,
                                fabrication_number=30_000_000 + a, name=f"meter{a}",
                                response_delay=0.020 + 0.015 * a)
            for a in (1, 2)]


class Tap:
    """What each slave endpoint was asked to send, with the time it was queued."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, str, bytes]] = []

    def wrap(self, meter: object, clock: object) -> None:
        endpoint = meter.endpoint  # type: ignore[attr-defined]
        original = endpoint.transmit
        name = endpoint.name

        def transmit(data: bytes | WireBytes, at: float | None = None) -> float:
            self.sent.append((clock.now(), name, as_wire(data).data))  # type: ignore[attr-defined]
            return original(data, at)  # type: ignore[no-any-return]

        endpoint.transmit = transmit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=100_000, help="exchanges (default 100000)")
    parser.add_argument("--ber", type=float, default=1e-4, help="bit error rate (default 1e-4)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--baud", type=int, default=2400)
    parser.add_argument("--report-every", type=int, default=0, metavar="K",
                        help="print a progress line every K exchanges")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    profiles = population(args.baud)
    bus = open_sim(profiles, baud=args.baud, seed=args.seed, retries=0)
    tap = Tap()
    for meter in bus.meters:
        tap.wrap(meter, bus.clock)
    bus.sim.set_noise(args.ber, args.ber)
    bus.sim.noise(True)
    bound = (frame_time(5, args.baud) + response_window(args.baud)[1]
             + frame_time(MAX_ANSWER_BYTES, args.baud) + 0.5 + 10 * char_time(args.baud))
    counts: collections.Counter[str] = collections.Counter()
    armed: collections.Counter[str] = collections.Counter()
    started = time.process_time()
    recent: collections.deque[bytes] = collections.deque(maxlen=8)
    try:
        for i in range(args.n):
            if rng.random() < FAULT_RATE:
                meter = rng.choice(bus.meters)
                kind = rng.choice(sorted(FAULTS))
                meter.core.arm(kind, rng.randint(1, 3))
                armed[kind] += 1
            address = rng.choice(profiles).address
            request = link.snd_nke(address) if rng.random() < NKE_SHARE else link.req_ud2(address)
            mark = len(tap.sent)
            t0 = bus.clock.now()
            exchange = bus.master.run(request)
            elapsed = bus.clock.now() - t0
            if elapsed > bound:
                counts["HUNG"] += 1
            for _, _, data in tap.sent[mark:]:
                recent.append(data)
            received = exchange.raw
            sent_now = [data for _, _, data in tap.sent[mark:]]
            if exchange.outcome in (Outcome.ACK, Outcome.FRAME):
                assert exchange.frame is not None
                taken = encode(exchange.frame)
                if taken not in recent:
                    counts["WRONG"] += 1
                    print(f"WRONG at {i}: accepted {taken.hex(' ')}, slaves sent "
                          f"{[d.hex(' ') for d in sent_now]}")
                elif getattr(exchange.frame, "a", address) != address:
                    # another address's answer taken as this slave's
                    counts["WRONG"] += 1
                    print(f"WRONG at {i}: accepted an answer naming address "
                          f"{exchange.frame.a} for address {address}")
                else:
                    counts["accepted"] += 1
            elif exchange.outcome is Outcome.WRONG_ADDRESS:
                # a valid frame naming another address: rejected as not this slave's answer
                counts["wrong address, rejected"] += 1
            elif exchange.outcome is Outcome.NONE:
                counts["no answer"] += 1
            elif any(not ch.ok for ch in exchange.chars) or received not in sent_now:
                counts["corrupted, rejected"] += 1
            elif _valid_frame(received):
                # a whole valid frame, unflagged, rejected: late (outside the window) or a bug
                late = exchange.first_char_time is not None and (
                    exchange.first_char_time - exchange.request_end > response_window(args.baud)[1])
                counts["valid frame rejected: late" if late else "valid frame rejected"] += 1
            else:
                counts["broken frame as sent, rejected (truncated, ...)"] += 1
            if args.report_every and (i + 1) % args.report_every == 0:
                print(f"{i + 1} exchanges, {dict(counts)}", flush=True)
    finally:
        bus.close()
    cpu = time.process_time() - started
    wrong = counts["WRONG"] + counts["HUNG"]
    rows = sorted(counts.items())
    print_table(("outcome", "count"), rows,
                title=f"soak: {args.n} exchanges at {args.baud} baud, bit error rate {args.ber:g}, "
                f"{sum(armed.values())} faults armed ({', '.join(f'{k} {v}' for k, v in sorted(armed.items()))}), "
                f"{cpu:.0f} s CPU")
    print(f"soak: {args.n} exchanges, {wrong} wrong")
    return 0 if wrong == 0 else 1


def _valid_frame(data: bytes) -> bool:
    try:
        decode(data)
    except Exception:  # noqa: BLE001 - any decode failure means "not a valid frame"
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
