"""The emulated meter: a profile (what the meter is and says), the application that answers
from it, and :class:`MeterCore`, the slave link engine plus armed faults and defects.

Sans-I/O (docs/design.md "Devices under test"): MeterCore takes received characters and the time
and returns timed actions; the simulated bus (hardware/sim/meter.py) and the slave-Pi agent
(TSS721A UART) bind the same core to a wire.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn

from .app import vif
from .app.header import Header
from .app.records import FUNCTIONS, Record
from .app.telegram import APPLICATION_ERRORS, encode_application_error, encode_variable_data
from .chars import RxChar
from .errors import ConfigError, FrameError
from .fields import CI, PRIMARY_MAX
from .frames import ACK, MAX_DATA, ControlFrame, LongFrame, ShortFrame, decode, encode
from .identity import SecondaryAddress, manufacturer_code, medium_of_text, name_key
from .link.slave import DEFECTS as LINK_DEFECTS
from .link.slave import (
    RspUd,
    SetBaud,
    SlaveAction,
    SlaveLink,
    SlaveSettings,
    Transmit,
)
from .timing import BAUD_RATES, char_time, inter_frame_idle, response_window

# --- the profile ---------------------------------------------------------------------------

DATA_TYPES: dict[str, int] = {
    "none": 0x0, "int8": 0x1, "int16": 0x2, "int24": 0x3, "int32": 0x4, "real32": 0x5,
    "int48": 0x6, "int64": 0x7, "bcd2": 0x9, "bcd4": 0xA, "bcd6": 0xB, "bcd8": 0xC,
    "variable": 0xD, "bcd12": 0xE,
    "date": 0x2, "datetime": 0x4,
}
"""Data type names -> DIF data field code (docs/mbus-facts.md "Application layer"); "date" is type G in
int16, "datetime" type F in int32, "variable" is LVAR text (or BCD for an integer value)."""

COUNTING_TYPES: tuple[str, ...] = ("int8", "int16", "int24", "int32", "int48", "int64",
                                   "real32", "bcd2", "bcd4", "bcd6", "bcd8", "bcd12")
"""Data types whose value is a count (a record of these may move: RecordSpec.step)."""

MAX_STORAGE = 2 ** 41 - 1  # 1 DIF bit + 4 bits in each of 10 DIFEs
MAX_TARIFF = 2 ** 20 - 1  # 2 bits per DIFE
MAX_SUBUNIT = 2 ** 10 - 1  # 1 bit per DIFE

CI56_MODES = ("select", "deselect")
"""CI 56: "select with an MSB-first mask" (libmbus, m-bus.com) or "deselect" (ABB, jMBus)."""


@dataclass(frozen=True, slots=True)
class RecordSpec:
    """One data record in plain terms (EN 13757-3 6.3).

    ``quantity`` names the VIF table entry ("energy", "volume", "flow_temperature", ...; see
    :func:`quantity_names`) with ``exponent`` its power of ten (energy exponent 3: one count
    is 10^3 Wh = 1 kWh); or ``vif`` gives the VIF and VIFE bytes literally (e.g. FD 17, error
    flags). ``value`` is what the data field holds: the count (an integer, a float for real32),
    an ISO date / date-time for "date" / "datetime", text for "variable", None for "none".
    ``step`` (counts only) is what the value grows by with every new telegram: a counter that
    moves between readouts, as a real meter's does (a repeat with the same FCB is the link's
    cached copy and does not move); 0 keeps it fixed.
    """

    data_type: str
    value: int | float | str | None
    quantity: str | None = None
    exponent: int | None = None
    vif: bytes | None = None
    function: str = "instantaneous"
    storage: int = 0
    tariff: int = 0
    subunit: int = 0
    step: int | float = 0

    def moved(self, telegrams: int) -> RecordSpec:
        """This record as the ``telegrams``-th new telegram after the first carries it."""
        if not self.step or not isinstance(self.value, int | float):
            return self
        return replace(self, value=self.value + self.step * telegrams)


@dataclass(frozen=True, slots=True)
class Page:
    """One RSP_UD telegram's records; every page but the last ends with DIF 1F."""

    records: tuple[RecordSpec, ...]
    manufacturer_data: bytes = b""


@dataclass(frozen=True, slots=True)
class LinkProfile:
    """Link-layer choices where meters differ (docs/mbus-facts.md "Link-layer behaviour").

    ``baud_fallback``: seconds without a valid frame at a new baud rate after which the meter
    falls back to the old one (None: never). ``idle_after_error`` and ``char_gap``: the FT1.2
    transmission rules the receiver follows (protocol.link.slave.SlaveSettings).
    """

    ci56: str = "select"
    accept_fcv0: bool = True
    baud_fallback: float | None = None
    idle_after_error: bool = True
    char_gap: float | None = None


