"""Value information: the VIF tables of EN 13757-3 (6.4, tables 10-15) -> quantity and unit.

Every value is normalised to a base unit: value = raw * factor * 10**exponent.
Base units: Wh, J, m^3, kg, s, W, J/h, m^3/h, kg/h, degC, K, bar, V, A; "" for
dimensionless numbers. Kept in their own unit (no exact factor, an offset, or no SI base):
degF (FB table), US gal, feet^3, month, year, currency units, bit times, Bd, dBm, %, Hz,
VA, VAR, VARh, cal, deg.

- main table: VIF bits 6-0 (bit 7 = a VIFE follows); FD and FB select the main and the
  alternate extension table, whose code is the first VIFE (bits 6-0).
- 7C/FC: plain-text unit, an ASCII string (length byte, characters sent last first)
  right after the VIF, before any VIFE (as the libmbus corpus telegrams send it).
- 7E/FE: any VIF (readout selection); 7F/FF: manufacturer specific.
- Combinable (orthogonal) VIFEs after the unit are recorded as notes; the multiplicative
  correction factors (70-77: 10^(nnn-6), 7D: 10^3) also change the exponent. A VIFE 7F
  means the following VIFEs are manufacturer specific; they are kept, not interpreted.
"""

from __future__ import annotations

from dataclasses import dataclass

EXTENSION_BIT = 0x80
VIF_FD = 0xFD
VIF_FB = 0xFB
PLAIN_TEXT = 0x7C
ANY_VIF = 0x7E
MANUFACTURER_VIF = 0x7F
MANUFACTURER_VIFE = 0x7F
FABRICATION_NUMBER = 0x78
"""VIF 78: fabrication number (docs/mbus-facts.md "Application layer"); enhanced selection
appends DIF 0C, this VIF and the number (protocol.app.requests.ENHANCED_SELECTION)."""

TIME_FACTORS = (1, 60, 3600, 86400)
"""Seconds per unit for the 2-bit time unit nn: s, min, h, d."""


@dataclass(frozen=True, slots=True)
class VifInfo:
    """What a VIF (with its VIFEs) says: value = raw * factor * 10**exponent in ``unit``."""

    quantity: str
    unit: str = ""
    exponent: int = 0
    factor: int = 1
    kind: str = "number"  # "number", "time point", "manufacturer", "any", "reserved"
    notes: tuple[str, ...] = ()

    @property
    def scale(self) -> float:
        """The multiplier from raw to value (inexact for negative exponents; see apply)."""
        return float(self.apply(1))

    def apply(self, raw: int | float) -> int | float:
        """raw -> value in the base unit, dividing for negative exponents (exact decimals)."""
        if self.exponent >= 0:
            return raw * self.factor * _pow10(self.exponent)
        return raw * self.factor / _pow10(-self.exponent)


def _pow10(exponent: int) -> int:
    """10**exponent for exponent >= 0, as an int."""
    return int(10**exponent)


def _time(quantity: str, nn: int) -> VifInfo:
    return VifInfo(quantity, "s", 0, TIME_FACTORS[nn & 3])


