"""A small M-Bus master built on pyMeterBus (PyPI pyMeterBus, module ``meterbus``), for the
master suite to judge (rig/examples/master-pymeterbus.toml). pyMeterBus 0.8.5's console
scripts do not start, so this script drives its library: its frames (``send_ping_frame``,
``send_request_frame``, ``send_request_frame_multi``, ``send_select_frame``), its receive
loop (``recv_frame``) and its decoder (``load``). What it adds is the plumbing: retries, a
timeout of the response window, a primary scan and a secondary search (digits 0-9 at each
position, as pyMeterBus's and libmbus's tools search), and output in the JSON shape of
``mbus-rig read --json`` / ``scan --json`` (units converted to base units).

    python pymeterbus_master.py read --port PTY --baud 2400 --retries 2 --address 5
    python pymeterbus_master.py read --port PTY --baud 2400 --secondary 1234567843040104
    python pymeterbus_master.py scan --port PTY --baud 2400 --first 0 --last 10
    python pymeterbus_master.py scan-secondary --port PTY --baud 2400

Exit status 0 on success, 1 when the bus did not give what was asked (one line on stderr).
"""

from __future__ import annotations

import argparse
import decimal
import json
import sys
from typing import Any

import meterbus
import serial

MAX_TELEGRAMS = 16
UNITS = {  # pyMeterBus unit -> (base unit, factor)
    "MeasureUnit.WH": ("Wh", 1), "MeasureUnit.KWH": ("Wh", 1000), "MeasureUnit.J": ("J", 1),
    "MeasureUnit.M3": ("m^3", 1), "MeasureUnit.L": ("m^3", 0.001), "MeasureUnit.KG": ("kg", 1),
    "MeasureUnit.W": ("W", 1), "MeasureUnit.J_H": ("J/h", 1), "MeasureUnit.M3_H": ("m^3/h", 1),
    "MeasureUnit.M3_MIN": ("m^3/h", 60), "MeasureUnit.M3_S": ("m^3/h", 3600),
    "MeasureUnit.KG_H": ("kg/h", 1), "MeasureUnit.C": ("degC", 1), "MeasureUnit.K": ("K", 1),
    "MeasureUnit.BAR": ("bar", 1), "MeasureUnit.V": ("V", 1), "MeasureUnit.A": ("A", 1),
    "MeasureUnit.SECONDS": ("s", 1), "MeasureUnit.MINUTES": ("s", 60),
    "MeasureUnit.HOURS": ("s", 3600), "MeasureUnit.DAYS": ("s", 86400),
    "MeasureUnit.NONE": ("", 1), "MeasureUnit.DATE": ("", 1), "MeasureUnit.DATE_TIME": ("", 1),
    "MeasureUnit.PERCENT": ("%", 1), "MeasureUnit.DBM": ("dBm", 1),
}
FUNCTIONS = {"FunctionType.INSTANTANEOUS_VALUE": "instantaneous",
             "FunctionType.MAXIMUM_VALUE": "maximum", "FunctionType.MINIMUM_VALUE": "minimum",
             "FunctionType.ERROR_STATE_VALUE": "error"}


class BusError(Exception):
    """What did not work on the bus, in one line."""


def open_port(args: argparse.Namespace) -> serial.Serial:
    """The port, with a read timeout of the response window (330 bit times + 50 ms, EN
    13757-2) counted from the end of the longest request (a write returns before its bytes
    are on the line), plus two characters for the first one to arrive."""
    window = 330 / args.baud + 0.05
    request = 11 * (6 + 3 + 8) / args.baud  # a selection, the longest request it sends
    return serial.serial_for_url(args.port, args.baud, bytesize=8, parity="E", stopbits=1,
                                 timeout=request + window + 22 / args.baud)


def exchange(ser: serial.Serial, send: Any, retries: int) -> bytes | None:
    """``send()``, then pyMeterBus's receive loop; again on nothing or garbage."""
    for _ in range(1 + retries):
        ser.reset_input_buffer()
        send()
        data = meterbus.recv_frame(ser, 1)
        if data:
            return bytes(data)
    return None