@dataclass(frozen=True, slots=True)
class MeterProfile:
    """What an emulated meter is and says. Build with :func:`profile_from_dict` (validated)."""

    id: int
    manufacturer: str
    version: int
    medium: int
    address: int
    bauds: tuple[int, ...]
    baud: int
    response_delay: float
    pages: tuple[Page, ...]
    status: int = 0
    fabrication_number: int | None = None
    alarm: int | None = None
    link: LinkProfile = field(default_factory=LinkProfile)
    name: str = "meter"

    @property
    def secondary(self) -> SecondaryAddress:
        return SecondaryAddress(self.id, manufacturer_code(self.manufacturer), self.version,
                                self.medium)

    @property
    def sends_fabrication(self) -> bool:
        """A record of its telegrams carries the fabrication number (VIF 78)."""
        return any(spec.vif is not None and spec.vif[0] & 0x7F == vif.FABRICATION_NUMBER
                   for page in self.pages for spec in page.records)


# --- validation ----------------------------------------------------------------------------


class _Reader:
    """Reads one table of a profile; every complaint names the source, the path and what is
    allowed, as one ConfigError."""

    def __init__(self, data: object, source: str, path: str) -> None:
        self.source = source
        self.path = path
        if not isinstance(data, Mapping):
            self.fail(path, f"must be a table, not {_kind(data)}")
        self.data: Mapping[str, Any] = data
        self.used: set[str] = set()

    def fail(self, path: str, problem: str) -> NoReturn:
        where = f"{self.source}: {path}" if path else self.source
        raise ConfigError(f"{where}: {problem}")

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: object = ...) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                self.fail(self.sub(key), "missing")
            return default
        return self.data[key]

    def integer(self, key: str, low: int, high: int, default: object = ...,
                *, hex_ok: bool = False) -> Any:
        value = self.raw(key, default)
        if value is default and default is not ...:
            return value
        if hex_ok and isinstance(value, str):
            try:
                value = int(value, 16)
            except ValueError:
                self.fail(self.sub(key), f"{value!r} is not a number or hex text")
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(self.sub(key), f"must be an integer {low}..{high}, not {_kind(value)}")
        if not low <= value <= high:
            self.fail(self.sub(key), f"{value} is out of range (allowed: {low}..{high})")
        return value

    def number(self, key: str, low: float, high: float, default: object = ...) -> Any:
        value = self.raw(key, default)
        if value is default and default is not ...:
            return value
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(self.sub(key), f"must be a number {low}..{high}, not {_kind(value)}")
        if not low <= value <= high:
            self.fail(self.sub(key), f"{value} is out of range (allowed: {low}..{high})")
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            self.fail(self.sub(key), f"must be true or false, not {_kind(value)}")
        return bool(value)

    def choice(self, key: str, allowed: Sequence[str], default: object = ...) -> Any:
        value = self.raw(key, default)
        if value is default and default is not ...:
            return value
        if value not in allowed:
            self.fail(self.sub(key), f"{value!r} is not allowed (allowed: {', '.join(allowed)})")
        return value

    def hex_bytes(self, key: str, default: bytes | None = None) -> bytes | None:
        value = self.raw(key, default)
        if value is default:
            return value
        if not isinstance(value, str):
            self.fail(self.sub(key), f"must be hex text like \"FD 17\", not {_kind(value)}")
        try:
            return bytes.fromhex(value)
        except ValueError:
            self.fail(self.sub(key), f"{value!r} is not hex text like \"FD 17\"")

    def table_list(self, key: str) -> list[_Reader]:
        value = self.raw(key, [])
        if not isinstance(value, list):
            self.fail(self.sub(key), f"must be a list of tables, not {_kind(value)}")
        return [_Reader(item, self.source, f"{self.sub(key)}[{i}]") for i, item in enumerate(value)]

    def table(self, key: str) -> _Reader:
        return _Reader(self.raw(key, {}), self.source, self.sub(key))

    def done(self) -> None:
        """Reject keys nobody read: a misspelt field is an error, not silently ignored."""
        extra = sorted(set(self.data) - self.used)
        if extra:
            allowed = ", ".join(sorted(self.used))
            self.fail(self.sub(extra[0]), f"unknown field (allowed: {allowed})")


def _kind(value: object) -> str:
    if isinstance(value, str):
        return f"text {value!r}"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


# --- quantities: the app layer's VIF tables read backwards ---------------------------------

_UNIT_LABELS: dict[tuple[str, int], str] = {
    ("s", 60): "min", ("s", 3600): "h", ("s", 86400): "d",
    ("m^3/h", 60): "m^3/min", ("m^3/h", 3600): "m^3/s",
}
_ALIASES: dict[str, str] = {"time_point_date": "date", "time_point_date_time": "datetime",
                            "fabrication_no": "fabrication_number"}


def _quantity_key(name: str) -> str:
    key = name_key(name)
    return _ALIASES.get(key, key)


