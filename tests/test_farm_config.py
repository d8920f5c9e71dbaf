"""Farm rig files: the [labgrid] table, resolving a place's resources into a rig file, and
what happens without labgrid or outside ``mbus-rig run``."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from protocol.errors import ConfigError
from rig.cli import main
from rig.config import config_from_dict, load_config
from rig.farm.place import ResourceInfo, coordinator_address
from rig.farm.resolve import agent_url, lines_url, master_port, resolved_rig, to_toml

EXAMPLES = Path(__file__).resolve().parent.parent / "rig" / "examples"
FARM = EXAMPLES / "farm.toml"


def _serial(**params: object) -> dict[str, ResourceInfo]:
    base = {"host": "master-pi-1.lab", "port": 40001, "speed": 2400,
            "extra": {"proxy_required": False}}
    return {"master": ResourceInfo("master", "NetworkSerialPort", {**base, **params})}


def test_the_example_farm_rig_file_names_tags_and_leaves_the_place_to_resolve() -> None:
    cfg = load_config(FARM)
    assert cfg.labgrid is not None and cfg.labgrid.tags == {"dut": "heat-meter-pcb-rev-b"}
    assert cfg.mode == "hardware" and cfg.master.port == "" and cfg.duts[0].url is None


@pytest.mark.parametrize(("table", "message"), [
    ({}, "labgrid.place: missing"),
    ({"place": "a b"}, "labgrid.place: 'a b'"),
    ({"tags": {"DUT": "x"}}, "labgrid.tags.DUT: a tag name"),
    ({"tags": {"dut": 5}}, "labgrid.tags.dut: a tag value"),
    ({"place": "p", "acquire_timeout": -1}, "labgrid.acquire_timeout: -1 is out of range"),
    ({"place": "p", "coordinator": " "}, "labgrid.coordinator: is empty"),
    ({"place": "p", "lease": 3}, "labgrid.lease: unknown key"),
])
def test_labgrid_table_mistakes_name_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"labgrid": table}, "farm.toml")


@pytest.mark.parametrize(("extra", "message"), [
    ({"master": {"port": "/dev/ttyAMA0"}}, "master.port: comes from the labgrid place"),
    ({"bus": {"kind": "sim"}}, "bus.kind: a labgrid place is a real rig pair"),
    ({"gpio": {"lines": [{"role": "bus_short", "pin": 22}]}}, "gpio.lines: come from"),
    ({"gpio": {"backend": "rpi"}}, "gpio.backend: a labgrid place's fault lines"),
    ({"dut": [{"name": "s", "kind": "agent", "url": "http://x:1", "token_file": "t"}]},
     "dut.s.url: comes from the labgrid place"),
])
def test_what_the_place_provides_is_not_in_the_file(extra: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"labgrid": {"place": "p"}, **extra}, "farm.toml")


def test_master_port_from_network_serial_ports() -> None:
    assert master_port(_serial(), "p") == "rfc2217://master-pi-1.lab:40001?ign_set_control"
    assert master_port(_serial(protocol="raw"), "p") == "socket://master-pi-1.lab:40001"
    assert master_port(_serial(host="fe80::1"), "p") == "rfc2217://[fe80::1]:40001?ign_set_control"
    assert master_port(_serial(port=None), "p") is None  # ser2net not up yet
    with pytest.raises(ConfigError, match="only reachable through an SSH proxy"):
        master_port(_serial(extra={"proxy_required": True}), "p")
    with pytest.raises(ConfigError, match="protocol 'telnet'"):
        master_port(_serial(protocol="telnet"), "p")
    with pytest.raises(ConfigError, match="labgrid place p: no NetworkSerialPort resource"):
        master_port({}, "p")
    two = {**_serial(), "aux": ResourceInfo("aux", "NetworkSerialPort", {"host": "h", "port": 1})}
    assert master_port(two, "p") == "rfc2217://master-pi-1.lab:40001?ign_set_control"


def test_lines_and_agents_from_their_resources() -> None:
    resources = {
        "fault-lines": ResourceInfo("fault-lines", "MBusFaultLines", {"url": "http://m:8766/"}),
        "slave-pi": ResourceInfo("slave-pi", "MBusAgent", {"url": "http://s:8765"}),
    }
    assert lines_url(resources, "p") == "http://m:8766"
    assert lines_url({}, "p") is None
    assert agent_url(resources, "any-dut", "p") == "http://s:8765"  # the only one
    with pytest.raises(ConfigError, match="url 'ftp://x' is not an http"):
        lines_url({"l": ResourceInfo("l", "MBusFaultLines", {"url": "ftp://x"})}, "p")
    with pytest.raises(ConfigError, match="no MBusAgent resource"):
        agent_url({}, "d", "p")


def test_a_resolved_rig_file_is_a_plain_rig_file(tmp_path: Path) -> None:
    raw = tomllib.loads(FARM.read_text())
    data = resolved_rig(raw, base=EXAMPLES, source=str(FARM), place="mbus-2",
                        port="rfc2217://m:4000?ign_set_control", lines="http://m:8766",
                        line_specs=[{"role": "bus_power_cut", "pin": 17, "active_high": True,
                                     "name": "relay", "asserted": False}],
                        agents={"slave-pi": "http://s:8765"})
    path = tmp_path / "farm-rig.toml"
    path.write_text(to_toml(data))
    cfg = load_config(path)
    assert cfg.labgrid is None and cfg.name == "heat-meter-rev-b@mbus-2"
    assert cfg.master.port == "rfc2217://m:4000?ign_set_control" and cfg.master.echo
    assert cfg.master.read_latency == 0.05
    assert cfg.gpio.backend == "remote" and cfg.gpio.url == "http://m:8766"
    assert [(line.role, line.pin, line.name) for line in cfg.gpio.lines] == [
        ("bus_power_cut", 17, "relay")]
    assert cfg.duts[0].url == "http://s:8765"
    assert cfg.duts[0].token_file == Path("/etc/mbus-rig/agent.token")
    assert "parity" not in cfg.capabilities(cfg.duts[0])
    with pytest.raises(ConfigError, match="gpio.token_file: missing .*place mbus-2 has a line"):
        resolved_rig({"labgrid": {"place": "x"}}, base=EXAMPLES, source="f.toml",
                     place="mbus-2", port="rfc2217://m:1", lines="http://m:8766",
                     line_specs=[], agents={})


def test_coordinator_address_defaults() -> None:
    assert coordinator_address("lab:1234") == "lab:1234"
    assert coordinator_address("lab") == "lab:20408"


def test_without_labgrid_a_farm_rig_file_is_one_line_and_exit_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    for name in [m for m in sys.modules if m == "labgrid" or m.startswith("labgrid.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "labgrid", None)  # import labgrid -> ImportError
    assert main(["run", "--rig", str(FARM), "--report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "[labgrid]: the labgrid client is not installed" in err
    assert "pip install 'mbus-rig[farm]'" in err


def test_pytest_refuses_an_unresolved_farm_rig_file() -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "tests_hil", "--rig",
                           str(FARM), "-q", "-p", "no:cacheprovider", "--co"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 4
    assert "[labgrid]: this rig is a farm place; run it with `mbus-rig run" in done.stderr


def test_the_rig_check_refuses_an_unresolved_farm_rig_file(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rig", "check", str(FARM)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "farm.toml: [labgrid]: this rig is a farm place; run it with `mbus-rig run" in err