def primary(code: int) -> VifInfo:
    """Main VIF table (EN 13757-3 table 10), code = VIF & 7F."""
    n = code & 0x07
    group = code & 0x78
    if group == 0x00:
        return VifInfo("Energy", "Wh", n - 3)
    if group == 0x08:
        return VifInfo("Energy", "J", n)
    if group == 0x10:
        return VifInfo("Volume", "m^3", n - 6)
    if group == 0x18:
        return VifInfo("Mass", "kg", n - 3)
    if group == 0x20:
        return _time("On time" if code < 0x24 else "Operating time", code)
    if group == 0x28:
        return VifInfo("Power", "W", n - 3)
    if group == 0x30:
        return VifInfo("Power", "J/h", n)
    if group == 0x38:
        return VifInfo("Volume flow", "m^3/h", n - 6)
    if group == 0x40:
        return VifInfo("Volume flow", "m^3/h", n - 7, 60)  # m^3/min
    if group == 0x48:
        return VifInfo("Volume flow", "m^3/h", n - 9, 3600)  # m^3/s
    if group == 0x50:
        return VifInfo("Mass flow", "kg/h", n - 3)
    nn = code & 0x03
    small: dict[int, tuple[str, str]] = {
        0x58: ("Flow temperature", "degC"), 0x5C: ("Return temperature", "degC"),
        0x60: ("Temperature difference", "K"), 0x64: ("External temperature", "degC"),
        0x68: ("Pressure", "bar"),
    }
    if code & 0x7C in small:
        quantity, unit = small[code & 0x7C]
        return VifInfo(quantity, unit, nn - 3)
    if code == 0x6C:
        return VifInfo("Time point (date)", kind="time point")
    if code == 0x6D:
        return VifInfo("Time point (date & time)", kind="time point")
    if code == 0x6E:
        return VifInfo("H.C.A.")
    if code & 0x7C == 0x70:
        return _time("Averaging duration", nn)
    if code & 0x7C == 0x74:
        return _time("Actuality duration", nn)
    named = {FABRICATION_NUMBER: "Fabrication No", 0x79: "(Enhanced) Identification", 0x7A: "Bus Address"}
    if code in named:
        return VifInfo(named[code])
    if code == ANY_VIF:
        return VifInfo("Any VIF", kind="any")
    if code == MANUFACTURER_VIF:
        return VifInfo("Manufacturer specific", kind="manufacturer")
    return VifInfo("Reserved", kind="reserved")  # 6F, 7B, 7D without their extension


_FD_NAMED: dict[int, str] = {
    0x08: "Access Number (transmission count)", 0x09: "Device type", 0x0A: "Manufacturer",
    0x0B: "Parameter set identification", 0x0C: "Model / Version", 0x0D: "Hardware version",
    0x0E: "Firmware version", 0x0F: "Software version", 0x10: "Customer location",
    0x11: "Customer", 0x12: "Access Code User", 0x13: "Access Code Operator",
    0x14: "Access Code System Operator", 0x15: "Access Code Developer", 0x16: "Password",
    0x17: "Error flags", 0x18: "Error mask", 0x19: "Security key", 0x1A: "Digital Output",
    0x1B: "Digital Input", 0x1E: "Retry", 0x1F: "Remote control",
    0x20: "First storage # for cyclic storage", 0x21: "Last storage # for cyclic storage",
    0x22: "Size of storage block", 0x23: "Descriptor for tariff and subunit",
    0x2A: "Operator specific data", 0x3A: "Dimensionless", 0x3B: "Data container",
    0x60: "Reset counter", 0x61: "Cumulation counter", 0x62: "Control signal",
    0x63: "Day of week", 0x64: "Week number", 0x65: "Time point of day change",
    0x66: "State of parameter activation", 0x67: "Special supplier information",
    0x72: "Daylight saving", 0x73: "Listening window management",
    0x75: "Number of times the meter was stopped",
    0x76: "Data container for manufacturer specific protocol",
}


def _duration(quantity: str, code: int, units: tuple[str, ...]) -> VifInfo:
    unit = units[code & 3]
    if unit in ("month", "year"):
        return VifInfo(quantity, unit)
    return VifInfo(quantity, "s", 0, {"s": 1, "min": 60, "h": 3600, "d": 86400}[unit])