def _build_quantity_index() -> dict[str, dict[tuple[str, int], bytes]]:
    """quantity key -> {(unit label, exponent): VIF bytes}, from vif.primary / extension_fd."""
    index: dict[str, dict[tuple[str, int], bytes]] = {}
    entries = [(bytes((code,)), vif.primary(code)) for code in range(0x7C)]
    entries += [(bytes((vif.VIF_FD, code)), vif.extension_fd(code)) for code in range(0x80)]
    for code_bytes, info in entries:
        if info.kind == "reserved" or info.unit in ("month", "year"):
            continue
        unit = _UNIT_LABELS.get((info.unit, info.factor), info.unit)
        if info.factor != 1 and unit == info.unit:
            continue
        table = index.setdefault(_quantity_key(info.quantity), {})
        table.setdefault((unit, info.exponent), code_bytes)
    return index


_QUANTITIES = _build_quantity_index()


def quantity_names() -> list[str]:
    """Every quantity a profile record may name."""
    return sorted(_QUANTITIES)


def quantity_vif(quantity: str, unit: str | None, exponent: int | None) -> bytes:
    """VIF (and VIFE) bytes for a quantity in plain terms. Raises ValueError naming the
    allowed units and exponents."""
    table = _QUANTITIES.get(_quantity_key(quantity))
    if table is None:
        raise ValueError(f"unknown quantity {quantity!r} (allowed: {', '.join(quantity_names())})")
    units = list(dict.fromkeys(u for u, _ in table))
    chosen = unit if unit is not None else units[0]
    if chosen not in units:
        raise ValueError(f"unit {chosen!r} is not one of {quantity!r} (allowed: {', '.join(units)})")
    exponents = sorted(e for u, e in table if u == chosen)
    wanted = exponent if exponent is not None else (0 if 0 in exponents else exponents[0])
    if len(exponents) > 1 and exponent is None:
        raise ValueError(f"{quantity!r} in {chosen} needs an exponent "
                         f"(allowed: {', '.join(map(str, exponents))})")
    if (chosen, wanted) not in table:
        raise ValueError(f"exponent {wanted} is not available for {quantity!r} in {chosen} "
                         f"(allowed: {', '.join(map(str, exponents))})")
    return table[(chosen, wanted)]


# --- reading a profile ---------------------------------------------------------------------

def profile_from_dict(data: Mapping[str, Any], source: str = "profile") -> MeterProfile:
    """Validate a profile (as read from TOML) and build it.

    Layout: top-level meter fields (name, id, manufacturer, version, medium,
    fabrication_number, address, bauds, baud, response_delay, status, alarm), an optional ``[link]`` table and
    ``[[pages]]`` each with ``[[pages.records]]`` and an optional ``manufacturer_data`` hex.
    Raises ConfigError "SOURCE: FIELD.PATH: problem (allowed: ...)" on the first problem.
    """
    top = _Reader(data, source, "")
    name = top.raw("name", "meter")
    if not isinstance(name, str) or not name:
        top.fail("name", f"must be non-empty text, not {_kind(name)}")
    ident = top.integer("id", 0, 99_999_999)
    manufacturer = top.raw("manufacturer")
    try:
        manufacturer_code(manufacturer if isinstance(manufacturer, str) else "")
    except ValueError:
        top.fail("manufacturer", f"{_kind(manufacturer)} is not three letters A-Z (e.g. \"ABB\")")
    version = top.integer("version", 0, 255, 0)
    medium = _medium(top)
    fabrication = top.integer("fabrication_number", 0, 99_999_999, None)
    address = top.integer("address", 0, PRIMARY_MAX, 0)
    bauds = _bauds(top)
    baud = top.integer("baud", 0, max(BAUD_RATES), bauds[0] if 2400 not in bauds else 2400)
    if baud not in bauds:
        top.fail("baud", f"{baud} is not a supported rate of this meter "
                         f"(allowed: {', '.join(map(str, bauds))})")
    delay = _response_delay(top, bauds)
    status = top.integer("status", 0, 255, 0, hex_ok=True)
    alarm = top.integer("alarm", 0, 255, None, hex_ok=True)
    link = _link(top.table("link"))
    pages = tuple(_page(p) for p in top.table_list("pages"))
    if not pages:
        top.fail("pages", "at least one [[pages]] table with records is needed")
    for i in range(len(pages)):
        size = len(_rsp_ud_data(ident, manufacturer, version, medium, status, pages, i, 0))
        if size > MAX_DATA:
            top.fail(f"pages[{i}]", f"{size} bytes of RSP_UD data (header, records, "
                                    f"manufacturer data) do not fit one telegram "
                                    f"(allowed: at most {MAX_DATA}); move records to a new page")
    top.done()
    return MeterProfile(id=ident, manufacturer=manufacturer.upper(), version=version,
                        medium=medium, address=address, bauds=bauds, baud=baud,
                        response_delay=delay, pages=pages, status=status,
                        fabrication_number=fabrication, alarm=alarm, link=link, name=name)


def _medium(top: _Reader) -> int:
    value = top.raw("medium", 0)
    if isinstance(value, str):
        try:
            return medium_of_text(value)
        except ValueError as exc:
            top.fail("medium", str(exc))
    return int(top.integer("medium", 0, 255, 0))


