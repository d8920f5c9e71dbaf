"""The libmbus corpus (tests/data/libmbus, vendored from libmbus): every telegram, header and record.

Each test-frames/NAME.hex is decoded and compared with libmbus's NAME.norm.xml: header fields
and, for every record, value and unit. Where this project follows EN 13757-3 and libmbus
does not, the disagreement is listed in DISAGREEMENTS (and tests/corpus_disagreements.md)
with both sides' values, and the test checks exactly that disagreement.

Run ``.venv/bin/python tests/test_corpus.py`` for the agreement figures.
"""

from __future__ import annotations

import math
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from protocol import frames
from protocol.app import decode_telegram, telegram_json
from protocol.errors import (
    LengthRangeError,
    MBusRigError,
    StartByteError,
    TooManyDifesError,
    TooManyVifesError,
    TruncatedDataError,
)
from protocol.frames import ControlFrame, LongFrame

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "libmbus"
TEST_FRAMES = CORPUS / "test-frames"

# libmbus unit text -> this project's base unit text. The .norm.xml files say ISO-8859-1 but
# hold UTF-8, so the degree sign reads as "Â°".
UNITS = {"Â°C": "degC", "°C": "degC", "-": "", "Units for H.C.A.": ""}
# libmbus medium wording -> medium byte (the header's medium is compared by code).
MEDIA = {
    "Other": 0x00, "Oil": 0x01, "Electricity": 0x02, "Gas": 0x03, "Heat: Outlet": 0x04,
    "Steam": 0x05, "Warm water (30-90Â°C)": 0x06, "Warm water (30-90°C)": 0x06, "Water": 0x07,
    "Heat Cost Allocator": 0x08, "Heat / Cooling load meter": 0x0D, "Cold water": 0x16,
}
MANUFACTURER_FUNCTIONS = {"Manufacturer specific", "More records follow"}


@dataclass(frozen=True)
class Disagreement:
    """One record where this project and libmbus differ, with both sides as decoded."""

    reason: str
    ours: tuple[Any, str]  # (value, unit) this project gives
    libmbus: tuple[str, str]  # (Value text, Unit text) in the .norm.xml


PLAIN_TEXT = "plain-text VIF: the ASCII text is the unit (EN 13757-3 6.4.3); libmbus gives unit \"-\""
FIXED = ("fixed data structure: counter normalised to m^3 (unit code 29 = 1e-3 m^3, 3E = same "
         "unit, historic); libmbus prints the raw count with unit text")

DISAGREEMENTS: dict[tuple[str, int], Disagreement] = {
    ("EDC", 17): Disagreement(PLAIN_TEXT, (3571, "C"), ("3571.000000", "-")),
    ("EDC", 18): Disagreement(PLAIN_TEXT, (413, "C"), ("413.000000", "-")),
    ("EDC", 19): Disagreement(PLAIN_TEXT, (1, "c"), ("1.000000", "-")),
    ("EDC", 20): Disagreement(PLAIN_TEXT, (1, "c"), ("1.000000", "-")),
    ("ELV-Elvaco-CMa10", 1): Disagreement(PLAIN_TEXT, (54.1, "%RH"), ("54.100000", "-")),
    ("ELV-Elvaco-CMa10", 2): Disagreement(PLAIN_TEXT, (33.64, "%RH"), ("33.640000", "-")),
    ("ELV-Elvaco-CMa10", 3): Disagreement(PLAIN_TEXT, (73.63, "%RH"), ("73.630000", "-")),
    ("example_binary16_lvar", 0): Disagreement(
        PLAIN_TEXT, ("173ed1dcb31ab53d0193a6272a5b0796", "PW"),
        ("17 3E D1 DC B3 1A B5 3D 01 93 A6 27 2A 5B 07 96", "-")),
    ("itron_cyble_m-bus_v1.4_cold_water", 1): Disagreement(
        PLAIN_TEXT, ("          ", "cust. ID"), ("          ", "-")),
    ("itron_cyble_m-bus_v1.4_cold_water", 3): Disagreement(
        PLAIN_TEXT, (4050, "bat. time"), ("4050.000000", "-")),
    ("itron_cyble_m-bus_v1.4_water", 1): Disagreement(
        PLAIN_TEXT, ("TEST CYBLE", "cust. ID"), ("TEST CYBLE", "-")),
    ("itron_cyble_m-bus_v1.4_water", 3): Disagreement(
        PLAIN_TEXT, (4338, "bat. time"), ("4338.000000", "-")),
    ("manual_frame2", 0): Disagreement(FIXED, (0.001, "m^3"), ("1", "l")),
    ("manual_frame2", 1): Disagreement(FIXED, (0.135, "m^3"), ("135", "reserved but historic")),
}


