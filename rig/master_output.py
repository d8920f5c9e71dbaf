"""What a master DUT printed, read back: the telegrams it read, the slaves it found.

``output = "json"``: the shape of the project's own tools (``mbus-rig read --json``: one
decode object per telegram, one per line; ``mbus-rig scan --json``: one object with
``found``). ``output = "libmbus-xml"``: libmbus's tools -- the XML of
``mbus-serial-request-data[-multi-reply]`` (plain or normalised: ``<MBusData>`` with
``<SlaveInformation>`` and ``<DataRecord>``), the lines of ``mbus-serial-scan`` ("Found a M-Bus
device at address N", "Collision at address N") and of ``mbus-serial-scan-secondary``
("Found a device on secondary address ID..."). ``output = "none"``: nothing is read; the
master is judged from the wire alone.

Records come out in the project's vocabulary (function names, base units) where the output
says them, and ``None`` where it does not: a judge compares only what a master reports.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from protocol.errors import MBusRigError


class MasterOutputError(MBusRigError):
    """The master's output is not what its rig file declares (``output = ...``)."""


@dataclass(frozen=True, slots=True)
class ReportedRecord:
    """One data record as a master reported it (None: the output does not say)."""

    function: str | None
    storage: int | None
    tariff: int | None
    subunit: int | None
    quantity: str | None
    unit: str | None
    value: Any
    raw: Any = None

    @property
    def manufacturer_block(self) -> bool:
        """The DIF 0F / 1F pseudo-record (manufacturer data, more records follow)."""
        return self.function in ("manufacturer specific", "more records follow")


@dataclass(frozen=True, slots=True)
class ReportedTelegram:
    id: str | None
    manufacturer: str | None
    version: int | None
    medium: int | None
    records: tuple[ReportedRecord, ...]


@dataclass(frozen=True, slots=True)
class ReportedSlave:
    """A slave a scan reported: primary ``address`` or ``secondary`` (16 hex digits);
    ``status`` "ok", "collision" or the master's own word for trouble."""

    address: int | None = None
    secondary: str | None = None
    status: str = "ok"


@dataclass(frozen=True, slots=True)
class MasterReport:
    telegrams: tuple[ReportedTelegram, ...] = ()
    slaves: tuple[ReportedSlave, ...] = ()


READ_OPERATIONS = ("read", "read_secondary")
SCAN_OPERATIONS = ("scan", "scan_secondary")


def parse_output(output: str, operation: str, text: str) -> MasterReport:
    """The report in ``text`` (what the master printed on stdout) of ``operation``."""
    if output == "none" or operation not in READ_OPERATIONS + SCAN_OPERATIONS:
        return MasterReport()
    if output == "json":
        return _json_telegrams(text) if operation in READ_OPERATIONS else _json_scan(text)
    if output == "libmbus-xml":
        if operation in READ_OPERATIONS:
            return libmbus_telegrams(text)
        return _libmbus_scan(text)
    raise MasterOutputError(f"output {output!r} is not one of json, libmbus-xml, none")


# --- the project's JSON ----------------------------------------------------------------------


def _json_values(text: str) -> list[Any]:
    """Every JSON value in ``text``: one per line, or one document spread over lines."""
    stripped = text.strip()
    if not stripped:
        return []
    try:
        return [json.loads(stripped)]
    except json.JSONDecodeError:
        pass
    values = []
    for number, line in enumerate(stripped.splitlines(), 1):
        if line.strip():
            try:
                values.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise MasterOutputError(f"line {number} is not JSON ({exc.msg}): "
                                        f"{line[:80]!r}") from None
    return values


def _json_telegrams(text: str) -> MasterReport:
    telegrams = []
    for value in _json_values(text):
        for item in value if isinstance(value, list) else [value]:
            telegrams.append(json_telegram(item))
    return MasterReport(telegrams=tuple(telegrams))


def json_telegram(item: Any) -> ReportedTelegram:
    """One telegram in the decode JSON shape (protocol.app.json_view)."""
    if not isinstance(item, Mapping) or not isinstance(item.get("records"), list):
        raise MasterOutputError(f"a telegram object needs a 'records' list: {str(item)[:80]}")
    header = item.get("header") if isinstance(item.get("header"), Mapping) else {}
    records = []
    for rec in item["records"]:
        if not isinstance(rec, Mapping):
            raise MasterOutputError(f"a record is not an object: {str(rec)[:80]}")
        records.append(ReportedRecord(
            function=_opt(rec, "function", str), storage=_opt(rec, "storage", int),
            tariff=_opt(rec, "tariff", int), subunit=_opt(rec, "subunit", int),
            quantity=_opt(rec, "quantity", str), unit=_opt(rec, "unit", str),
            value=rec.get("value"), raw=rec.get("raw")))
    return ReportedTelegram(_opt(header, "id", str), _opt(header, "manufacturer", str),
                            _opt(header, "version", int), _opt(header, "medium", int),
                            tuple(records))


