"""Meter profiles: validation messages, the built-in heat meter, the shipped TOML files."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.profile import PROFILE_DIR, load_profile, shipped_profile
from protocol.app.telegram import Telegram, decode_data
from protocol.errors import ConfigError
from protocol.meter import (
    HEAT_METER,
    MeterProfile,
    heat_meter_profile,
    profile_from_dict,
    quantity_vif,
    rsp_ud_data,
)


def telegram(profile: MeterProfile, page: int = 0) -> Telegram:
    return decode_data(0x72, rsp_ud_data(profile, page, 0))


def heat(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(HEAT_METER)
    data.update(changes)
    return data


def error_of(data: dict[str, Any], source: str = "meter.toml") -> str:
    with pytest.raises(ConfigError) as info:
        profile_from_dict(data, source)
    return str(info.value)


def test_heat_meter_identity_and_link() -> None:
    p = heat_meter_profile()
    assert (p.id, p.manufacturer, p.version, p.medium) == (12345678, "ABC", 1, 4)
    assert str(p.secondary) == "1234567843040104"  # ABC = 0x0443, on the wire 43 04
    assert p.address == 1 and p.baud == 2400 and p.bauds == (300, 2400, 9600)
    assert p.link.ci56 == "select" and p.link.accept_fcv0 and p.link.baud_fallback is None


def test_heat_meter_records_decode_to_the_quantities() -> None:
    p = heat_meter_profile()
    t = telegram(p)
    assert not t.more_records_follow and t.manufacturer_data == b""
    assert t.header is not None and t.header.secondary_address == p.secondary
    found = {(r.quantity, r.storage): (r.value, r.unit) for r in t.records}
    assert found[("Energy", 0)] == (12345000, "Wh")
    assert found[("Volume", 0)] == (pytest.approx(456.78), "m^3")
    assert found[("Power", 0)] == (12300, "W")
    assert found[("Volume flow", 0)] == (pytest.approx(0.512), "m^3/h")
    assert found[("Flow temperature", 0)] == (pytest.approx(70.5), "degC")
    assert found[("Return temperature", 0)] == (pytest.approx(45.2), "degC")
    assert found[("Temperature difference", 0)] == (pytest.approx(25.3), "K")
    assert found[("Time point (date & time)", 0)][0] == "2026-11-24T10:00:00"
    assert found[("Error flags", 0)][0] == 0
    assert found[("Energy", 1)] == (11000000, "Wh")
    assert found[("Time point (date)", 1)][0] == "2026-10-31"


def test_shipped_heat_meter_toml_equals_the_built_in() -> None:
    assert load_profile(PROFILE_DIR / "heat-meter.toml") == heat_meter_profile()
    assert shipped_profile("heat-meter") == PROFILE_DIR / "heat-meter.toml"


def test_multi_telegram_profile_pages_end_with_1f_but_the_last() -> None:
    p = load_profile(shipped_profile("multi-telegram"))
    assert len(p.pages) == 3
    flags = [telegram(p, i).more_records_follow for i in range(3)]
    assert flags == [True, True, False]
    assert telegram(p, 2).manufacturer_data == bytes.fromhex("01020304")
    storages = [r.storage for i in range(3) for r in telegram(p, i).records if r.storage]
    assert sorted(set(storages)) == list(range(1, 25))


@pytest.mark.parametrize(("changes", "path", "allowed"), [
    ({"bauds": [2400, 2401]}, "bauds[1]", "300, 600, 1200, 2400, 4800, 9600, 19200, 38400"),
    ({"baud": 4800}, "baud", "300, 2400, 9600"),
    ({"address": 251}, "address", "0..250"),
    ({"address": "one"}, "address", "integer 0..250"),
    ({"id": 123456789}, "id", "0..99999999"),
    ({"manufacturer": "AB1"}, "manufacturer", "three letters"),
    ({"medium": "lava"}, "medium", "heat"),
    ({"status": 256}, "status", "0..255"),
    ({"response_delay": 0.01}, "response_delay", "0.0367..0.0844 s"),
    ({"link": {"ci56": "maybe"}}, "link.ci56", "select, deselect"),
    ({"link": {"accept_fcv0": "yes"}}, "link.accept_fcv0", "true or false"),
    ({"colour": "red"}, "colour", "unknown field"),
    ({"pages": []}, "pages", "at least one"),
])
def test_bad_fields_name_file_path_and_allowed_values(changes: dict[str, Any], path: str,
                                                      allowed: str) -> None:
    message = error_of(heat(**changes))
    assert message.startswith(f"meter.toml: {path}: ")
    assert allowed in message


@pytest.mark.parametrize(("record", "path", "text"), [
    ({"quantity": "energy", "exponent": 9, "type": "int32", "value": 1}, "quantity",
     "-3, -2, -1, 0, 1, 2, 3, 4"),
    ({"quantity": "energy", "type": "int32", "value": 1}, "quantity", "needs an exponent"),
    ({"quantity": "energy", "unit": "cal", "exponent": 0, "type": "int32", "value": 1},
     "quantity", "Wh, J"),
    ({"quantity": "entropy", "type": "int32", "value": 1}, "quantity", "unknown quantity"),
    ({"quantity": "volume", "exponent": -3, "type": "int8", "value": 1000}, "value",
     "does not fit"),
    ({"quantity": "volume", "exponent": -3, "type": "int16", "value": 1.5}, "value",
     "integer"),
    ({"type": "date", "value": "yesterday"}, "value", "not an ISO date"),
    ({"quantity": "volume", "exponent": -3, "type": "int128", "value": 1}, "type", "int64"),
    ({"vif": "zz", "type": "int8", "value": 1}, "vif", "hex text"),
    ({"quantity": "volume", "exponent": -3, "vif": "13", "type": "int8", "value": 1}, "",
     "exactly one of quantity"),
    ({"quantity": "volume", "exponent": -3, "type": "int8", "value": 1, "storage": -1},
     "storage", "0..2199023255551"),
    ({"quantity": "volume", "exponent": -3, "type": "int8", "value": 1, "function": "avg"},
     "function", "instantaneous, maximum, minimum, error"),
    ({"type": "date", "value": "2026-10-31", "step": 1}, "step", "only counts move"),
    ({"quantity": "volume", "exponent": -3, "type": "int32", "value": 1, "step": 0.5}, "step",
     "an integer"),
    ({"quantity": "volume", "exponent": -3, "type": "int32", "value": 1, "step": "1"}, "step",
     "an integer"),
])
def test_bad_records_name_the_record(record: dict[str, Any], path: str, text: str) -> None:
    data = heat(pages=[{"records": [record]}])
    message = error_of(data)
    where = "pages[0].records[0]" + (f".{path}" if path else "")
    assert message.startswith(f"meter.toml: {where}: "), message
    assert text in message


def test_literal_vif_and_manufacturer_data() -> None:
    p = profile_from_dict(heat(pages=[{"records": [{"vif": "FD 17", "type": "int16",
                                                    "value": 3}],
                                       "manufacturer_data": "AA BB"}]), "x")
    t = telegram(p)
    assert t.records[0].quantity == "Error flags" and t.records[0].value == 3
    assert t.manufacturer_data == b"\xaa\xbb" and not t.more_records_follow


def test_page_too_long_for_one_telegram() -> None:
    record = {"quantity": "volume", "exponent": -3, "type": "int64", "value": 1}
    message = error_of(heat(pages=[{"records": [record] * 30}]))
    assert message.startswith("meter.toml: pages[0]: ") and "at most 252" in message


def test_quantity_vif_reads_the_app_tables() -> None:
    assert quantity_vif("energy", "Wh", 3) == b"\x06"
    assert quantity_vif("Flow temperature", None, -1) == b"\x5a"
    assert quantity_vif("error_flags", None, None) == b"\xfd\x17"
    assert quantity_vif("operating_time", "h", None) == b"\x26"


def test_load_profile_reports_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('id = 1\nmanufacturer = "ABC\n')
    with pytest.raises(ConfigError, match=r"profile .*bad\.toml: invalid TOML: .*line 2"):
        load_profile(bad)
    with pytest.raises(ConfigError, match=r"profile .*missing\.toml: not found"):
        load_profile(tmp_path / "missing.toml")
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('id = 1\nmanufacturer = "ABC"\naddress = 300\n[[pages]]\nrecords = []\n'
                     'manufacturer_data = "00"\n')
    with pytest.raises(ConfigError, match=r"wrong\.toml: address: 300 is out of range"):
        load_profile(wrong)


def test_shipped_profile_unknown_name_lists_the_shipped() -> None:
    with pytest.raises(ConfigError, match="heat-meter, multi-telegram"):
        shipped_profile("gas-meter")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=8)
FIELDS = [*HEAT_METER, "colour"]
RECORD_FIELDS = ["quantity", "unit", "exponent", "vif", "type", "value", "function", "storage",
                 "tariff", "subunit"]


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(FIELDS), value=json_values,
       record_field=st.sampled_from(RECORD_FIELDS), record_value=json_values)
def test_any_wrong_value_is_a_config_error_never_a_crash(field: str, value: object,
                                                         record_field: str,
                                                         record_value: object) -> None:
    for data in (heat(**{field: value}),
                 heat(pages=[{"records": [{**HEAT_METER["pages"][0]["records"][0],
                                           record_field: record_value}]}])):
        try:
            profile = profile_from_dict(data, "fuzz.toml")
        except ConfigError as exc:
            assert str(exc).startswith("fuzz.toml")
        else:
            assert rsp_ud_data(profile, 0, 0)
