"""Frames in M-Bus words, for messages and reports: 'REQ_UD2 A=5 FCB=1', 'SND_UD A=253
CI=52 (8 data bytes)', 'E5' (docs/mbus-facts.md "Frames": the C-field functions)."""

from __future__ import annotations

from .errors import FrameError
from .fields import FCB, FCV, PRM
from .frames import ControlFrame, Frame, LongFrame, ShortFrame, SingleChar, decode

FUNCTION_NAMES: dict[int, str] = {
    0x40: "SND_NKE", 0x53: "SND_UD", 0x43: "SND_UD (FCV=0)", 0x5B: "REQ_UD2", 0x5A: "REQ_UD1",
    0x08: "RSP_UD"}
"""C field (FCB / ACD and DFC cleared) -> function name."""


def describe_frame(frame: Frame) -> str:
    """A frame in M-Bus words: 'REQ_UD2 A=5 FCB=1', 'SND_UD A=253 CI=52', 'E5'."""
    if isinstance(frame, SingleChar):
        return "E5"
    assert isinstance(frame, ShortFrame | ControlFrame | LongFrame)
    c = frame.c
    base = c & ~FCB if c & PRM else c & 0x4F
    text = f"{FUNCTION_NAMES.get(base, f'C={c:02X}')} A={frame.a}"
    if c & PRM and c & FCV:
        text += f" FCB={int(bool(c & FCB))}"
    if isinstance(frame, ControlFrame | LongFrame):
        text += f" CI={frame.ci:02X}"
    if isinstance(frame, LongFrame) and frame.data:
        text += f" ({len(frame.data)} data bytes)"
    return text


def describe_bytes(data: bytes) -> str:
    """The frame ``data`` holds in M-Bus words, else 'N raw bytes'."""
    try:
        return describe_frame(decode(data))
    except FrameError:
        return f"{len(data)} raw byte{'s' * (len(data) != 1)}"