def extension_fd(code: int) -> VifInfo:
    """Main VIFE-code extension table, after VIF FD (EN 13757-3 table 14)."""
    if code < 0x08:
        return VifInfo("Credit" if code < 0x04 else "Debit", "currency units", (code & 3) - 3)
    if code in _FD_NAMED:
        return VifInfo(_FD_NAMED[code])
    if code == 0x1C:
        return VifInfo("Baud rate", "Bd")
    if code == 0x1D:
        return VifInfo("Response delay time", "bit times")
    if 0x24 <= code <= 0x27:
        return _time("Storage interval", code)
    if code in (0x28, 0x29):
        return VifInfo("Storage interval", "month" if code == 0x28 else "year")
    if code == 0x2B:
        return VifInfo("Time point (second)", "s")
    if 0x2C <= code <= 0x2F:
        return _time("Duration since last readout", code)
    if code == 0x30:
        return VifInfo("Start of tariff", kind="time point")
    if 0x31 <= code <= 0x33:
        return _time("Duration of tariff", code)
    if 0x34 <= code <= 0x37:
        return _time("Period of tariff", code)
    if code in (0x38, 0x39):
        return VifInfo("Period of tariff", "month" if code == 0x38 else "year")
    if 0x3C <= code <= 0x3F:
        return _time("Period of nominal data transmissions", code)
    if 0x40 <= code <= 0x4F:
        return VifInfo("Voltage", "V", (code & 0x0F) - 9)
    if 0x50 <= code <= 0x5F:
        return VifInfo("Current", "A", (code & 0x0F) - 12)
    if 0x68 <= code <= 0x6B:
        return _duration("Duration since last cumulation", code, ("h", "d", "month", "year"))
    if 0x6C <= code <= 0x6F:
        return _duration("Operating time battery", code, ("h", "d", "month", "year"))
    if code == 0x70:
        return VifInfo("Date and time of battery change", kind="time point")
    if code == 0x71:
        return VifInfo("RF level", "dBm")
    if code == 0x74:
        return VifInfo("Remaining battery life time", "s", 0, 86400)
    return VifInfo("Reserved", kind="reserved")


def extension_fb(code: int) -> VifInfo:
    """Alternate VIFE-code extension table, after VIF FB (EN 13757-3 table 12)."""
    n = code & 0x01
    nn = code & 0x03
    pairs: dict[int, tuple[str, str, int]] = {
        0x00: ("Energy", "Wh", 5), 0x02: ("Reactive energy", "VARh", 5),
        0x08: ("Energy", "J", 8), 0x10: ("Volume", "m^3", 2), 0x18: ("Mass", "kg", 5),
        0x1A: ("Relative humidity", "%", -1), 0x22: ("Volume", "US gal", -1),
        0x28: ("Power", "W", 5), 0x30: ("Power", "J/h", 8),
    }
    if code & 0x7E in pairs:
        quantity, unit, base = pairs[code & 0x7E]
        return VifInfo(quantity, unit, base + n)
    quads: dict[int, tuple[str, str, int]] = {
        0x0C: ("Energy", "cal", 5), 0x14: ("Reactive power", "VAR", 0),
        0x2C: ("Frequency", "Hz", -3), 0x34: ("Apparent power", "VA", 0), 0x58: ("Flow temperature", "degF", -3),
        0x5C: ("Return temperature", "degF", -3), 0x60: ("Temperature difference", "degF", -3),
        0x64: ("External temperature", "degF", -3),
        0x70: ("Cold / Warm Temperature Limit", "degF", -3),
        0x74: ("Cold / Warm Temperature Limit", "degC", -3),
    }
    if code & 0x7C in quads:
        quantity, unit, base = quads[code & 0x7C]
        return VifInfo(quantity, unit, base + nn)
    if code == 0x20:
        return VifInfo("Volume", "feet^3")
    if code == 0x21:
        return VifInfo("Volume", "feet^3", -1)
    if code in (0x24, 0x25):
        return VifInfo("Volume flow", "US gal/min", -3 if code == 0x24 else 0)
    if code == 0x26:
        return VifInfo("Volume flow", "US gal/h")
    if code in (0x2A, 0x2B):
        return VifInfo("Phase U-U" if code == 0x2A else "Phase U-I", "deg", -1)
    if code & 0x78 == 0x78:
        return VifInfo("Cumulative count max power", "W", (code & 0x07) - 3)
    return VifInfo("Reserved", kind="reserved")


