"""Telegrams by CI: headers, fixed data, errors, alarms, requests, JSON, encode = decode."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol import frames
from protocol.app import (
    ApplicationReset,
    BaudSwitch,
    DataField,
    DataSend,
    FixedData,
    Header,
    Record,
    Selection,
    ShortHeader,
    Telegram,
    baud_switch_ci,
    decode_data,
    decode_request,
    decode_telegram,
    encode_application_reset,
    encode_request,
    encode_selection,
    encode_set_address,
    encode_telegram,
    encode_variable_data,
    status_names,
    telegram_frame,
    telegram_json,
)
from protocol.errors import (
    EncodeError,
    RecordError,
    TruncatedDataError,
    UnsupportedCIError,
)
from protocol.frames import ControlFrame, LongFrame
from protocol.identity import manufacturer_code

KAM = manufacturer_code("KAM")
HEADER = Header(12345678, KAM, 1, 4, access_number=5, status=0, signature=0)
TEST_FRAMES = Path(__file__).resolve().parents[1] / "tests" / "data" / "libmbus" / "test-frames"


def test_fixed_header_bytes():
    assert HEADER.encode() == bytes.fromhex("78563412 2d2c 01 04 05 00 0000")
    assert Header.decode(HEADER.encode(), 7) == HEADER
    assert HEADER.manufacturer_letters == "KAM"
    assert str(HEADER.secondary_address) == "123456782D2C0104"


def test_msb_first_variant_reverses_the_multi_byte_fields():
    data = HEADER.encode(msb_first=True)
    assert data == bytes.fromhex("12345678 2c2d 01 04 05 00 0000")
    records = (Record.build(DataField.INT32, 0x13, 54321, msb_first=True),)
    telegram = decode_data(0x76, encode_variable_data(HEADER, records, msb_first=True))
    assert telegram.header == HEADER
    assert telegram.records[0].value == pytest.approx(54.321)


def test_non_bcd_identification_is_kept_as_hex_digits():
    header = Header.decode(bytes.fromhex("3e020005 434c 12 02 13 00 0000"), 7)
    assert header.id == "0500023E"
    assert header.encode() == bytes.fromhex("3e020005 434c 12 02 13 00 0000")
    with pytest.raises(ValueError):
        _ = header.secondary_address


def test_short_header_and_no_header():
    record = Record.build(DataField.INT32, 0x13, 5)
    telegram = decode_data(0x7A, bytes.fromhex("0a 00 0000") + record.encode())
    assert telegram.header == ShortHeader(10, 0, 0)
    assert telegram.records == (record,)
    assert decode_data(0x78, record.encode()).records == (record,)
    assert encode_telegram(telegram) == bytes.fromhex("0a 00 0000") + record.encode()


@pytest.mark.parametrize(("ci", "data", "offset"), [
    (0x72, "78563412 2d2c 01", 14),
    (0x7A, "0a00", 9),
    (0x73, "78563412 0a00", 13),
])
def test_short_headers_are_premature_ends(ci, data, offset):
    with pytest.raises(TruncatedDataError) as caught:
        decode_data(ci, bytes.fromhex(data))
    assert caught.value.offset == offset


def test_fixed_data_structure_bcd_and_binary():
    data = bytes.fromhex("78563412 0a 00 e97e 01000000 35010000")  # libmbus manual_frame2
    telegram = decode_data(0x73, data)
    assert telegram.fixed == FixedData(12345678, 10, 0, 7, 0x29, 0x3E, 1, 135)
    assert encode_telegram(telegram) == data
    records = telegram_json(LongFrame(8, 5, 0x73, data), telegram)["records"]
    assert [(r["unit"], r["value"], r["storage"]) for r in records] == [
        ("m^3", 0.001, 0), ("m^3", 0.135, 1)]
    binary = FixedData(1, 2, 0x80, 2, 0x05, 0x14, -5, 70000)
    assert decode_data(0x73, binary.encode()).fixed == binary
    assert decode_data(0x77, binary.encode(msb_first=True)).fixed == binary
    with pytest.raises(RecordError):
        decode_data(0x73, data + b"\x00")
    with pytest.raises(RecordError):
        decode_data(0x73, bytes.fromhex("78563412 0a 00 e97e 0a000000 35010000"))


def test_application_errors_and_alarm():
    error = decode_telegram(LongFrame(8, 1, 0x70, b"\x08"))
    assert (error.application_error, error.application_error_name) == (8, "application busy")
    assert decode_telegram(ControlFrame(8, 1, 0x70)).application_error == 0
    assert decode_data(0x70, b"\x0c").application_error_name == "reserved error 0x0c"
    assert decode_data(0x71, b"\x02").alarm == 2
    with pytest.raises(RecordError):
        decode_data(0x70, b"\x01\x02")
    with pytest.raises(TruncatedDataError):
        decode_data(0x71, b"")
    assert encode_telegram(Telegram(0x70, application_error=3)) == b"\x03"
    assert encode_telegram(Telegram(0x71, alarm=1)) == b"\x01"


def test_unknown_ci_names_the_ci_byte():
    with pytest.raises(UnsupportedCIError) as caught:
        decode_telegram(LongFrame(8, 1, 0x99, b"\x00"))
    assert caught.value.offset == 6


def test_status_names():
    assert status_names(0) == ["ok"]
    assert status_names(0x15) == ["busy", "power low", "temporary error"]
    assert status_names(0x23) == ["abnormal condition", "manufacturer specific 0x1"]


def test_selection_requests():
    mask = bytes.fromhex("78563412 2d2c 01 04")
    assert encode_selection(mask) == mask
    enhanced = encode_selection(mask, bytes.fromhex("11223344"))
    assert enhanced == mask + bytes.fromhex("0c78 11223344")
    assert decode_request(0x52, enhanced) == Selection(mask, bytes.fromhex("11223344"))
    assert decode_request(0x56, mask) == Selection(mask, None, 0x56)
    assert encode_request(Selection(mask, None, 0x56)) == (0x56, mask)
    with pytest.raises(TruncatedDataError):
        decode_request(0x52, mask[:7])
    with pytest.raises(RecordError):
        decode_request(0x52, mask + b"\x0c\x79\x00\x00\x00\x00")
    with pytest.raises(EncodeError):
        encode_selection(mask[:7])


def test_set_address_reset_and_baud_switch_requests():
    assert encode_set_address(8) == bytes.fromhex("017a08")
    data_send = decode_request(0x51, bytes.fromhex("017a08"))
    assert isinstance(data_send, DataSend) and data_send.new_address == 8
    assert encode_request(data_send) == (0x51, bytes.fromhex("017a08"))
    assert decode_request(0x50, b"") == ApplicationReset(None)
    assert decode_request(0x50, b"\x10") == ApplicationReset(0x10)
    assert encode_application_reset(0x10) == b"\x10"
    assert decode_request(0xBB, b"") == BaudSwitch(2400)
    assert baud_switch_ci(38400) == 0xBF
    assert encode_request(BaudSwitch(300)) == (0xB8, b"")
    with pytest.raises(EncodeError):
        baud_switch_ci(1234)
    with pytest.raises(RecordError):
        decode_request(0xB8, b"\x00")
    with pytest.raises(RecordError):
        decode_request(0x50, b"\x01\x02")
    with pytest.raises(EncodeError):
        encode_set_address(256)


def test_request_telegrams_decode_from_frames():
    telegram = decode_telegram(LongFrame(0x53, 0xFE, 0x51, bytes.fromhex("017a08")))
    assert telegram.request is not None and telegram.records[0].quantity == "Bus Address"
    assert decode_telegram(ControlFrame(0x53, 1, 0xBD)).request == BaudSwitch(9600)


def test_json_of_more_records_follow_and_manufacturer_data():
    data = encode_variable_data(HEADER, [Record.build(DataField.INT8, 0x13, 1)],
                                more_records_follow=True, manufacturer_data=b"\x01\x02")
    frame = LongFrame(8, 1, 0x72, data)
    out = telegram_json(frame, decode_telegram(frame))
    assert out["more_records_follow"] is True
    assert out["records"][-1]["function"] == "more records follow"
    assert out["records"][-1]["value"] == "0102"
    empty_0f = encode_variable_data(HEADER, [], manufacturer_dif=True)
    assert empty_0f.endswith(b"\x0f")
    assert decode_data(0x72, empty_0f).manufacturer_dif


def test_json_of_frames_without_telegram():
    assert telegram_json(frames.SingleChar(), None)["frame"] == {
        "type": "ack", "c": None, "a": None, "ci": None}
    assert telegram_json(frames.ShortFrame(0x5B, 1), None)["frame"]["type"] == "short"


def test_telegram_frame_wraps_the_data():
    telegram = Telegram(0x72, HEADER, (Record.build(DataField.INT8, 0x13, 1),))
    frame = telegram_frame(telegram, a=5)
    assert decode_telegram(frames.decode(frames.encode(frame))) == telegram


@pytest.mark.parametrize("path", sorted(TEST_FRAMES.glob("*.hex")), ids=lambda p: p.stem)
def test_every_corpus_telegram_encodes_back_to_its_bytes(path):
    frame = frames.decode(frames.parse_hex(path.read_text()))
    assert isinstance(frame, LongFrame)
    telegram = decode_telegram(frame)
    encoded = encode_telegram(telegram)
    assert decode_data(frame.ci, encoded) == telegram
    # Idle fillers (DIF 2F) are dropped: LGB_G350 has two right after the header.
    expected = frame.data[:12] + frame.data[14:] if path.stem == "LGB_G350" else frame.data
    assert encoded == expected


def test_json_of_master_requests():
    mask = bytes.fromhex("78563412 ffff ff ff")
    data = encode_selection(mask, bytes.fromhex("21436587"))
    frame = LongFrame(0x53, 0xFD, 0x52, data)
    records = telegram_json(frame, decode_telegram(frame))["records"]
    assert [(r["quantity"], r["value"]) for r in records] == [
        ("Selection", "78563412ffffffff"), ("Fabrication No", "87654321")]
    reset = ControlFrame(0x53, 1, 0x50)
    assert telegram_json(reset, decode_telegram(reset))["records"][0]["quantity"] == (
        "Application reset")
    baud = ControlFrame(0x53, 1, 0xB8)
    assert [(r["value"], r["unit"]) for r in telegram_json(baud, decode_telegram(baud))[
        "records"]] == [(300, "Bd")]
