"""An acquired place's resources -> the rig file the suite runs on (no I/O here).

What a rig pair's exporter publishes (hardware/docs/exporter.yaml):

- the master's serial port: ``RawSerialPort`` on the master Pi, which labgrid-exporter
  serves with ser2net while the place is acquired and publishes as ``NetworkSerialPort``
  (host, port, speed; RFC 2217 unless ``protocol = "raw"``); pyserial opens it as
  ``rfc2217://HOST:PORT?ign_set_control`` (as labgrid's SerialDriver does). With several,
  the one named ``master``.
- the fault lines: ``MBusFaultLines`` (``url`` of ``mbus-rig line-server``); the lines
  themselves (role, pin, polarity) are the server's.
- the slave-Pi agent: ``MBusAgent`` (``url``), for ``kind = "agent"`` DUTs (the one named
  like the DUT, else the only one).

The farm rig file's own settings (baud, echo, retries, DUT identity and features, token
files) are kept; relative paths become absolute, since the resolved file lives elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from protocol.errors import ConfigError

from .place import ResourceInfo

SERIAL_CLASS = "NetworkSerialPort"
LINES_CLASS = "MBusFaultLines"
AGENT_CLASS = "MBusAgent"
#: The master's read latency when the farm rig file sets none: ser2net forwards characters
#: after a short delay (its chardelay, up to 20 ms) and TCP adds its own; a gap inside an
#: answer must not be taken for the end of the frame (protocol/link/master.py gap limit).
FARM_READ_LATENCY = 0.05
#: NetworkSerialPort protocol -> pyserial URL scheme.
SERIAL_SCHEMES = {"rfc2217": "rfc2217", "raw": "socket"}


def _one(resources: Mapping[str, ResourceInfo], cls: str, preferred: str, place: str,
         *, required: bool) -> ResourceInfo | None:
    found = [r for r in resources.values() if r.cls == cls]
    if len(found) > 1:
        found = [r for r in found if r.name == preferred] or found
        if len(found) > 1:
            names = ", ".join(sorted(r.name for r in found))
            raise ConfigError(f"labgrid place {place}: several {cls} resources ({names}): "
                              f"name the one to use {preferred!r}")
    if not found:
        if required:
            raise ConfigError(f"labgrid place {place}: no {cls} resource (see "
                              "hardware/docs/exporter.yaml)")
        return None
    return found[0]


def master_port(resources: Mapping[str, ResourceInfo], place: str) -> str | None:
    """The master's pyserial URL, or None while ser2net is not up yet (no port published)."""
    serial = _one(resources, SERIAL_CLASS, "master", place, required=True)
    assert serial is not None
    params = serial.params
    extra = params.get("extra") or {}
    if extra.get("proxy_required"):
        raise ConfigError(f"labgrid place {place}: resource {serial.name} is only reachable "
                          "through an SSH proxy (exporter --isolated): not supported; export "
                          "it on a host this machine can reach")
    scheme = SERIAL_SCHEMES.get(str(params.get("protocol") or "rfc2217"))
    if scheme is None:
        raise ConfigError(f"labgrid place {place}: resource {serial.name}: protocol "
                          f"{params.get('protocol')!r} (allowed: {', '.join(SERIAL_SCHEMES)})")
    host, port = params.get("host"), params.get("port")
    if not serial.avail or not host or not port:
        return None
    host = str(host)
    url = f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
    # as labgrid's SerialDriver: ser2net does not answer SET_CONTROL for every port (a pty)
    return url + "?ign_set_control" if scheme == "rfc2217" else url


def lines_url(resources: Mapping[str, ResourceInfo], place: str) -> str | None:
    lines = _one(resources, LINES_CLASS, "fault-lines", place, required=False)
    return None if lines is None else _url(lines, place)


def agent_url(resources: Mapping[str, ResourceInfo], dut: str, place: str) -> str:
    agent = _one(resources, AGENT_CLASS, dut, place, required=True)
    assert agent is not None
    return _url(agent, place)


def _url(resource: ResourceInfo, place: str) -> str:
    url = resource.params.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"labgrid place {place}: resource {resource.name} ({resource.cls}): "
                          f"url {url!r} is not an http:// or https:// URL")
    return url.rstrip("/")


def resolved_rig(raw: Mapping[str, Any], *, base: Path, source: str, place: str,
                 port: str, lines: str | None, line_specs: Sequence[Mapping[str, Any]],
                 agents: Mapping[str, str]) -> dict[str, Any]:
    """The farm rig file ``raw`` (as read) made concrete for ``place``: ``[labgrid]`` gone,
    the master port, fault lines and agent URLs filled in, paths absolute."""
    data: dict[str, Any] = {k: v for k, v in raw.items() if k != "labgrid"}
    data["name"] = f"{raw.get('name', Path(source).stem)}@{place}"
    data["bus"] = {**dict(raw.get("bus", {})), "kind": "real"}
    data["master"] = {"read_latency": FARM_READ_LATENCY, **dict(raw.get("master", {})),
                      "port": port}
    gpio = dict(raw.get("gpio", {}))
    if lines is not None:
        token = gpio.get("token_file")
        if not isinstance(token, str):
            raise ConfigError(f"{source}: gpio.token_file: missing (place {place} has a line "
                              f"server, {lines}: give its token file)")
        data["gpio"] = {"backend": "remote", "url": lines, "token_file": str(base / token),
                        "lines": [{k: spec[k] for k in ("role", "pin", "active_high", "name")
                                   if k in spec} for spec in line_specs]}
    else:
        data["gpio"] = {"backend": "sim"}  # no fault lines at this place: nothing to drive
    duts = []
    for dut in raw.get("dut", []):
        dut = dict(dut)
        for key in ("token_file", "profile"):
            value = dut.get(key)
            if isinstance(value, str) and (key == "token_file" or value.endswith(".toml")):
                dut[key] = str(base / value)
        if dut.get("kind") == "agent":
            dut["url"] = agents[str(dut.get("name"))]
        duts.append(dut)
    if duts:
        data["dut"] = duts
    return data


def to_toml(data: Mapping[str, Any]) -> str:
    """TOML text for a rig file's data (tables, arrays of tables, scalars, arrays)."""
    out: list[str] = []
    _table(out, data, [])
    return "\n".join(out).strip() + "\n"


def _table(out: list[str], data: Mapping[str, Any], path: list[str]) -> None:
    tables = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    arrays = {k: v for k, v in data.items() if isinstance(v, list) and v
              and all(isinstance(x, Mapping) for x in v)}
    for key, value in data.items():
        if key not in tables and key not in arrays:
            out.append(f"{_key(key)} = {_value(value)}")
    for key, value in tables.items():
        out.append("")
        out.append(f"[{'.'.join(_key(k) for k in [*path, key])}]")
        _table(out, value, [*path, key])
    for key, items in arrays.items():
        for item in items:
            out.append("")
            out.append(f"[[{'.'.join(_key(k) for k in [*path, key])}]]")
            _table(out, item, [*path, key])


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else _value(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise ConfigError(f"cannot write {value!r} ({type(value).__name__}) to a rig file")