def _opt(mapping: Any, key: str, typ: type) -> Any:
    value = mapping.get(key) if isinstance(mapping, Mapping) else None
    if typ is int and isinstance(value, bool):
        return None
    return value if isinstance(value, typ) else None


def _json_scan(text: str) -> MasterReport:
    slaves: list[ReportedSlave] = []
    for value in _json_values(text):
        found = value.get("found") if isinstance(value, Mapping) else None
        if not isinstance(found, list):
            raise MasterOutputError(f"a scan result needs a 'found' list: {str(value)[:80]}")
        for item in found:
            if not isinstance(item, Mapping):
                raise MasterOutputError(f"a found slave is not an object: {str(item)[:80]}")
            slave = item.get("slave") if isinstance(item.get("slave"), Mapping) else {}
            secondary = _opt(item, "secondary", str) or _opt(slave, "secondary", str)
            slaves.append(ReportedSlave(address=_opt(item, "address", int),
                                        secondary=(secondary or None),
                                        status=_opt(item, "status", str) or "ok"))
        for mask in value.get("unresolved") or ():
            slaves.append(ReportedSlave(secondary=str(mask), status="collision"))
    return MasterReport(slaves=tuple(slaves))


# --- libmbus ---------------------------------------------------------------------------------

LIBMBUS_FUNCTIONS = {
    "Instantaneous value": "instantaneous", "Actual value": "instantaneous",
    "Maximum value": "maximum", "Minimum value": "minimum",
    "Value during error state": "error", "Manufacturer specific": "manufacturer specific",
    "More records follow": "more records follow",
}
LIBMBUS_UNITS = {"°C": "degC", "Â°C": "degC", "-": "", "Units for H.C.A.": ""}
"""libmbus's normalised unit text -> this project's base unit (the rest are the same)."""
_SCAN_FOUND = re.compile(r"Found a M-Bus device at address (\d+)")
_SCAN_COLLISION = re.compile(r"Collision at address (\d+)")
_SEARCH_FOUND = re.compile(r"Found a device on secondary address ([0-9A-Fa-f]{16})")


def libmbus_telegrams(text: str) -> MasterReport:
    """The ``<MBusData>`` documents in ``text`` (libmbus declares ISO-8859-1 but writes the
    degree sign in UTF-8; both read)."""
    documents = re.findall(r"<MBusData>.*?</MBusData>", text, flags=re.S)
    if not documents:
        raise MasterOutputError("no <MBusData> document in the output")
    telegrams = []
    for doc in documents:
        try:
            root = ET.fromstring(doc)
        except ET.ParseError as exc:
            raise MasterOutputError(f"the <MBusData> XML does not parse: {exc}") from None
        telegrams.append(_libmbus_telegram(root))
    return MasterReport(telegrams=tuple(telegrams))


def _libmbus_telegram(root: ET.Element) -> ReportedTelegram:
    info = root.find("SlaveInformation")
    records = tuple(_libmbus_record(r) for r in root.iter("DataRecord"))
    if info is None:
        return ReportedTelegram(None, None, None, None, records)
    return ReportedTelegram(
        _text(info, "Id"), _text(info, "Manufacturer"), _int(_text(info, "Version")), None,
        records)


def _libmbus_record(rec: ET.Element) -> ReportedRecord:
    function = _text(rec, "Function")
    unit_text = _text(rec, "Unit")
    quantity = _text(rec, "Quantity")
    value_text = _text(rec, "Value") or ""
    mapped = LIBMBUS_FUNCTIONS.get(function or "", function)
    normalised = quantity is not None
    if normalised or mapped in ("manufacturer specific", "more records follow"):
        unit = LIBMBUS_UNITS.get(unit_text or "", unit_text)
        value: Any = _number_or_text(value_text)
        raw = None
    else:  # the plain XML: numbers as sent, the unit text with its scale ("Energy (kWh)");
        # dates and texts as in the normalised form
        parsed = _number_or_text(value_text)
        unit, value, raw = (None, parsed, None) if isinstance(parsed, str) else (None, None,
                                                                                 parsed)
    return ReportedRecord(function=mapped, storage=_int(_text(rec, "StorageNumber")),
                          tariff=_int(_text(rec, "Tariff")), subunit=_int(_text(rec, "Device")),
                          quantity=quantity, unit=unit, value=value, raw=raw)


