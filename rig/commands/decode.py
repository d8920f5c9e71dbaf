"""``mbus-rig decode FILE... | -``: decode telegrams from files of hex bytes into JSON lines.

Each file holds hexadecimal bytes as in the libmbus corpus ("68 3C 3C 68 08 ..."), one or
more whole frames one after another (E5, short, control or long frames). For every frame one
JSON object is printed on its own line (shape: protocol.app.json_view, documented in
README.md, "Decoding telegrams"). A frame that does not decode gives one line on standard error naming
the file, the frame, the failed check and the byte offset (from the frame start); the rest of
that file is skipped and the next file is read. Exit status 1 if anything failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from protocol import frames
from protocol.app import decode_telegram, telegram_json
from protocol.errors import MBusRigError
from protocol.frames import ControlFrame, LongFrame

STDIN = "-"
FRAME_STARTS = (frames.ACK, frames.SHORT_START, frames.LONG_START)


def split_frames(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(file offset, bytes) of each frame in ``data``, cut by start byte and L field.

    Never raises: a piece that is no whole frame is yielded as the rest of the data, and
    frames.decode then names what is wrong with it.
    """
    at = 0
    while at < len(data):
        first = data[at]
        if first not in FRAME_STARTS or (first == frames.LONG_START and at + 1 >= len(data)):
            yield at, data[at:]
            return
        length = frames.frame_length(first, data[at + 1] if first == frames.LONG_START else None)
        assert length is not None
        yield at, data[at : at + length]
        at += length


def decode_frame(raw: bytes) -> dict[str, Any]:
    """One frame's JSON object; raises FrameError / ApplicationError subclasses."""
    frame = frames.decode(raw)
    telegram = decode_telegram(frame) if isinstance(frame, LongFrame | ControlFrame) else None
    return telegram_json(frame, telegram)


def _read(name: str, stdin: TextIO) -> str:
    if name == STDIN:
        return stdin.read()
    with open(name, encoding="ascii", errors="replace") as handle:
        return handle.read()


def decode_source(name: str, out: TextIO, err: TextIO, stdin: TextIO) -> bool:
    """Decode one file (or standard input); True when every frame in it decoded."""
    label = "<stdin>" if name == STDIN else name
    try:
        text = _read(name, stdin)
    except OSError as exc:
        print(f"mbus-rig decode: {label}: cannot read: {exc.strerror or exc}", file=err)
        return False
    try:
        data = frames.parse_hex(text)
    except ValueError as exc:
        print(f"mbus-rig decode: {label}: not hex bytes: {exc}", file=err)
        return False
    if not data:
        print(f"mbus-rig decode: {label}: no bytes", file=err)
        return False
    for number, (start, raw) in enumerate(split_frames(data), start=1):
        try:
            line = json.dumps(decode_frame(raw), allow_nan=False)
        except MBusRigError as exc:
            print(f"mbus-rig decode: {label}: frame {number} (file byte {start}): {exc}",
                  file=err)
            return False
        print(line, file=out)
    return True


def run(args: argparse.Namespace) -> int:
    ok = True
    for name in args.files:
        ok = decode_source(name, sys.stdout, sys.stderr, sys.stdin) and ok
    return 0 if ok else 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "decode", help="decode telegrams (hex bytes) into JSON lines",
        description="Decode M-Bus frames written as hex bytes (as in the libmbus corpus) into "
                    "one JSON line per telegram. '-' reads standard input.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="file of hex bytes, or -")
    parser.set_defaults(handler=run)