def read(ser: serial.Serial, address: int, retries: int) -> list[dict[str, Any]]:
    if address != 253:
        if exchange(ser, lambda: meterbus.send_ping_frame(ser, address), retries) is None:
            raise BusError(f"no answer to SND_NKE at address {address}")
    telegrams: list[dict[str, Any]] = []
    send = meterbus.send_request_frame
    while len(telegrams) < MAX_TELEGRAMS:
        raw = exchange(ser, lambda s=send: s(ser, address), retries)
        if raw is None:
            raise BusError(f"no valid RSP_UD from address {address}")
        telegram = meterbus.load(raw)
        telegrams.append(as_json(telegram, raw))
        if not any(r.dib.more_records_follow for r in telegram.records):
            return telegrams
        send = meterbus.send_request_frame_multi  # pyMeterBus's "next telegram" request
    raise BusError(f"more than {MAX_TELEGRAMS} telegrams from address {address}")


def as_json(telegram: Any, raw: bytes) -> dict[str, Any]:
    """A telegram in the shape of ``mbus-rig read --json``."""
    header = telegram.body.bodyHeader.interpreted
    records = []
    for record in telegram.records:
        if record.dib.more_records_follow or record.dib.is_manufacturer_specific:
            continue
        info = record.interpreted
        unit, factor = UNITS.get(info["unit"], (None, 1))
        value = info["value"]
        if isinstance(value, decimal.Decimal | int) and not isinstance(value, bool):
            value = float(value) * factor
        records.append({"function": FUNCTIONS.get(info["function"]),
                        "storage": info["storage_number"], "tariff": info.get("tariff"),
                        "subunit": info.get("device"), "unit": unit, "value": value})
    return {"header": {"id": secondary_of(raw)[:8], "manufacturer": header["manufacturer"]},
            "records": records}


def scan(ser: serial.Serial, first: int, last: int, retries: int) -> list[dict[str, Any]]:
    """SND_NKE to each address; an E5 means a slave (pyMeterBus's scan knows no collisions)."""
    found = []
    for address in range(first, last + 1):
        if exchange(ser, lambda a=address: meterbus.send_ping_frame(ser, a), retries):
            found.append({"address": address, "status": "ok"})
    return found


def search(ser: serial.Serial, mask: str, retries: int, found: list[str]) -> None:
    """Select ``mask``; one E5: read the slave's address; garbage: split the next wildcard
    position into 0-9."""
    ser.reset_input_buffer()
    meterbus.send_select_frame(ser, mask)
    answer = meterbus.recv_frame(ser, 1)
    if answer is None:
        return  # nobody
    if answer == b"\xe5":
        data = exchange(ser, lambda: meterbus.send_request_frame(ser, 253), retries)
        if data and len(data) > 15:
            found.append(secondary_of(data))
            return
    position = mask.find("F")
    if position < 0 or position >= 16:
        return
    for digit in "0123456789":
        search(ser, mask[:position] + digit + mask[position + 1:], retries, found)


def secondary_of(rsp_ud: bytes) -> str:
    """The 16-digit secondary address (ID, manufacturer in wire order, version, medium)."""
    data = rsp_ud[7:15]
    return (data[3::-1].hex() + data[4:8].hex()).upper()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("operation", choices=("read", "scan", "scan-secondary"))
    parser.add_argument("--port", required=True)
    parser.add_argument("--baud", type=int, default=2400)
    parser.add_argument("--retries", type=int, default=2)
    parser.add_argument("--address", type=int)
    parser.add_argument("--secondary")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--last", type=int, default=250)
    args = parser.parse_args(argv)
    try:
        with open_port(args) as ser:
            if args.operation == "read" and args.secondary:
                if exchange(ser, lambda: meterbus.send_select_frame(ser, args.secondary),
                            args.retries) != b"\xe5":
                    raise BusError(f"secondary address {args.secondary} not selected")
                telegrams = read(ser, 253, args.retries)
            elif args.operation == "read":
                telegrams = read(ser, args.address, args.retries)
            elif args.operation == "scan":
                print(json.dumps({"found": scan(ser, args.first, args.last, args.retries)}))
                return 0
            else:
                found: list[str] = []
                search(ser, "F" * 16, args.retries, found)
                print(json.dumps({"found": [{"secondary": s} for s in found]}))
                return 0
    except (BusError, serial.SerialException) as exc:
        print(f"pymeterbus_master: {exc}", file=sys.stderr)
        return 1
    for telegram in telegrams:
        print(json.dumps(telegram))
    return 0


if __name__ == "__main__":
    sys.exit(main())
