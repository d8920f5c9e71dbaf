"""Reading what a master DUT printed (rig/master_output.py): the project's JSON, libmbus's XML
(taken from the libmbus corpus in tests/data/libmbus) and libmbus's scan lines; comparing a
report with the telegrams sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocol import frames
from protocol.app import decode_telegram, telegram_json
from rig.master_output import (
    MasterOutputError,
    ReportedRecord,
    json_telegram,
    libmbus_telegrams,
    parse_output,
    record_differences,
    telegram_differences,
    values_agree,
)
from tests.test_corpus import DISAGREEMENTS

CORPUS = Path(__file__).resolve().parent / "data" / "libmbus" / "test-frames"
NAMES = sorted(p.name[:-4] for p in CORPUS.glob("*.hex"))
WITH_XML = [n for n in NAMES if (CORPUS / f"{n}.norm.xml").exists()]


def _sent(name: str):
    frame = frames.decode(frames.parse_hex((CORPUS / f"{name}.hex").read_text()))
    return json_telegram(telegram_json(frame, decode_telegram(frame)))


def test_the_corpus_is_here():
    assert len(WITH_XML) >= 30


@pytest.mark.parametrize("name", WITH_XML)
def test_libmbus_normalised_xml_agrees_with_what_was_sent(name):
    """libmbus's normalised XML of each corpus telegram, read as a master's report, agrees
    with the telegram sent, except at most in the records where libmbus departs from
    EN 13757-3 (tests/corpus_disagreements.md)."""
    report = parse_output("libmbus-xml", "read", (CORPUS / f"{name}.norm.xml").read_text())
    (reported,) = report.telegrams
    problems = telegram_differences(reported, _sent(name))
    expected = {i for n, i in DISAGREEMENTS if n == name}
    assert all(p.startswith("record ") for p in problems), problems
    differing = {int(p.split()[1]) for p in problems}
    assert differing <= expected, problems


@pytest.mark.parametrize("name", ["ACW_Itron-BM-plus-m", "EMU_EMU-Professional-375-M-Bus",
                                  "kamstrup_382_005"])
def test_libmbus_plain_xml_agrees_in_raw_values(name):
    """The plain XML (``mbus-serial-request-data`` without normalising) gives raw values and
    scaled unit texts: the raw values are compared, the units are not read."""
    report = libmbus_telegrams((CORPUS / f"{name}.xml").read_text())
    (reported,) = report.telegrams
    assert all(r.unit is None for r in reported.records if not r.manufacturer_block)
    assert any(r.raw is not None for r in reported.records)
    assert telegram_differences(reported, _sent(name)) == []


def test_libmbus_multi_reply_output_is_one_telegram_per_document():
    doc = (CORPUS / "ACW_Itron-BM-plus-m.norm.xml").read_text()
    report = parse_output("libmbus-xml", "read", doc + "\n" + doc)
    assert len(report.telegrams) == 2


def test_a_changed_value_is_a_difference():
    text = (CORPUS / "ACW_Itron-BM-plus-m.norm.xml").read_text()
    changed = text.replace("<Value>54.321000</Value>", "<Value>54.322000</Value>")
    (reported,) = parse_output("libmbus-xml", "read", changed).telegrams
    problems = telegram_differences(reported, _sent("ACW_Itron-BM-plus-m"))
    assert problems == ["record 1 (Volume): value 54.322, sent 54.321"]


def test_libmbus_scan_lines():
    text = ("Found a M-Bus device at address 1\nCollision at address 3\n"
            "Found a M-Bus device at address 5\n"
            "Found a device on secondary address 1234567843040104 [using address mask "
            "1FFFFFFFFFFFFFFF]\n")
    slaves = parse_output("libmbus-xml", "scan", text).slaves
    assert [(s.address, s.status) for s in slaves if s.address is not None] == [
        (1, "ok"), (5, "ok"), (3, "collision")]
    assert [s.secondary for s in slaves if s.secondary] == ["1234567843040104"]


def test_project_json_read_and_scan():
    frame = frames.decode(frames.parse_hex((CORPUS / "kamstrup_382_005.hex").read_text()))
    line = json.dumps(telegram_json(frame, decode_telegram(frame)))
    report = parse_output("json", "read", line + "\n" + line + "\n")
    assert len(report.telegrams) == 2
    assert report.telegrams[0].manufacturer == "KAM"
    scan = json.dumps({"found": [{"address": 1, "status": "ok", "slave": {"secondary": "X"}},
                                 {"address": 3, "status": "collision", "slave": None}],
                       "unresolved": ["12345678FFFFFFFF"]}, indent=2)
    slaves = parse_output("json", "scan", scan).slaves
    assert [(s.address, s.status) for s in slaves] == [(1, "ok"), (3, "collision"),
                                                       (None, "collision")]


@pytest.mark.parametrize("output, text, problem", [
    ("json", "Traceback (most recent call last):\n", "line 1 is not JSON"),
    ("json", '{"records": 5}', "needs a 'records' list"),
    ("libmbus-xml", "Failed to receive M-Bus response frame.\n", "no <MBusData>"),
    ("libmbus-xml", "<MBusData><DataRecord></MBusData>", "does not parse"),
])
def test_output_that_is_not_what_the_rig_file_says_is_one_line(output, text, problem):
    with pytest.raises(MasterOutputError, match=problem):
        parse_output(output, "read", text)


def test_nothing_is_read_for_output_none_or_control_operations():
    assert parse_output("none", "read", "garbage").telegrams == ()
    assert parse_output("json", "set_address", "not json").telegrams == ()


def test_only_what_a_master_reports_is_compared():
    sent = ReportedRecord("maximum", 1, 2, 1, "Energy", "Wh", 1000.0, 1)
    assert record_differences(ReportedRecord(None, None, None, None, None, None, 1000), sent) == []
    assert record_differences(ReportedRecord("instantaneous", None, None, None, None, None,
                                             1000), sent) == [
        "function 'instantaneous', sent 'maximum'"]
    assert record_differences(ReportedRecord(None, None, None, None, None, None, None), sent) == [
        "no value, sent 1000.0"]


@pytest.mark.parametrize("reported, sent, same", [
    (54.321, 54.321000001, True), ("54.321000", 54.321, True), (1, 2, False),
    ("2014-03-13T11:11:00Z", "2014-03-13T11:11:00", True), ("abc", "abd", False),
])
def test_values_agree(reported, sent, same):
    assert values_agree(reported, sent) is same


def test_dates_agree_however_they_are_written():
    assert values_agree("2026-11-24T10:00", "2026-11-24T10:00:00")
    assert values_agree("2026-11-24", "2026-11-24")
    assert not values_agree("2026-11-24T10:01", "2026-11-24T10:00:00")
