"""Fuzz frames.decode + the application layer with random and mutated frames.

Inputs (seeded, reproducible): a third random byte strings and random well-formed frames
(valid L and checksum, random CI and data, so they reach the application layer), two
thirds mutations of the libmbus corpus telegrams (bit flips, byte changes, inserts,
deletes, truncation, spliced chunks; L and checksum repaired half the time).

Asserts that every input either decodes (and its JSON serialises) or raises an
MBusRigError subclass, and that each finishes within --limit seconds (a SIGALRM watchdog).
Prints the error counts by class, then ``fuzz_decode: N inputs`` as the last line.

    .venv/bin/python benchmarks/fuzz_decode.py [--count 1000000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
from collections import Counter
from pathlib import Path
from types import FrameType

from hardware.clock import WallClock
from protocol import frames
from protocol.app import decode_telegram, telegram_json
from protocol.errors import MBusRigError
from protocol.frames import ControlFrame, LongFrame

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "libmbus"
CIS = [0x50, 0x51, 0x52, 0x56, 0x70, 0x71, 0x72, 0x73, 0x76, 0x77, 0x78, 0x7A, 0xB8, 0xBD]


class Hang(Exception):
    """Raised by the watchdog when one input takes longer than the limit."""


def _watchdog(_signum: int, _frame: FrameType | None) -> None:
    raise Hang


def corpus_frames() -> list[bytes]:
    out = []
    for path in sorted(CORPUS.glob("*/*.hex")):
        try:
            out.append(frames.parse_hex(path.read_text()))
        except ValueError:
            continue
    if not out:
        sys.exit(f"fuzz_decode: no corpus telegrams found under {CORPUS}")
    return out


def long_frame(body: bytes) -> bytes:
    """Wrap C, A, CI, data with valid L and checksum (L mod 256 if too long)."""
    length = len(body) & 0xFF
    return bytes((0x68, length, length, 0x68)) + body + bytes((frames.checksum(body), 0x16))


def random_input(rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        return rng.randbytes(rng.randrange(0, 64))
    data = rng.randbytes(rng.randrange(0, 252))
    return long_frame(bytes((rng.choice((0x08, 0x18, 0x53)), rng.randrange(256),
                             rng.choice(CIS))) + data)


def mutate(rng: random.Random, seed: bytes, corpus: list[bytes]) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randrange(1, 5)):
        kind = rng.randrange(7)
        at = rng.randrange(len(data)) if data else 0
        if kind == 0 and data:
            data[at] ^= 1 << rng.randrange(8)
        elif kind == 1 and data:
            data[at] = rng.choice((0x00, 0x0F, 0x1F, 0x2F, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif kind == 2:
            data[at:at] = rng.randbytes(rng.randrange(1, 8))
        elif kind == 3 and data:
            del data[at : at + rng.randrange(1, 8)]
        elif kind == 4:
            del data[rng.randrange(len(data) + 1):]
        elif kind == 5:
            other = rng.choice(corpus)
            start = rng.randrange(len(other))
            data[at:at] = other[start : start + rng.randrange(1, 24)]
        else:
            data[at:at] = bytes((rng.choice((0x80, 0xFD, 0xFB, 0xFC, 0x8D)),)) * rng.randrange(
                1, 14)
    if rng.random() < 0.5 and len(data) >= 7:
        return long_frame(bytes(data[4:-2]))
    return bytes(data)


def decode_one(raw: bytes) -> None:
    frame = frames.decode(raw)
    telegram = decode_telegram(frame) if isinstance(frame, LongFrame | ControlFrame) else None
    json.dumps(telegram_json(frame, telegram), allow_nan=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=int, default=5, help="seconds one input may take")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    corpus = corpus_frames()
    counts: Counter[str] = Counter()
    clock = WallClock()
    signal.signal(signal.SIGALRM, _watchdog)
    started = clock.now()
    for n in range(args.count):
        raw = random_input(rng) if n % 3 == 0 else mutate(rng, rng.choice(corpus), corpus)
        signal.alarm(args.limit)
        try:
            decode_one(raw)
            counts["decoded"] += 1
        except MBusRigError as exc:
            counts[type(exc).__name__] += 1
        except Hang:
            print(f"HANG (over {args.limit} s) on input {n}: {raw.hex(' ')}")
            return 1
        except Exception as exc:  # the finding this benchmark exists for
            print(f"UNEXPECTED {type(exc).__name__}: {exc} on input {n}: {raw.hex(' ')}")
            return 1
        finally:
            signal.alarm(0)
    elapsed = clock.now() - started
    for name, count in sorted(counts.items(), key=lambda item: -item[1]):
        print(f"  {name}: {count}")
    print(f"time: {elapsed:.1f} s ({args.count / elapsed:.0f} inputs/s), seed {args.seed}")
    print(f"fuzz_decode: {args.count} inputs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