_COMBINABLE: dict[int, str] = {
    0x00: "no error", 0x01: "too many DIFEs", 0x02: "storage number not implemented",
    0x03: "unit number not implemented", 0x04: "tariff number not implemented",
    0x05: "function not implemented", 0x06: "data class not implemented",
    0x07: "data size not implemented", 0x0B: "too many VIFEs", 0x0C: "illegal VIF-group",
    0x0D: "illegal VIF-exponent", 0x0E: "VIF/DIF mismatch", 0x0F: "unimplemented action",
    0x15: "no data available", 0x16: "data overflow", 0x17: "data underflow",
    0x18: "data error", 0x1C: "premature end of record",
    0x20: "per second", 0x21: "per minute", 0x22: "per hour", 0x23: "per day",
    0x24: "per week", 0x25: "per month", 0x26: "per year", 0x27: "per revolution/measurement",
    0x28: "increment per input pulse on input channel 0",
    0x29: "increment per input pulse on input channel 1",
    0x2A: "increment per output pulse on output channel 0",
    0x2B: "increment per output pulse on output channel 1",
    0x2C: "per litre", 0x2D: "per m^3", 0x2E: "per kg", 0x2F: "per K", 0x30: "per kWh",
    0x31: "per GJ", 0x32: "per kW", 0x33: "per (K*l)", 0x34: "per V", 0x35: "per A",
    0x36: "multiplied by s", 0x37: "multiplied by s/V", 0x38: "multiplied by s/A",
    0x39: "start date(/time) of", 0x3A: "uncorrected unit",
    0x3B: "accumulation only if positive contributions",
    0x3C: "accumulation of abs value only if negative contributions",
    0x40: "lower limit value", 0x48: "upper limit value",
    0x41: "number of exceeds of lower limit", 0x49: "number of exceeds of upper limit",
    0x7E: "future value",
}


def combinable(code: int) -> str:
    """Text of a combinable (orthogonal) VIFE (EN 13757-3 table 15), code = VIFE & 7F."""
    if code in _COMBINABLE:
        return _COMBINABLE[code]
    limit = "upper" if code & 0x08 else "lower"
    if code & 0x72 == 0x42:
        first = "last" if code & 0x04 else "first"
        which = "end" if code & 0x01 else "begin"
        return f"date/time of {which} of {first} {limit} limit exceed"
    if code & 0x70 == 0x50:
        first = "last" if code & 0x04 else "first"
        return f"duration of {first} {limit} limit exceed ({('s', 'min', 'h', 'd')[code & 3]})"
    if code & 0x78 == 0x60:
        first = "last" if code & 0x04 else "first"
        return f"duration of {first} {limit} limit exceed ({('s', 'min', 'h', 'd')[code & 3]})"
    if code & 0x78 == 0x70:
        return f"multiplicative correction factor 1e{(code & 7) - 6}"
    if code & 0x7C == 0x78:
        return f"additive correction constant 1e{(code & 3) - 3} x unit"
    if code == 0x7D:
        return "multiplicative correction factor 1e3"
    return f"reserved VIFE {code:02X}"


def correction_exponent(code: int) -> int:
    """Power of ten a combinable VIFE multiplies the value by (0 for all but 70-77, 7D)."""
    if code & 0x78 == 0x70:
        return (code & 7) - 6
    return 3 if code == 0x7D else 0


def describe(vif: int, vifes: tuple[int, ...], plain_text: str | None = None) -> VifInfo:
    """VifInfo for a VIF and its VIFEs (wire bytes, extension bits included)."""
    code = vif & 0x7F
    rest = list(vifes)
    if vif in (VIF_FD, VIF_FB) and rest:
        ext = rest.pop(0) & 0x7F
        info = extension_fd(ext) if vif == VIF_FD else extension_fb(ext)
    elif code == PLAIN_TEXT:
        text = plain_text or ""
        info = VifInfo(text, text)
    else:
        info = primary(code)
    if info.kind == "manufacturer":
        return info
    notes: list[str] = []
    exponent = info.exponent
    for index, vife in enumerate(rest):
        ext = vife & 0x7F
        if ext == MANUFACTURER_VIFE:
            notes.append("manufacturer specific VIFEs follow" if index + 1 < len(rest)
                         else "manufacturer specific")
            break
        notes.append(combinable(ext))
        exponent += correction_exponent(ext)
    return VifInfo(info.quantity, info.unit, exponent, info.factor, info.kind, tuple(notes))
