"""Adversarial slave populations for collision and search scenarios.

A secondary search is hard where IDs share long prefixes, differ only in the last digit, or
do not differ at all and only the manufacturer, version or medium tells them apart (the
hex positions libmbus never searches, docs/mbus-facts.md "What peers get wrong"). ``adversarial``
builds such a population around the DUT's own secondary address, deterministically.
"""

from __future__ import annotations

from dataclasses import replace

from protocol.identity import SecondaryAddress, manufacturer_letters
from protocol.meter import MeterProfile


def _with_digit(ident: int, position: int, digit: int) -> int:
    """``ident`` with its decimal digit ``position`` (0 = most significant of 8) replaced."""
    text = f"{ident:08d}"
    return int(text[:position] + str(digit) + text[position + 1:])


def other_byte(value: int, step: int) -> int:
    """A byte other than ``value`` and other than the FF wildcard."""
    return (value + step) % 0xFF if (value + step) % 0xFF != value else (value + 1) % 0xFF


def other_manufacturer(code: int, step: int = 1) -> int:
    """Another valid three-letter manufacturer code: the last letter moved on by ``step``."""
    last = code & 0x1F
    return (code & ~0x1F) | ((last - 1 + step) % 26 + 1)


def adversarial(dut: SecondaryAddress, count: int) -> list[SecondaryAddress]:
    """``count`` secondary addresses, all different from each other and from ``dut``.

    In this order, as far as ``count`` goes: the DUT's ID with another manufacturer, another
    version, another medium (slaves only the hex fields or the fabrication number tell
    apart); IDs that differ from the DUT only in the last digit; IDs that share 7, 6, ... 1
    leading digits with it; then IDs sharing the DUT's first four digits, spread over the
    last four (a dense block of shared prefixes).
    """
    out: list[SecondaryAddress] = []
    seen = {dut}

    def add(sec: SecondaryAddress) -> None:
        if len(out) < count and sec not in seen:
            seen.add(sec)
            out.append(sec)

    man, ver, med = dut.manufacturer, dut.version, dut.medium
    add(SecondaryAddress(dut.id, other_manufacturer(man), ver, med))
    add(SecondaryAddress(dut.id, man, other_byte(ver, 1), med))
    add(SecondaryAddress(dut.id, man, ver, other_byte(med, 1)))
    last = dut.id % 10
    for digit in range(10):
        if digit != last:
            add(SecondaryAddress(_with_digit(dut.id, 7, digit), man, ver, med))
    for shared in range(7, 0, -1):
        digit = (int(f"{dut.id:08d}"[shared]) + 5) % 10
        add(SecondaryAddress(_with_digit(dut.id, shared, digit), man, ver, med))
    prefix = dut.id // 10_000 * 10_000
    step = 0
    while len(out) < count and step < 10_000:
        add(SecondaryAddress(prefix + (step * 37) % 10_000, man, ver, med))
        step += 1
    if len(out) < count:
        raise ValueError(f"cannot build {count} adversarial secondary addresses")
    return out


FIRST_FABRICATION = 10_000_001


def as_profiles(base: MeterProfile, secondaries: list[SecondaryAddress], *,
                latest: float) -> list[MeterProfile]:
    """Meter profiles for extra slaves: ``base`` with each identity, its own fabrication
    number (real devices never share one; enhanced selection tells same-ID slaves apart),
    and its own response delay, spread evenly after the DUT's up to ``latest`` seconds.

    Real slaves never answer in step to the bit; byte-aligned answers merge by AND (docs/mbus-facts.md
    "Character and physical layer") into what can be a valid frame, which only current
    sensing tells from one answer.
    """
    step = (latest - base.response_delay) / max(1, len(secondaries))
    if step <= 0:
        raise ValueError(f"no room for other response delays between {base.response_delay} s "
                         f"and {latest} s")
    return [replace(base, id=s.id, manufacturer=manufacturer_letters(s.manufacturer),
                    version=s.version, medium=s.medium,
                    fabrication_number=FIRST_FABRICATION + i,
                    response_delay=base.response_delay + (i + 1) * step)
            for i, s in enumerate(secondaries)]
