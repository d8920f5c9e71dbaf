"""The meters a master scenario puts on the bus: profiles, populations and scripted answers.

Everything here is M-Bus data (profiles from protocol.meter, frames as bytes); the rig puts
it on its bus (``meters.add``, ``meters.scripted``). Meters run at every M-Bus rate, so a
scenario runs at whatever rate the master is tested at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from protocol import frames
from protocol.fields import ADDRESS_SELECTED, BROADCAST_ANSWER, Function
from protocol.frames import ACK, LongFrame, ShortFrame, encode
from protocol.identity import SecondaryAddress, manufacturer_code, manufacturer_letters
from protocol.meter import MeterProfile, heat_meter_profile, rsp_ud_data
from protocol.timing import BAUD_RATES, bit_time, response_window
from tests_hil._population import FIRST_FABRICATION, adversarial

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "libmbus" / "test-frames"
"""The libmbus telegram corpus in this repository (real meters' RSP_UDs)."""

CORPUS_TELEGRAMS = ("ACW_Itron-BM-plus-m", "EFE_Engelmann-WaterStar",
                    "EMU_EMU-Professional-375-M-Bus", "SEN_Pollustat", "ZRM_Minol-Minocal-C2",
                    "gmc_emmod206", "kamstrup_382_005")
"""Corpus telegrams replayed to the master (single telegrams, no DIF 1F): water, heat and
electricity meters; BCD, integer and real values, dates, every function, storage numbers,
tariffs and subunits, VIF extensions."""

METER_ADDRESS = 5
DELAY_S = 0.045
"""The meters' response delay: inside the response window at every rate (300 Bd: 36.7 ms ..
1.15 s; 38400 Bd: 0.3 ms .. 58.6 ms)."""


def _all_rates(profile: MeterProfile, **changes: object) -> MeterProfile:
    settings: dict[str, object] = {"bauds": tuple(BAUD_RATES), "response_delay": DELAY_S,
                                   **changes}
    return replace(profile, **settings)  # type: ignore[arg-type]


def single_meter(address: int = METER_ADDRESS, **changes: object) -> MeterProfile:
    """The built-in heat meter (one telegram) at ``address``, every rate."""
    return _all_rates(heat_meter_profile(), address=address, name="heat-meter", **changes)


def shipped(name: str, address: int = METER_ADDRESS) -> MeterProfile:
    """A shipped profile (hardware/profiles) at ``address``, every rate."""
    from hardware.profile import read_profile

    return _all_rates(read_profile(name), address=address)


def record_variety(address: int = METER_ADDRESS) -> MeterProfile:
    """A meter whose records use every function, storage numbers, tariffs, subunits and the
    data types (integer, BCD, real, text, dates)."""
    from protocol.meter import profile_from_dict

    return profile_from_dict({
        "name": "record-variety", "id": 31415926, "manufacturer": "VAR", "version": 3,
        "medium": "electricity", "address": address, "bauds": list(BAUD_RATES),
        "baud": 2400, "response_delay": DELAY_S,
        "pages": [{"records": [
            {"quantity": "energy", "unit": "Wh", "exponent": 3, "type": "bcd12",
             "value": 123456789012},
            {"quantity": "energy", "unit": "Wh", "exponent": 3, "type": "int32",
             "value": 4000, "tariff": 1},
            {"quantity": "energy", "unit": "Wh", "exponent": 3, "type": "int32",
             "value": 2000, "tariff": 2, "subunit": 1},
            {"quantity": "power", "unit": "W", "exponent": 0, "type": "real32",
             "value": 1234.5},
            {"quantity": "power", "unit": "W", "exponent": 0, "type": "int24",
             "value": 5000, "function": "maximum"},
            {"quantity": "power", "unit": "W", "exponent": 0, "type": "int16",
             "value": 10, "function": "minimum"},
            {"quantity": "power", "unit": "W", "exponent": 0, "type": "int16",
             "value": 0, "function": "error"},
            {"quantity": "volume", "exponent": -3, "type": "int64", "value": 9876543210},
            {"quantity": "energy", "unit": "Wh", "exponent": 3, "type": "int48",
             "value": 3000, "storage": 5},
            {"type": "date", "value": "2026-06-30", "storage": 5},
            {"type": "datetime", "value": "2026-11-24T10:00"},
            {"quantity": "fabrication_number", "type": "bcd8", "value": 11223344},
        ]}],
    }, "record-variety meter")


def late_delay(baud: int, slack: float) -> float:
    """A response delay at the end of the response window (330 bit times + 50 ms), less one
    bit time and the rig's timing ``slack`` (0 on virtual time)."""
    return response_window(baud)[1] - bit_time(baud) - slack


# --- populations for the secondary search -------------------------------------------------


def _meters(base: MeterProfile, secondaries: list[SecondaryAddress], *,
            delays: list[float], fabrication: bool = True) -> list[MeterProfile]:
    return [replace(base, id=s.id, manufacturer=manufacturer_letters(s.manufacturer),
                    version=s.version, medium=s.medium, address=0, name=f"slave{i}",
                    fabrication_number=FIRST_FABRICATION + i if fabrication else None,
                    response_delay=delays[i])
            for i, s in enumerate(secondaries)]


def _spread(count: int, first: float, last: float) -> list[float]:
    step = (last - first) / max(1, count - 1)
    return [first + i * step for i in range(count)]


SEARCH_POPULATIONS = ("last_digit", "shared_prefix", "hex_fields", "merged_e5", "late", "mixed")


def search_population(kind: str, baud: int, slack: float) -> list[MeterProfile]:
    """The meters of an adversarial population for a secondary search.

    ``last_digit``: ten IDs that differ only in the last digit; ``shared_prefix``: IDs that
    share 7, 6, ... 1 leading digits; ``hex_fields``: manufacturer, version and medium with
    hex digits A-E, three slaves with one ID told apart only there (and by their
    fabrication numbers, EN 13757-3 enhanced selection); ``merged_e5``: two slaves answering in step to the bit, so their E5s
    merge into one clean E5; ``late``: slaves answering late but inside the window;
    ``mixed``: the slave suite's adversarial population of ten.
    """
    base = single_meter(0)
    window_end = response_window(baud)[1]
    early = max(22 * bit_time(baud), 0.005)  # twice the shortest legal delay
    sec = base.secondary
    if kind == "last_digit":
        ids = [SecondaryAddress(sec.id // 10 * 10 + d, sec.manufacturer, sec.version,
                                sec.medium) for d in range(10)]
        return _meters(base, ids, delays=_spread(10, early, 0.6 * window_end))
    if kind == "shared_prefix":
        ids = [sec] + [s for s in adversarial(sec, 12) if s.id != sec.id
                       and s.id // 10 != sec.id // 10]
        return _meters(base, ids, delays=_spread(len(ids), early, 0.6 * window_end))
    if kind == "hex_fields":
        man = manufacturer_code("ACJ")  # 0x046A; "ACK" is 0x046B
        ids = [SecondaryAddress(sec.id, man, 0x1A, 0x0B), SecondaryAddress(sec.id, man, 0x1A, 0x0C),
               SecondaryAddress(sec.id, manufacturer_code("ACK"), 0x1A, 0x0B),
               SecondaryAddress(sec.id + 1, man, 0x1B, 0x0B)]
        return _meters(base, ids, delays=_spread(4, early, 0.6 * window_end))
    if kind == "merged_e5":
        # IDs ...78 and ...81: in step, their E5s merge into one clean E5 and their RSP_UDs
        # AND into a frame whose checksum fails
        ids = [sec, SecondaryAddress(sec.id + 3, sec.manufacturer, sec.version, sec.medium)]
        return _meters(base, ids, delays=[early, early])
    if kind == "late":
        late = late_delay(baud, slack)
        ids = [SecondaryAddress(sec.id + 10 * i, sec.manufacturer, sec.version, sec.medium)
               for i in range(3)]
        return _meters(base, ids, delays=_spread(3, 0.8 * late, late))
    if kind == "mixed":
        ids = [sec, *adversarial(sec, 9)]
        return _meters(base, ids, delays=_spread(10, early, 0.6 * window_end))
    raise ValueError(f"unknown population {kind!r} (allowed: {', '.join(SEARCH_POPULATIONS)})")


# --- scripted answers -------------------------------------------------------------------------

Answer = Callable[[bytes], bytes | None]


def _request(raw: bytes) -> frames.Frame | None:
    try:
        return frames.decode(raw)
    except Exception:  # noqa: BLE001 - a scripted slave ignores what it cannot read
        return None


def _to(frame: frames.Frame | None, address: int) -> bool:
    a = getattr(frame, "a", None)
    return a in (address, ADDRESS_SELECTED, BROADCAST_ANSWER)


def _is(frame: frames.Frame | None, function: Function) -> bool:
    c = getattr(frame, "c", None)
    return isinstance(frame, ShortFrame) and c is not None and c & 0x4F == function & 0x4F


def telegram_of(profile: MeterProfile, page: int = 0) -> bytes:
    """The RSP_UD frame ``profile`` sends for telegram ``page`` (access number 0)."""
    return encode(LongFrame(0x08, profile.address, 0x72, rsp_ud_data(profile, page, 0)))


def replayed(telegram: bytes, address: int) -> bytes:
    """A recorded RSP_UD re-addressed to ``address`` (C 08, checksum recomputed)."""
    frame = frames.decode(telegram)
    assert isinstance(frame, LongFrame), "a replayed telegram is a long frame"
    return encode(replace(frame, c=0x08, a=address))


def corpus_telegram(name: str) -> bytes | None:
    """A corpus telegram's bytes, None when the corpus is not in this checkout."""
    path = CORPUS / f"{name}.hex"
    return frames.parse_hex(path.read_text()) if path.exists() else None


def answering(address: int, rsp_ud: Callable[[int], bytes | None]) -> Answer:
    """A slave at ``address``: E5 to SND_NKE, ``rsp_ud(n)`` to its n-th REQ_UD2 (0, 1, ...;
    None: silence), nothing to anything else."""
    count = [0]

    def answer(raw: bytes) -> bytes | None:
        frame = _request(raw)
        if not _to(frame, address):
            return None
        if _is(frame, Function.SND_NKE):
            return bytes((ACK,))
        if _is(frame, Function.REQ_UD2):
            count[0] += 1
            return rsp_ud(count[0] - 1)
        return None

    return answer


GARBAGE = bytes.fromhex("A5 5A 00 FF 13 68 02 16 E5 C3 10 7E 68 FF 00 01 16 A5")
"""What the garbage slave sends: bytes that look like the starts of frames and are none."""


def garbage(_raw: bytes) -> bytes:
    return GARBAGE


def silent(_raw: bytes) -> None:
    return None


def twice(telegram: bytes, address: int) -> Answer:
    """E5 to SND_NKE; every REQ_UD2 answered with the telegram twice, back to back."""
    return answering(address, lambda _n: telegram + telegram)
