"""A tiny outside M-Bus slave for the rig's own tests: stdlib only, written from the frame
formats of EN 13757-2 (docs/mbus-facts.md "Frames"), sharing no code with the project.

    python tiny_slave.py TTY --address A [--die-on-ci CI] [--exit-after N]

It answers SND_NKE and SND_UD at its address with E5 and REQ_UD2 with one RSP_UD (CI 72,
fixed header, no records), 10 ms after the request. ``--die-on-ci 5F`` makes it raise on a
SND_UD with that CI, as a Python slave with an unhandled case does; ``--exit-after N`` makes
it exit with status 3 after N frames at its address (a crashing firmware).
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import time
import tty

ACK = b"\xe5"
HEADER = bytes.fromhex("78563412 2D2C 01 04 00 00 0000")  # 12345678 KAM v1 heat


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def rsp_ud(address: int, access: int) -> bytes:
    body = bytes([0x08, address, 0x72]) + HEADER[:8] + bytes([access & 0xFF]) + HEADER[9:]
    return bytes([0x68, len(body), len(body), 0x68]) + body + bytes([checksum(body), 0x16])


def frames(buffer: bytearray):
    """Take complete, checked frames off the front of ``buffer``; drop garbage."""
    while buffer:
        if buffer[0] == 0x10:
            if len(buffer) < 5:
                return
            frame = bytes(buffer[:5])
            if frame[4] == 0x16 and checksum(frame[1:3]) == frame[3]:
                del buffer[:5]
                yield frame
                continue
        elif buffer[0] == 0x68:
            if len(buffer) < 4:
                return
            length = buffer[1]
            if buffer[2] == length and buffer[3] == 0x68 and length >= 3:
                if len(buffer) < length + 6:
                    return
                frame = bytes(buffer[:length + 6])
                if frame[-1] == 0x16 and checksum(frame[4:-2]) == frame[-2]:
                    del buffer[:length + 6]
                    yield frame
                    continue
        del buffer[:1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("tty")
    parser.add_argument("--address", type=int, default=5)
    parser.add_argument("--die-on-ci", type=lambda text: int(text, 16), default=None)
    parser.add_argument("--exit-after", type=int, default=None)
    args = parser.parse_args()
    fd = os.open(args.tty, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    print(f"tiny slave at address {args.address} on {args.tty}", flush=True)
    buffer = bytearray()
    served = access = 0
    while True:
        if not select.select([fd], [], [], 1.0)[0]:
            continue
        buffer += os.read(fd, 256)
        for frame in frames(buffer):
            c, a = (frame[1], frame[2]) if frame[0] == 0x10 else (frame[4], frame[5])
            if a != args.address:
                continue
            print("got", frame.hex(" "), flush=True)
            served += 1
            if args.exit_after is not None and served > args.exit_after:
                print(f"exiting after {args.exit_after} frames", flush=True)
                return 3
            answer = b""
            if frame[0] == 0x10 and c == 0x40:
                answer = ACK
            elif frame[0] == 0x10 and c & 0x4F == 0x4B:
                access += 1
                answer = rsp_ud(args.address, access)
            elif frame[0] == 0x68 and c & 0x4F == 0x43:
                if frame[6] == args.die_on_ci:
                    raise ValueError(f"no handler for CI {frame[6]:02X}")
                answer = ACK
            if answer:
                time.sleep(0.010)  # inside the response window, past its 11 bit times
                os.write(fd, answer)


if __name__ == "__main__":
    sys.exit(main())