def _hex_either_order(ours: str, theirs: str) -> bool:
    """Manufacturer bytes: 26 libmbus decodings store them in the old byte order."""
    compact = theirs.replace(" ", "").lower()
    try:
        reversed_ours = bytes.fromhex(ours)[::-1].hex()
    except ValueError:
        return False
    return compact in (ours.lower(), reversed_ours)


def value_agrees(ours: Any, theirs: str, function: str) -> bool:
    """Our JSON value against libmbus's Value text."""
    if ours is None:
        return theirs.strip() == ""
    if isinstance(ours, bool):
        return False
    if isinstance(ours, int | float):
        try:
            number = float(theirs)
        except ValueError:
            return False
        return math.isclose(ours, number, rel_tol=1e-9, abs_tol=5e-7)  # libmbus prints %f
    if function in MANUFACTURER_FUNCTIONS:
        return _hex_either_order(ours, theirs)
    if theirs == ours or theirs.rstrip("Z") == ours:  # libmbus adds Z to local meter time
        return True
    return _hex_either_order(ours, theirs)


@dataclass
class Comparison:
    header_problems: list[str]
    record_count: tuple[int, int]  # (ours, libmbus)
    disagreeing: dict[int, tuple[tuple[Any, str], tuple[str, str]]]
    records: int


def compare(name: str) -> Comparison:
    frame = frames.decode(frames.parse_hex((TEST_FRAMES / f"{name}.hex").read_text()))
    assert isinstance(frame, LongFrame | ControlFrame)
    ours = telegram_json(frame, decode_telegram(frame))
    root = ET.fromstring((TEST_FRAMES / f"{name}.norm.xml").read_bytes())
    info = root.find("SlaveInformation")
    assert info is not None
    header = ours["header"]
    problems = []

    def check(field: str, mine: Any, theirs: str | None) -> None:
        if theirs is not None and str(mine) != theirs.strip():
            problems.append(f"{field}: ours {mine!r}, libmbus {theirs!r}")

    check("Id", header["id"].lstrip("0"), (info.findtext("Id") or "").lstrip("0"))
    check("Manufacturer", header["manufacturer"], info.findtext("Manufacturer"))
    check("Version", header["version"], info.findtext("Version"))
    check("Medium", header["medium"], str(MEDIA.get(info.findtext("Medium") or "", "?")))
    check("AccessNumber", header["access_number"], info.findtext("AccessNumber"))
    check("Status", f"{header['status']:02X}", info.findtext("Status"))
    if header["signature"] is not None:
        check("Signature", f"{header['signature']:04X}", info.findtext("Signature"))
    theirs = root.findall("DataRecord")
    disagreeing = {}
    for index, (mine, record) in enumerate(zip(ours["records"], theirs, strict=False)):
        value_text = record.findtext("Value") or ""
        unit_text = (record.findtext("Unit") or "").strip()
        function = record.findtext("Function") or ""
        same_value = value_agrees(mine["value"], value_text, function)
        same_unit = UNITS.get(unit_text, unit_text) == mine["unit"]
        if not (same_value and same_unit):
            disagreeing[index] = ((mine["value"], mine["unit"]), (value_text, unit_text))
    return Comparison(problems, (len(ours["records"]), len(theirs)), disagreeing, len(theirs))


def _names() -> list[str]:
    names = sorted(p.name[: -len(".hex")] for p in TEST_FRAMES.glob("*.hex"))
    return names or ["<corpus missing at " + str(TEST_FRAMES) + ">"]


NAMES = _names()


def test_corpus_is_there() -> None:
    assert len(NAMES) >= 30, f"libmbus corpus not found at {TEST_FRAMES}"


@pytest.mark.parametrize("name", NAMES)
def test_telegram_matches_libmbus_or_documented_disagreement(name: str) -> None:
    result = compare(name)
    assert result.header_problems == []
    assert result.record_count[0] == result.record_count[1], "record counts differ"
    expected = {i: d for (n, i), d in DISAGREEMENTS.items() if n == name}
    assert set(result.disagreeing) == set(expected)
    for index, disagreement in expected.items():
        (our_value, our_unit), libmbus = result.disagreeing[index]
        assert libmbus == disagreement.libmbus
        assert our_unit == disagreement.ours[1]
        if isinstance(our_value, float):
            assert our_value == pytest.approx(disagreement.ours[0])
        else:
            assert our_value == disagreement.ours[0]


def test_disagreements_are_documented() -> None:
    text = (Path(__file__).parent / "corpus_disagreements.md").read_text()
    for name in {n for n, _ in DISAGREEMENTS}:
        assert name in text