def _bauds(top: _Reader) -> tuple[int, ...]:
    value = top.raw("bauds", [2400])
    allowed = ", ".join(map(str, BAUD_RATES))
    if not isinstance(value, list) or not value:
        top.fail("bauds", f"must be a non-empty list of baud rates (allowed: {allowed})")
    for i, baud in enumerate(value):
        if isinstance(baud, bool) or baud not in BAUD_RATES:
            top.fail(f"bauds[{i}]", f"{baud!r} is not an M-Bus baud rate (allowed: {allowed})")
    return tuple(sorted(set(value)))


def _response_delay(top: _Reader, bauds: tuple[int, ...]) -> float:
    """Seconds from the end of the request to the answer's start bit; it must lie in the
    response window (11 bit times .. 330 bit times + 50 ms, EN 13757-2) at every supported
    rate, so a conformant profile stays conformant at every rate."""
    low = max(response_window(b)[0] for b in bauds)
    high = min(response_window(b)[1] for b in bauds)
    default = round((low + high) / 2, 4) if low <= high else low
    delay = top.number("response_delay", 0.0, 10.0, default)
    if not low <= delay <= high:
        top.fail("response_delay", f"{delay} s is outside the response window of "
                                   f"{', '.join(map(str, bauds))} Bd (allowed: "
                                   f"{low:.4f}..{high:.4f} s)")
    return float(delay)


def _link(link: _Reader) -> LinkProfile:
    ci56 = link.choice("ci56", CI56_MODES, "select")
    fcv0 = link.boolean("accept_fcv0", True)
    fallback = link.number("baud_fallback", 0.0, 3600.0, None)
    idle_after_error = link.boolean("idle_after_error", True)
    char_gap = link.number("char_gap", 0.0001, 60.0, None)
    link.done()
    return LinkProfile(ci56=ci56, accept_fcv0=fcv0, baud_fallback=fallback or None,
                       idle_after_error=idle_after_error, char_gap=char_gap)


def _page(page: _Reader) -> Page:
    records = tuple(_record(r) for r in page.table_list("records"))
    maker = page.hex_bytes("manufacturer_data", b"") or b""
    page.done()
    if not records and not maker:
        page.fail(page.path, "a page needs records or manufacturer_data")
    return Page(records, maker)


def _record(rec: _Reader) -> RecordSpec:
    data_type = rec.choice("type", tuple(DATA_TYPES))
    quantity = rec.raw("quantity", None)
    unit = rec.raw("unit", None)
    exponent = rec.integer("exponent", -12, 12, None)
    raw_vif = rec.hex_bytes("vif", None)
    function = rec.choice("function", tuple(FUNCTIONS), "instantaneous")
    storage = rec.integer("storage", 0, MAX_STORAGE, 0)
    tariff = rec.integer("tariff", 0, MAX_TARIFF, 0)
    subunit = rec.integer("subunit", 0, MAX_SUBUNIT, 0)
    value = rec.raw("value", None)
    step = rec.raw("step", 0)
    rec.done()
    if step:
        if data_type not in COUNTING_TYPES:
            rec.fail(rec.sub("step"), f"only counts move (allowed for type: "
                                      f"{', '.join(COUNTING_TYPES)}), not {data_type}")
        if isinstance(step, bool) or not isinstance(step, int | float) or (
                isinstance(step, float) and data_type != "real32"):
            rec.fail(rec.sub("step"), f"must be {'a number' if data_type == 'real32' else 'an integer'}"
                                      f", not {_kind(step)}")
    if quantity is None and raw_vif is None:
        quantity = data_type if data_type in ("date", "datetime") else None
    if (quantity is None) == (raw_vif is None):
        rec.fail(rec.path, "give exactly one of quantity (with unit, exponent) or vif (hex)")
    if quantity is not None:
        if not isinstance(quantity, str) or (unit is not None and not isinstance(unit, str)):
            rec.fail(rec.sub("quantity"), "quantity and unit must be text")
        try:
            raw_vif = quantity_vif(quantity, unit, exponent)
        except ValueError as exc:
            rec.fail(rec.sub("quantity"), str(exc))
    spec = RecordSpec(data_type=data_type, value=value, quantity=quantity, exponent=exponent,
                      vif=raw_vif, function=function, storage=storage, tariff=tariff,
                      subunit=subunit, step=step)
    try:
        build_record(spec)
    except ValueError as exc:
        rec.fail(rec.sub("value"), str(exc.args[0]) if exc.args else str(exc))
    return spec


def rsp_ud_data(profile: MeterProfile, page: int, access_number: int) -> bytes:
    """The data after CI 72 of telegram ``page``: header, records, then DIF 1F on all but the
    last page (EN 13757-3 "more records follow"), DIF 0F before manufacturer data."""
    return _rsp_ud_data(profile.id, profile.manufacturer, profile.version, profile.medium,
                        profile.status, profile.pages, page, access_number)


