"""``mbus-rig decode [FILE...]``: decode telegrams written as hex bytes.

Each file (standard input when no file is given, or for ``-``) holds hexadecimal bytes as in
the libmbus corpus ("68 3C 3C 68 08 ..."), one or more whole frames one after another (E5,
short, control or long frames). For every frame one JSON object is printed on its own line
(shape: protocol.app.json_view, documented in docs/decoding.md); ``--table``
prints each telegram as a readable table instead. A frame that does not decode gives one
line on standard error naming the file, the frame, the failed check and the byte offset
(from the frame start); the rest of that file is skipped and the next file is read. Binary
input (not hex text) is refused with one line and never printed. Exit status 1 if anything
failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import IO, Any, TextIO

from protocol import frames
from protocol.app import decode_telegram, telegram_json
from protocol.errors import MBusRigError
from protocol.frames import ControlFrame, LongFrame
from protocol.names import describe_frame
from rig.cli import HelpWithExamples, examples
from rig.tools.output import print_line
from rig.tools.telegram_table import print_telegram

STDIN = "-"
FRAME_STARTS = (frames.ACK, frames.SHORT_START, frames.LONG_START)
TEXT_BYTES = frozenset(range(0x20, 0x7F)) | frozenset(b"\t\n\r\f\v")
"""What hex text is made of (printable ASCII and white space); anything else is binary."""
BINARY_HINT = ("decode reads frames written as hex text, e.g. 68 04 04 68 08 01 71 02 7C 16; "
               "for a binary capture: xxd -p FILE | mbus-rig decode")


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


def _read(name: str, stdin: IO[Any]) -> bytes:
    """The bytes of a file, or of standard input (its binary buffer where it has one)."""
    if name != STDIN:
        with open(name, "rb") as handle:
            return handle.read()
    source = getattr(stdin, "buffer", stdin)
    data = source.read()
    return data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data)


def binary_offset(data: bytes) -> int | None:
    """Offset of the first byte that hex text never contains, else None."""
    return next((i for i, byte in enumerate(data) if byte not in TEXT_BYTES), None)


def _print_table(number: int, label: str, raw: bytes, out: TextIO) -> None:
    frame = frames.decode(raw)
    title = f"{label}, frame {number}"
    if isinstance(frame, LongFrame | ControlFrame):
        print_telegram(frame, decode_telegram(frame), title=title, stream=out)
    else:
        print_line(f"{title}: {describe_frame(frame)}", stream=out)


def decode_source(name: str, out: TextIO, err: TextIO, stdin: IO[Any], *,
                  table: bool = False) -> bool:
    """Decode one file (or standard input); True when every frame in it decoded."""
    label = "<stdin>" if name == STDIN else name
    try:
        data = _read(name, stdin)
    except OSError as exc:
        print(f"mbus-rig decode: {label}: cannot read: {exc.strerror or exc}", file=err)
        return False
    offset = binary_offset(data)
    if offset is not None:
        print(f"mbus-rig decode: {label}: binary data (byte {offset} is 0x{data[offset]:02X}), "
              f"not hex text; {BINARY_HINT}", file=err)
        return False
    try:
        raw_bytes = frames.parse_hex(data.decode("ascii"))
    except ValueError as exc:
        print(f"mbus-rig decode: {label}: not hex bytes: {exc}", file=err)
        return False
    if not raw_bytes:
        print(f"mbus-rig decode: {label}: no bytes", file=err)
        return False
    for number, (start, raw) in enumerate(split_frames(raw_bytes), start=1):
        try:
            if table:
                _print_table(number, label, raw, out)
            else:
                print(json.dumps(decode_frame(raw), allow_nan=False), file=out)
        except MBusRigError as exc:
            print(f"mbus-rig decode: {label}: frame {number} (file byte {start}): {exc}",
                  file=err)
            return False
    return True


def run(args: argparse.Namespace) -> int:
    ok = True
    for name in args.files or [STDIN]:
        ok = decode_source(name, sys.stdout, sys.stderr, sys.stdin, table=args.table) and ok
    return 0 if ok else 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "decode", help="decode telegrams (hex bytes) into JSON lines or tables",
        formatter_class=HelpWithExamples,
        description="Decode M-Bus frames written as hex bytes (as in the libmbus corpus): one "
                    "JSON line per frame, or a readable table per telegram with --table. "
                    "Reads standard input when no file is given (or for '-'). Binary input "
                    "is refused.",
        epilog=examples("mbus-rig decode telegram.hex",
                        "echo '68 04 04 68 08 01 71 02 7C 16' | mbus-rig decode --table",
                        "xxd -p capture.bin | mbus-rig decode"),
    )
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help="file of hex bytes, or - for standard input (default: standard "
                             "input)")
    parser.add_argument("--table", action="store_true",
                        help="print each telegram as a table of its records instead of JSON")
    parser.set_defaults(handler=run)
