"""Bit, character and response-window timing (EN 13757-2; docs/mbus-facts.md "Timing").

All times are in seconds. A character is 11 bit times (8E1: start, 8 data, parity, stop).
"""

from __future__ import annotations

BAUD_RATES: tuple[int, ...] = (300, 600, 1200, 2400, 4800, 9600, 19200, 38400)
"""Every baud rate EN 13757-2 allows."""

DEFAULT_BAUD = 2400
"""The most common factory rate (docs/mbus-facts.md: many meters do only 300, 2400 and 9600)."""

BITS_PER_CHAR = 11
MIN_RESPONSE_BITS = 11
"""A slave answers no sooner than 11 bit times after the master's last stop bit."""
MAX_RESPONSE_BITS = 330
MAX_RESPONSE_EXTRA_S = 0.050
"""... and no later than 330 bit times + 50 ms."""
INTER_FRAME_IDLE_BITS = 33
"""FT1.2: at least 33 bit times of idle line between frames."""


def check_baud(baud: int) -> int:
    """Return ``baud`` if it is an M-Bus rate, else raise ValueError naming the allowed ones."""
    if baud not in BAUD_RATES:
        allowed = ", ".join(str(b) for b in BAUD_RATES)
        raise ValueError(f"baud rate {baud} is not an M-Bus rate (allowed: {allowed})")
    return baud


def bit_time(baud: int) -> float:
    """One bit time at ``baud``."""
    return 1.0 / baud


def char_time(baud: int) -> float:
    """One 8E1 character (11 bit times) at ``baud``."""
    return BITS_PER_CHAR / baud


def frame_time(n_bytes: int, baud: int) -> float:
    """Time to send ``n_bytes`` back to back at ``baud``."""
    return n_bytes * char_time(baud)


def response_window(baud: int) -> tuple[float, float]:
    """(earliest, latest) start of a slave's answer after the end of the master's frame.

    11 bit times .. 330 bit times + 50 ms (2400 Bd: 4.58 ms .. 187.5 ms).
    """
    return MIN_RESPONSE_BITS / baud, MAX_RESPONSE_BITS / baud + MAX_RESPONSE_EXTRA_S


def inter_frame_idle(baud: int) -> float:
    """Minimum idle line between two frames (33 bit times)."""
    return INTER_FRAME_IDLE_BITS / baud