def _rsp_ud_data(ident: int, manufacturer: str, version: int, medium: int, status: int,
                 pages: Sequence[Page], page: int, access_number: int) -> bytes:
    header = Header(ident, manufacturer_code(manufacturer), version, medium,
                    access_number=access_number & 0xFF, status=status)
    return encode_variable_data(header, [build_record(r) for r in pages[page].records],
                                more_records_follow=page + 1 < len(pages),
                                manufacturer_data=pages[page].manufacturer_data)


def build_record(spec: RecordSpec) -> Record:
    """The app-layer Record of a spec. Raises ValueError (EncodeError) when it cannot be sent."""
    assert spec.vif is not None
    raw: Any = spec.value
    if spec.data_type in ("date", "datetime"):
        if not isinstance(raw, str | dt.date):
            raise ValueError(f"a {spec.data_type} value is ISO text like \"2026-11-24"
                             f"{'T10:00' if spec.data_type == 'datetime' else ''}\"")
        try:
            raw = (dt.datetime.fromisoformat(raw) if spec.data_type == "datetime"
                   else dt.date.fromisoformat(raw)) if isinstance(raw, str) else raw
        except ValueError:
            raise ValueError(f"{spec.value!r} is not an ISO date{'-time' if spec.data_type == 'datetime' else ''}") from None
    elif spec.data_type == "real32" and isinstance(raw, int) and not isinstance(raw, bool):
        raw = float(raw)
    elif isinstance(raw, bool) or isinstance(raw, float) and spec.data_type != "real32":
        raise ValueError(f"{spec.data_type} needs an integer count, not {raw!r}")
    return Record.build(DATA_TYPES[spec.data_type], spec.vif[0], raw, vifes=spec.vif[1:],
                        function=spec.function, storage=spec.storage, tariff=spec.tariff,
                        subunit=spec.subunit)


# --- built-in profiles -----------------------------------------------------------------------

HEAT_METER: dict[str, Any] = {
    "name": "heat-meter",
    "id": 12345678,
    "manufacturer": "ABC",
    "version": 1,
    "medium": "heat",
    "fabrication_number": 87654321,
    "address": 1,
    "bauds": [300, 2400, 9600],
    "baud": 2400,
    "response_delay": 0.05,
    "status": 0,
    "link": {"ci56": "select", "accept_fcv0": True},
    "pages": [{"records": [
        {"quantity": "energy", "unit": "Wh", "exponent": 3, "type": "int32", "value": 12345},
        {"quantity": "volume", "exponent": -2, "type": "int32", "value": 45678},
        {"quantity": "power", "unit": "W", "exponent": 0, "type": "int32", "value": 12300},
        {"quantity": "volume_flow", "unit": "m^3/h", "exponent": -3, "type": "int32",
         "value": 512},
        {"quantity": "flow_temperature", "exponent": -1, "type": "int16", "value": 705},
        {"quantity": "return_temperature", "exponent": -1, "type": "int16", "value": 452},
        {"quantity": "temperature_difference", "exponent": -1, "type": "int16", "value": 253},
        {"type": "datetime", "value": "2026-11-24T10:00"},
        {"quantity": "error_flags", "type": "int8", "value": 0},
        {"quantity": "fabrication_number", "type": "bcd8", "value": 87654321},
        {"quantity": "energy", "unit": "Wh", "exponent": 3, "type": "int32", "value": 11000,
         "storage": 1},
        {"type": "date", "value": "2026-10-31", "storage": 1},
    ]}],
}
"""The built-in heat meter (profiles/heat-meter.toml says the same; a test keeps them equal):
energy, volume, power, flow, flow/return temperature, temperature difference, date-time,
error flags, fabrication number, and the last due-date energy (storage 1)."""


def heat_meter_profile() -> MeterProfile:
    """The default emulated meter: a 2400 Bd heat meter at primary address 1."""
    return profile_from_dict(HEAT_METER, "built-in heat meter")


# --- the application behind the link ---------------------------------------------------------