ERROR_FRAMES = CORPUS / "error-frames"
APPLICATION_ERRORS = {
    "application_busy": 8, "buffer_too_long": 2, "error": 0, "premature_end_of_record": 4,
    "too_many_difes": 5, "too_many_readouts": 9, "too_many_records": 3, "too_many_vifes": 6,
    "unimplemented_ci": 1, "unspecified_error": 0,
}
LIBMBUS_ERROR_TEXT = {
    0: "Unspecified error", 1: "Unimplemented CI-Field", 2: "Buffer too long, truncated",
    3: "Too many records", 4: "Premature end of record", 5: "More than 10 DIFE",
    6: "More than 10 VIFE", 8: "Application busy", 9: "Too many readouts",
}
REJECTED: dict[str, type[MBusRigError]] = {
    "premature_end_of_data1": TruncatedDataError, "premature_end_of_data2": TruncatedDataError,
    "premature_end_of_dif1": TruncatedDataError, "premature_end_of_dif2": TruncatedDataError,
    "premature_end_of_var_vif1": TruncatedDataError, "premature_end_of_vif1": TruncatedDataError,
    "too_long_var_vif": TruncatedDataError, "too_many_dife": TooManyDifesError,
    "too_many_vife": TooManyVifesError, "too_short_header": TruncatedDataError,
}


def _frame(path: Path) -> frames.Frame:
    return frames.decode(frames.parse_hex(path.read_text()))


def test_every_error_frame_has_an_expectation() -> None:
    names = {p.name[:-4] for p in ERROR_FRAMES.glob("*.hex")}
    assert names == set(APPLICATION_ERRORS) | set(REJECTED)


@pytest.mark.parametrize("name", sorted(APPLICATION_ERRORS))
def test_application_error_frames(name: str) -> None:
    frame = _frame(ERROR_FRAMES / f"{name}.hex")
    assert isinstance(frame, LongFrame | ControlFrame)
    telegram = decode_telegram(frame)
    code = APPLICATION_ERRORS[name]
    assert telegram.application_error == code
    xml = ERROR_FRAMES / f"{name}.xml"
    if xml.exists():
        error = ET.fromstring(xml.read_bytes()).findtext("SlaveInformation/Error") or ""
        assert error.startswith(LIBMBUS_ERROR_TEXT[code])
        assert telegram.application_error_name is not None
        assert telegram.application_error_name.lower().split()[0] in error.lower()


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_rejected_error_frames(name: str) -> None:
    raw = frames.parse_hex((ERROR_FRAMES / f"{name}.hex").read_text())
    frame = frames.decode(raw)
    assert isinstance(frame, LongFrame | ControlFrame)
    with pytest.raises(REJECTED[name]) as caught:
        decode_telegram(frame)
    assert 7 <= caught.value.offset <= len(raw) - 2  # inside the data, frame-relative


UNSUPPORTED = CORPUS / "unsupported-frames"


def test_unsupported_frames_are_clear_errors_or_decode() -> None:
    """What libmbus cannot decode: frame errors, a truncated fixed structure, requests."""
    outcomes: dict[str, Any] = {}
    for path in sorted(UNSUPPORTED.glob("*.hex")):
        try:
            frame = _frame(path)
            assert isinstance(frame, LongFrame | ControlFrame)
            outcomes[path.name[:-4]] = decode_telegram(frame)
        except MBusRigError as exc:
            outcomes[path.name[:-4]] = type(exc)
    assert outcomes["invalid_length"] is LengthRangeError  # L = 0
    assert outcomes["invalid_length2"] is TruncatedDataError  # CI 73 with 15 of 16 bytes
    assert outcomes["manual_frame1"] is StartByteError  # the file starts "D 04 04 68"
    assert outcomes["manual_frame4"].request.new_address == 8  # SND_UD CI 51: 01 7A 08
    five = outcomes["manual_frame5"].records  # CI 51: enhanced identification record
    assert [r.quantity for r in five] == ["(Enhanced) Identification"]
    assert five[0].data == bytes.fromhex("0403020124400104")
    six = outcomes["manual_frame6"].records  # CI 51: identification + energy
    assert [(r.quantity, r.value) for r in six] == [("(Enhanced) Identification", 12345678),
                                                    ("Energy", 107000)]
    svm = outcomes["svm_f22_telegram2"]  # header, then DIF 1F and 206 manufacturer bytes
    assert svm.records == () and svm.more_records_follow and len(svm.manufacturer_data) == 206


def figures() -> tuple[int, int, int, int]:
    """(telegrams agreeing, telegrams, records agreeing, records)."""
    telegrams = agreeing = records = records_agreeing = 0
    for name in NAMES:
        result = compare(name)
        telegrams += 1
        records += result.records
        records_agreeing += result.records - len(result.disagreeing)
        agreeing += not result.disagreeing and not result.header_problems
    return agreeing, telegrams, records_agreeing, records


if __name__ == "__main__":
    a, t, ra, r = figures()
    print(f"telegrams agreeing with libmbus: {a}/{t}; records agreeing: {ra}/{r}")
    sys.exit(0)
