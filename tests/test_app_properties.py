"""Property tests: build -> encode -> decode round trips, and decoding never crashes."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import frames
from protocol.app import (
    FUNCTIONS,
    ApplicationReset,
    BaudSwitch,
    DataField,
    Header,
    Record,
    Selection,
    decode_data,
    decode_request,
    decode_telegram,
    encode_request,
    encode_variable_data,
    parse_records,
    telegram_json,
)
from protocol.app.dates import decode_time_point, encode_time_point
from protocol.app.vif import describe
from protocol.errors import MBusRigError
from protocol.frames import ControlFrame, LongFrame

EXAMPLES = settings(max_examples=200, deadline=None)

INT_BITS = {DataField.INT8: 8, DataField.INT16: 16, DataField.INT24: 24, DataField.INT32: 32,
            DataField.INT48: 48, DataField.INT64: 64}
BCD_DIGITS = {DataField.BCD2: 2, DataField.BCD4: 4, DataField.BCD6: 6, DataField.BCD8: 8,
              DataField.BCD12: 12}
NUMERIC_VIFS = [v for v in range(0x00, 0x7B) if v not in (0x6C, 0x6D, 0x6F, 0x7C)]
FD_CODES = [c for c in range(0x00, 0x78) if describe(0xFD, (c,)).kind == "number"]
FB_CODES = [c for c in range(0x00, 0x80) if describe(0xFB, (c,)).kind == "number"]
COMBINABLE = [0x20, 0x22, 0x2D, 0x3B, 0x3C, 0x40, 0x48, 0x73, 0x74, 0x7D]


@st.composite
def raw_values(draw: st.DrawFn, data_field: int) -> object:
    if data_field in INT_BITS:
        bits = INT_BITS[data_field]
        return draw(st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1))
    if data_field in BCD_DIGITS:
        digits = BCD_DIGITS[data_field]
        return draw(st.integers(-(10 ** (digits - 1)) + 1, 10**digits - 1))
    if data_field == DataField.REAL32:
        return draw(st.floats(width=32, allow_nan=False, allow_infinity=False))
    if data_field == DataField.VARIABLE:
        return draw(st.one_of(
            st.text(st.characters(max_codepoint=0xFF), max_size=40),
            st.integers(-(10**18) + 1, 10**18 - 1),
        ))
    return None


@st.composite
def records(draw: st.DrawFn, msb_first: bool = False) -> tuple[Record, object]:
    data_field = draw(st.sampled_from([f for f in DataField if f != DataField.SPECIAL]))
    table = draw(st.sampled_from(["main", "fd", "fb", "text"]))
    vifes: list[int] = []
    plain_text = None
    if table == "main":
        vif = draw(st.sampled_from(NUMERIC_VIFS))
    elif table == "fd":
        vif, vifes = 0xFD, [draw(st.sampled_from(FD_CODES))]
    elif table == "fb":
        vif, vifes = 0xFB, [draw(st.sampled_from(FB_CODES))]
    else:
        vif = 0x7C
        plain_text = draw(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E),
                                  max_size=12))
    vifes += draw(st.lists(st.sampled_from(COMBINABLE), max_size=3))
    raw = draw(raw_values(data_field))
    record = Record.build(
        data_field, vif, raw, vifes=vifes, plain_text=plain_text, msb_first=msb_first,
        function=draw(st.sampled_from(FUNCTIONS)), storage=draw(st.integers(0, 2**20)),
        tariff=draw(st.integers(0, 2**10)), subunit=draw(st.integers(0, 2**5)),
    )
    return record, raw


@EXAMPLES
@given(records())
def test_a_built_record_decodes_to_itself_with_its_raw_value(built):
    record, raw = built
    parsed, tail, more = parse_records(record.encode(), 19)
    assert parsed == (record,) and tail is None and not more
    if isinstance(raw, int) and record.data_field != DataField.VARIABLE:
        assert record.raw == raw
        info = describe(record.vif, record.vifes, record.plain_text)
        if info.kind == "number":
            assert record.value == info.apply(raw)
    if isinstance(raw, str):
        assert record.value == raw
    if isinstance(raw, float):
        assert record.raw == raw


HEADERS = st.builds(Header, st.integers(0, 99_999_999), st.integers(0, 0xFFFF),
                    st.integers(0, 255), st.integers(0, 255), st.integers(0, 255),
                    st.integers(0, 255), st.integers(0, 0xFFFF))


@EXAMPLES
@given(HEADERS,
       st.booleans().flatmap(lambda msb: st.tuples(st.just(msb),
                                                   st.lists(records(msb_first=msb), max_size=4))),
       st.booleans(), st.binary(max_size=8))
def test_a_telegram_decodes_to_what_was_encoded(header, built, more, manufacturer):
    msb_first, pairs = built
    items = tuple(record for record, _ in pairs)
    data = encode_variable_data(header, items, more_records_follow=more,
                                manufacturer_data=manufacturer, msb_first=msb_first)
    telegram = decode_data(0x76 if msb_first else 0x72, data)
    assert telegram.header == header
    assert telegram.records == items
    assert telegram.more_records_follow == more
    assert telegram.manufacturer_data == manufacturer


@EXAMPLES
@given(st.datetimes(min_value=dt.datetime(1981, 1, 1), max_value=dt.datetime(2080, 12, 31)))
def test_time_points_round_trip(moment):
    assert decode_time_point(encode_time_point(moment, 4)) == moment.strftime("%Y-%m-%dT%H:%M:00")
    assert decode_time_point(encode_time_point(moment, 6)) == moment.strftime("%Y-%m-%dT%H:%M:%S")
    assert decode_time_point(encode_time_point(moment.date(), 2)) == moment.strftime("%Y-%m-%d")


REQUESTS = st.one_of(
    st.builds(ApplicationReset, st.none() | st.integers(0, 255)),
    st.builds(Selection, st.binary(min_size=8, max_size=8),
              st.none() | st.binary(min_size=4, max_size=4), st.sampled_from([0x52, 0x56])),
    st.builds(BaudSwitch, st.sampled_from([300, 600, 1200, 2400, 4800, 9600, 19200, 38400])),
)


@EXAMPLES
@given(REQUESTS)
def test_requests_round_trip(request):
    ci, data = encode_request(request)
    assert decode_request(ci, data) == request


def _decode_any(raw: bytes) -> None:
    try:
        frame = frames.decode(raw)
        telegram = None
        if isinstance(frame, LongFrame | ControlFrame):
            telegram = decode_telegram(frame)
        json.dumps(telegram_json(frame, telegram), allow_nan=False)
    except MBusRigError:
        pass


@EXAMPLES
@given(st.binary(max_size=260))
def test_random_bytes_raise_only_project_errors(raw):
    _decode_any(raw)


@EXAMPLES
@given(st.sampled_from([0x50, 0x51, 0x52, 0x56, 0x70, 0x71, 0x72, 0x73, 0x76, 0x77, 0x78, 0x7A,
                        0xB8, 0x99]),
       st.binary(max_size=252))
def test_random_application_data_raises_only_project_errors(ci, data):
    body = bytes((0x08, 0x01, ci)) + data
    _decode_any(bytes((0x68, len(body), len(body), 0x68)) + body
                + bytes((frames.checksum(body), 0x16)))