class ProfileApplication:
    """A MeterApplication answering from a profile (protocol.link.slave.MeterApplication).

    Every new RSP_UD carries the next access number (EN 13757-3 6.2: incremented per
    readout; a repeat with the same FCB is the link's cached copy, same number). ``status``
    and ``alarm`` may be changed while running; resets and address changes are recorded.
    """

    def __init__(self, profile: MeterProfile) -> None:
        self.profile = profile
        self.access_number = 0
        self.status = profile.status
        self.alarm: int | None = profile.alarm
        self.resets: list[int | None] = []
        self.addresses: list[int] = []
        self._records = [tuple(build_record(r) for r in page.records) for page in profile.pages]
        self.new_telegrams = 0
        """New telegrams served so far (records with a ``step`` move by it)."""
        self.error_source: Callable[[], int | None] | None = None
        """Asked once per new REQ_UD2: an application error code to answer with (CI 70)
        instead of the next page, or None (MeterCore's armed ``application_error``)."""
        self._identity: tuple[MeterProfile, SecondaryAddress] = (profile, profile.secondary)

    @property
    def identity(self) -> SecondaryAddress:
        profile = self.profile  # the profile is frozen: its secondary address is kept
        if self._identity[0] is not profile:
            self._identity = (profile, profile.secondary)
        return self._identity[1]

    @property
    def fabrication_number(self) -> int | None:
        return self.profile.fabrication_number

    def rsp_ud(self, page: int) -> RspUd:
        code = self.error_source() if self.error_source is not None else None
        if code is not None:  # EN 13757-3: CI 70, one error byte, no header (no access number)
            return RspUd(CI.APPLICATION_ERROR, encode_application_error(code))
        p = self.profile
        index = page % len(p.pages)
        more = index + 1 < len(p.pages)
        header = Header(p.id, manufacturer_code(p.manufacturer), p.version, p.medium,
                        access_number=self.access_number, status=self.status)
        self.access_number = (self.access_number + 1) & 0xFF
        data = encode_variable_data(header, self._moving_records(index), more_records_follow=more,
                                    manufacturer_data=p.pages[index].manufacturer_data)
        self.new_telegrams += 1
        return RspUd(CI.RSP_VARIABLE, data, more)

    def _moving_records(self, index: int) -> tuple[Record, ...]:
        """Page ``index``'s records with every moving count advanced by the new telegrams so
        far; a count that would no longer fit its data field starts over from its value."""
        specs = self.profile.pages[index].records
        if not any(spec.step for spec in specs):
            return self._records[index]
        try:
            return tuple(build_record(spec.moved(self.new_telegrams)) for spec in specs)
        except ValueError:
            self.new_telegrams = 0
            return self._records[index]

    def application_reset(self, subcode: int | None) -> None:
        self.resets.append(subcode)

    def on_address_changed(self, address: int) -> None:
        self.addresses.append(address)


def slave_settings(profile: MeterProfile, defects: Iterable[str] = ()) -> SlaveSettings:
    """The link settings a profile asks for (echo dropping is MeterCore's own, see there)."""
    return SlaveSettings(address=profile.address, bauds=profile.bauds, baud=profile.baud,
                         ci56=profile.link.ci56, accept_fcv0=profile.link.accept_fcv0,
                         baud_fallback_s=profile.link.baud_fallback,
                         response_delay=profile.response_delay, echo=False,
                         idle_after_error=profile.link.idle_after_error,
                         char_gap=profile.link.char_gap, defects=frozenset(defects))


# --- armed faults and defects ----------------------------------------------------------------

FAULTS: dict[str, str] = {
    "corrupt_checksum": "the answer frame's checksum is off by one",
    "silence": "no answer at all (E5 included)",
    "late": "the answer (E5 included) starts `delay` s after the request's end "
            "(default: 22 bit times after the response window closes)",
    "truncated": "only the first `n` bytes of the answer frame are sent (default: half)",
    "wrong_address": "the answer frame carries A = `address` (default: own address + 1)",
    "wrong_c_field": "the answer frame carries C = `c` (default 0x48: RSP_UD with PRM set)",
    "application_error": "a new REQ_UD2 is answered with an RSP_UD CI 70 holding error byte "
                         "`code` (default 0; EN 13757-3: " + ", ".join(
                             f"{code} {name}" for code, name in APPLICATION_ERRORS.items()
                             if name != "reserved") + ") instead of the next telegram",
}
"""Device-level faults :meth:`MeterCore.arm` takes; each wears off after ``count`` answers.
corrupt_checksum, truncated, wrong_address and wrong_c_field act on answer frames only: an E5
goes out unchanged and does not count. application_error counts new REQ_UD2 only: the
application answers CI 70 instead of the next page (the readout starts over at page 0
afterwards); a repeat with the same FCB gets the same CI 70 answer and does not count."""

FAULT_PARAMS: dict[str, dict[str, tuple[float, float]]] = {
    "corrupt_checksum": {}, "silence": {}, "late": {"delay": (0.0, 60.0)},
    "truncated": {"n": (1, 260)}, "wrong_address": {"address": (0, 255)},
    "wrong_c_field": {"c": (0, 255)}, "application_error": {"code": (0, 255)},
}
FRAME_ONLY = frozenset({"corrupt_checksum", "truncated", "wrong_address", "wrong_c_field"})
APPLICATION_FAULTS = frozenset({"application_error"})
"""Faults the application acts on (per new REQ_UD2), not the answer shaping."""

DEVICE_DEFECTS: dict[str, str] = {
    "answers_too_early": "answers 5 bit times after the request (the minimum is 11)",
    "answers_too_late": "answers 22 bit times after the response window closes "
                        "(330 bit times + 50 ms)",
    "wrong_checksum_in_answers": "every answer frame has a wrong checksum",
}
"""Device-level defects, on top of the link engine's (protocol.link.DEFECTS)."""

EARLY_BITS = 5
LATE_EXTRA_BITS = 22
STOP_SAMPLE_LAG_BITS = 0.5
"""A UART reports a character at its stop-bit sample, half a bit before the stop bit ends:
the request ended that much after the last RxChar's time."""