def _text(element: ET.Element, tag: str) -> str | None:
    found = element.find(tag)
    return None if found is None else (found.text or "").strip()


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _number_or_text(text: str) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text.removesuffix("Z")  # libmbus marks meter-local times as UTC
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() \
        else number


def _libmbus_scan(text: str) -> MasterReport:
    slaves = [ReportedSlave(address=int(m.group(1))) for m in _SCAN_FOUND.finditer(text)]
    slaves += [ReportedSlave(address=int(m.group(1)), status="collision")
               for m in _SCAN_COLLISION.finditer(text)]
    slaves += [ReportedSlave(secondary=m.group(1).upper()) for m in _SEARCH_FOUND.finditer(text)]
    return MasterReport(slaves=tuple(slaves))


# --- comparing a report with what was sent ------------------------------------------------------


def values_agree(reported: Any, sent: Any) -> bool:
    """A reported value against the value sent (this project's decoding): numbers to 1e-6
    relative (real32 values printed by other decoders; libmbus prints six decimals: 5e-7
    absolute), dates and times in ISO 8601 (with or without seconds or a trailing Z), text
    exactly (letter case aside)."""
    if isinstance(sent, bool) or isinstance(reported, bool):
        return bool(reported == sent)
    if isinstance(sent, int | float) and isinstance(reported, int | float):
        return math.isclose(float(reported), float(sent), rel_tol=1e-6, abs_tol=5e-7)
    if isinstance(sent, str) and isinstance(reported, str):
        mine, theirs = reported.removesuffix("Z"), sent
        try:  # the same date or time, written with or without seconds
            return dt.datetime.fromisoformat(mine) == dt.datetime.fromisoformat(theirs)
        except ValueError:
            return mine.lower() == theirs.lower()
    if isinstance(sent, int | float) and isinstance(reported, str):
        try:
            return values_agree(float(reported), sent)
        except ValueError:
            return False
    return bool(reported == sent)


def record_differences(reported: ReportedRecord, sent: ReportedRecord) -> list[str]:
    """What a reported record gets wrong about the sent one (only what it reports)."""
    problems = []
    for name in ("function", "storage", "tariff", "subunit", "unit"):
        mine, theirs = getattr(reported, name), getattr(sent, name)
        if mine is not None and mine != theirs:
            problems.append(f"{name} {mine!r}, sent {theirs!r}")
    if reported.value is not None and not values_agree(reported.value, sent.value):
        problems.append(f"value {reported.value!r}, sent {sent.value!r}")
    if reported.value is None and reported.raw is not None and not values_agree(
            reported.raw, sent.raw):
        problems.append(f"raw value {reported.raw!r}, sent {sent.raw!r}")
    if reported.value is None and reported.raw is None and sent.value is not None:
        problems.append(f"no value, sent {sent.value!r}")
    return problems


def data_records(records: Iterable[ReportedRecord]) -> list[ReportedRecord]:
    """The data records, without the DIF 0F / 1F block (masters list it or not)."""
    return [r for r in records if not r.manufacturer_block]


def telegram_differences(reported: ReportedTelegram, sent: ReportedTelegram) -> list[str]:
    """What a reported telegram gets wrong: header fields it reports, the number of data
    records, and each record."""
    problems = []
    for name in ("id", "manufacturer", "version"):
        mine, theirs = getattr(reported, name), getattr(sent, name)
        if mine is not None and theirs is not None and str(mine).lstrip("0") != str(
                theirs).lstrip("0"):
            problems.append(f"header {name} {mine!r}, sent {theirs!r}")
    mine_records, sent_records = data_records(reported.records), data_records(sent.records)
    if len(mine_records) != len(sent_records):
        problems.append(f"{len(mine_records)} records, {len(sent_records)} sent")
        return problems
    for index, (mine, theirs) in enumerate(zip(mine_records, sent_records, strict=True)):
        problems += [f"record {index} ({theirs.quantity}): {p}"
                     for p in record_differences(mine, theirs)]
    return problems