def defect_names() -> list[str]:
    """Every defect :meth:`MeterCore.set_defects` takes (device and link engine)."""
    return sorted({*DEVICE_DEFECTS, *LINK_DEFECTS})


@dataclass(frozen=True, slots=True)
class ArmedFault:
    """A fault waiting for its next ``remaining`` answers."""

    kind: str
    remaining: int
    params: Mapping[str, float] = field(default_factory=dict)


def check_fault(kind: str, count: int, params: Mapping[str, object]) -> ArmedFault:
    """Validate an arm request (from a test, the agent's HTTP API, the CLI); ConfigError
    names the kind, parameter and allowed values."""
    if kind not in FAULTS:
        raise ConfigError(f"unknown fault {kind!r} (allowed: {', '.join(FAULTS)})")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"fault {kind}: count {count!r} must be an integer >= 1")
    allowed = FAULT_PARAMS[kind]
    checked: dict[str, float] = {}
    for name, value in params.items():
        if name not in allowed:
            names = ", ".join(allowed) or "none"
            raise ConfigError(f"fault {kind}: unknown parameter {name!r} (allowed: {names})")
        low, high = allowed[name]
        integral = isinstance(low, int)
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or (integral and not isinstance(value, int)) or not low <= value <= high):
            kind_text = "an integer" if integral else "a number"
            raise ConfigError(f"fault {kind}: {name}={value!r} must be {kind_text} "
                              f"{low}..{high}")
        checked[name] = value
    return ArmedFault(kind, count, checked)


class _Echo:
    """What this device sent and will hear back (the TSS721A echoes every transmission)."""

    def __init__(self) -> None:
        self.expected: list[int] = []
        self.until = 0.0

    def sent(self, data: bytes, start: float, baud: int) -> None:
        self.expected = list(data)
        self.until = start + (len(data) + 2) * char_time(baud) + inter_frame_idle(baud)

    def swallow(self, ch: RxChar) -> bool | None:
        """True: ``ch`` is the echo (drop it); False: not echo; None: a differing character
        while sending (a collision)."""
        if not self.expected:
            return False
        if ch.time > self.until:
            self.expected.clear()
            return False
        if ch.ok and ch.value == self.expected[0]:
            self.expected.pop(0)
            return True
        self.expected.clear()
        return None


class MeterCore:
    """The emulated meter, sans-I/O: SlaveLink + ProfileApplication + faults and defects.

    Feed it :meth:`receive` (every character the UART delivers, the device's own echo
    included) and :meth:`poll` (when nothing arrives, at :attr:`next_deadline`); it returns
    ``Transmit(data, not_before)`` and ``SetBaud(baud, after_transmit)`` actions. The binder
    (hardware/sim/meter.py, the slave-Pi agent) sends each Transmit at its time and calls
    :meth:`power_lost` when the device loses its supply.
    """

    def __init__(self, profile: MeterProfile, *, defects: Iterable[str] = (),
                 echo: bool = True) -> None:
        self.profile = profile
        self.app = ProfileApplication(profile)
        self.echo = echo
        self.collisions = 0
        self.answers = 0
        """Answers sent (or silenced) since the start; faults count the same answers."""
        self._armed: list[ArmedFault] = []
        self._device_defects: frozenset[str] = frozenset()
        self._echo = _Echo()
        self._uart_baud = profile.baud
        self.app.error_source = self._take_application_error
        self.link = SlaveLink(self.app, slave_settings(profile))
        self.set_defects(defects)

    # --- state ------------------------------------------------------------------------------

    @property
    def address(self) -> int:
        return self.link.address

    @property
    def baud(self) -> int:
        return self.link.baud

    @property
    def selected(self) -> bool:
        return self.link.selected

    @property
    def identity(self) -> SecondaryAddress:
        return self.profile.secondary

    @property
    def next_deadline(self) -> float | None:
        return self.link.next_deadline

    # --- control ----------------------------------------------------------------------------

    def arm(self, kind: str, count: int = 1, **params: float) -> ArmedFault:
        """Arm a device-level fault for the next ``count`` answers (see FAULTS)."""
        fault = check_fault(kind, count, params)
        self._armed.append(fault)
        return fault

    def disarm(self, kind: str | None = None) -> None:
        """Drop every armed fault (or those of one kind)."""
        self._armed = [f for f in self._armed if kind is not None and f.kind != kind]

    @property
    def armed(self) -> tuple[ArmedFault, ...]:
        return tuple(self._armed)

    def _take_application_error(self) -> int | None:
        """The armed application_error's code for this new REQ_UD2 (counted down), or None."""
        for i, fault in enumerate(self._armed):
            if fault.kind == "application_error":
                if fault.remaining > 1:
                    self._armed[i] = replace(fault, remaining=fault.remaining - 1)
                else:
                    del self._armed[i]
                return int(fault.params.get("code", 0))
        return None

    def set_defects(self, names: Iterable[str]) -> None:
        """Switch on exactly these defects (device-level and link-engine ones); ConfigError
        names an unknown one and lists the allowed."""
        wanted = frozenset(names)
        unknown = sorted(wanted - set(defect_names()))
        if unknown:
            raise ConfigError(f"unknown defect {unknown[0]!r} "
                              f"(allowed: {', '.join(defect_names())})")
        self._device_defects = wanted & DEVICE_DEFECTS.keys()
        self.link.settings = replace(self.link.settings, defects=wanted & LINK_DEFECTS.keys())

    @property
    def defects(self) -> frozenset[str]:
        return self._device_defects | self.link.settings.defects

    def power_lost(self) -> None:
        """The device lost its supply: the link starts over as after power-up (address and
        baud rate from the profile, deselected, FCB expectation and readout page reset).
        The application (access number, status, alarm) runs on and keeps its state, as a
        meter's metrology on its own battery does; armed faults and defects are rig
        controls and stay."""
        defects = self.link.settings.defects
        self.link = SlaveLink(self.app, replace(slave_settings(self.profile), defects=defects))
        self._echo = _Echo()
        self._uart_baud = self.profile.baud

    # --- the wire ---------------------------------------------------------------------------

    def receive(self, ch: RxChar) -> list[SlaveAction]:
        if not self._echo.expected:  # not sending: nothing to drop as echo
            actions = self.link.receive(ch)
            return self._shape(actions) if actions else actions
        if self.echo:
            echo = self._echo.swallow(ch)
            if echo:
                return self._shape(self.link.poll(ch.time))
            if echo is None:
                self.collisions += 1
        return self._shape(self.link.receive(ch))

    def poll(self, now: float) -> list[SlaveAction]:
        return self._shape(self.link.poll(now))

    def _shape(self, actions: list[SlaveAction]) -> list[SlaveAction]:
        """Apply defects and armed faults to what the link wants to send."""
        out: list[SlaveAction] = []
        silenced = False
        for action in actions:
            if isinstance(action, SetBaud):
                out.append(SetBaud(action.baud, action.after_transmit and not silenced))
                self._uart_baud = action.baud
                continue
            sent = self._shape_transmit(action)
            silenced = sent is None
            if sent is not None:
                out.append(sent)
                if self.echo:
                    self._echo.sent(sent.data, sent.not_before, self._uart_baud)
        return out

    def _shape_transmit(self, action: Transmit) -> Transmit | None:
        self.answers += 1
        baud = self._uart_baud  # the rate the request came in and the answer goes out at
        request_end = (action.not_before - self.profile.response_delay
                       + STOP_SAMPLE_LAG_BITS / baud)
        is_frame = action.data[:1] != bytes((ACK,))
        data = action.data
        start = request_end + self.profile.response_delay
        if "answers_too_early" in self._device_defects:
            start = request_end + EARLY_BITS / baud
        if "answers_too_late" in self._device_defects:
            start = request_end + response_window(baud)[1] + LATE_EXTRA_BITS / baud
        if is_frame and "wrong_checksum_in_answers" in self._device_defects:
            data = _bump_checksum(data)
        for fault in self._consume(is_frame):
            if fault.kind == "silence":
                return None
            if fault.kind == "late":
                default = response_window(baud)[1] + LATE_EXTRA_BITS / baud
                start = request_end + fault.params.get("delay", default)
            elif fault.kind == "corrupt_checksum":
                data = _bump_checksum(data)
            elif fault.kind in ("wrong_address", "wrong_c_field"):
                data = _rewrite(data, fault)
            elif fault.kind == "truncated":
                data = data[: int(fault.params.get("n", max(1, len(data) // 2)))]
        return Transmit(data, start)

    def _consume(self, is_frame: bool) -> list[ArmedFault]:
        """The armed faults that act on this answer, counting each one down."""
        acting: list[ArmedFault] = []
        keep: list[ArmedFault] = []
        for fault in self._armed:
            if fault.kind in APPLICATION_FAULTS:
                keep.append(fault)
            elif is_frame or fault.kind not in FRAME_ONLY:
                acting.append(fault)
                if fault.remaining > 1:
                    keep.append(replace(fault, remaining=fault.remaining - 1))
            else:
                keep.append(fault)
        self._armed = keep
        truncate_last = sorted(acting, key=lambda f: f.kind == "truncated")
        return truncate_last


def _bump_checksum(data: bytes) -> bytes:
    """The frame with its CS byte (second to last) off by one."""
    if len(data) < 5:
        return data
    return data[:-2] + bytes(((data[-2] + 1) & 0xFF,)) + data[-1:]


def _rewrite(data: bytes, fault: ArmedFault) -> bytes:
    """The answer frame re-encoded (valid checksum) with another A or C field."""
    try:
        frame = decode(data)
    except FrameError:
        return data
    if not isinstance(frame, ShortFrame | ControlFrame | LongFrame):
        return data
    if fault.kind == "wrong_address":
        frame = replace(frame, a=int(fault.params.get("address", (frame.a + 1) & 0xFF)))
    else:
        frame = replace(frame, c=int(fault.params.get("c", 0x48)))
    return encode(frame)
