"""A master as the DUT in a rig file (rig/master_config.py): the kinds, the command templates
and their placeholders, the capabilities; every mistake one line naming file, key, allowed."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path

import pytest

from protocol.errors import ConfigError
from rig.config import config_from_dict, load_config
from rig.master_config import expand
from rig.master_dut import TOOL_COMMANDS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "rig" / "examples"
SIM = {"bus": {"kind": "sim"}}


def _rig(dut: dict, **top) -> dict:
    return {**SIM, **top, "dut": [{"name": "m", "role": "master", **dut}]}


def test_the_suite_rig_is_the_emulated_master():
    cfg = load_config(ROOT / "tests_hil" / "rigs" / "master.toml")
    dut = cfg.dut(None)
    assert (dut.role, dut.kind, cfg.mode) == ("master", "emulated", "sim")
    assert dut.master is not None and dut.master.retries == 2
    caps = cfg.capabilities(dut)
    assert {"op_read", "op_scan", "op_scan_secondary", "op_set_address", "op_switch_baud",
            "op_reset", "reports", "parity", "noise", "multi_slave"} <= caps
    assert "control" not in caps  # nothing inside a master is armed
    assert dut.supported_bauds == (300, 600, 1200, 2400, 4800, 9600, 19200, 38400)


@pytest.mark.parametrize("name, output, ops", [
    ("master-tools.toml", "json", 7),
    ("master-pymeterbus.toml", "json", 4),
    ("master-libmbus-serial.toml", "libmbus-xml", 6),
    ("master-libmbus-tcp.toml", "libmbus-xml", 6),
])
def test_master_examples_load(name, output, ops):
    cfg = load_config(EXAMPLES / name)
    dut = cfg.dut(None)
    assert dut.is_master and dut.kind == "program" and cfg.mode == "loopback"
    assert dut.master.output == output and len(dut.master.commands) == ops
    assert "parity" not in cfg.capabilities(dut)  # a pty or TCP carries bytes only


def test_the_tools_example_runs_the_emulated_masters_commands():
    """rig/examples/master-tools.toml is the same master as the emulated one, run outside."""
    with (EXAMPLES / "master-tools.toml").open("rb") as fh:
        commands = tomllib.load(fh)["dut"][0]["commands"]
    outside = {k: shlex.split(v) for k, v in commands.items()}
    for argv in outside.values():  # a pty in real time delivers late, in bursts
        at = argv.index("--read-latency")
        del argv[at:at + 2]
    assert outside == {k: shlex.split(v) for k, v in TOOL_COMMANDS.items()}


def test_missing_commands_are_missing_capabilities():
    cfg = load_config(EXAMPLES / "master-pymeterbus.toml")
    caps = cfg.capabilities(cfg.dut(None))
    assert {"op_read", "op_read_secondary", "op_scan", "op_scan_secondary", "reports"} <= caps
    assert not {"op_set_address", "op_switch_baud", "op_reset"} & caps


def test_output_none_reports_nothing():
    cfg = config_from_dict(_rig({"kind": "program", "output": "none",
                                 "commands": {"read": "m {tty} {address}"}}), "r.toml")
    assert "reports" not in cfg.capabilities(cfg.dut(None))


def test_tcp_placeholders():
    cfg = config_from_dict(_rig({"kind": "program", "commands": {
        "read": "mbus-tcp-request-data {tcp_host} {tcp_port} {address}"}}), "r.toml")
    assert cfg.dut(None).master.joins_by == "tcp"
    assert expand(cfg.dut(None).master.commands["read"],
                  {"tcp_host": "127.0.0.1", "tcp_port": 5000, "address": 5}) == [
        "mbus-tcp-request-data", "127.0.0.1", "5000", "5"]


@pytest.mark.parametrize("dut, problem", [
    ({"kind": "program"}, "dut.m.commands: missing (a program master needs at least one of"),
    ({"kind": "program", "commands": {"read": "m {tty}"}},
     "dut.m.commands.read: needs {address}"),
    ({"kind": "program", "commands": {"read": "m {address}"}},
     "dut.m.commands.read: needs {tty} or {tcp}"),
    ({"kind": "program", "commands": {"read": "m {tty} {adress}"}},
     "dut.m.commands.read: unknown placeholder {adress} (allowed: {tty}"),
    ({"kind": "program", "commands": {"fetch": "m {tty}"}},
     "dut.m.commands.fetch: unknown key (allowed: read, read_secondary"),
    ({"kind": "program", "commands": {"read": "m {tty} {address}",
                                      "scan": "m {tcp}"}},
     "use {tty} in every command or {tcp} in every command"),
    ({"kind": "program", "output": "xml", "commands": {"read": "m {tty} {address}"}},
     "dut.m.output: 'xml' is not allowed (allowed: json, libmbus-xml, none)"),
    ({"kind": "emulated", "commands": {"read": "m {tty} {address}"}},
     "dut.m.commands: the emulated master needs no commands"),
    ({"kind": "emulated", "retries": 10}, "dut.m.retries: 10 is out of range (allowed: 0..9)"),
    ({"kind": "emulated", "bauds": [2400, 1234]},
     "dut.m.bauds: 1234 is not an M-Bus baud rate"),
    ({"kind": "program", "defects": ["gives_up_early"],
      "commands": {"read": "m {tty} {address}"}},
     "dut.m.defects: only for the emulated master"),
    ({"kind": "black-box", "commands": {"read": "m {address}"}},
     "a black-box master is judged on a real bus"),
    ({"kind": "emulated", "timeout": 0}, "dut.m.timeout: 0 is out of range"),
])
def test_mistakes_are_one_line(dut, problem):
    with pytest.raises(ConfigError) as info:
        config_from_dict(_rig(dut), "r.toml")
    message = str(info.value)
    assert problem in message and "\n" not in message and message.startswith("r.toml: ")


def test_a_master_rig_on_the_simulated_bus_builds_its_own_meters():
    data = _rig({"kind": "emulated"})
    data["dut"].append({"name": "meter", "kind": "emulated"})
    with pytest.raises(ConfigError, match="dut.meter: a master rig on the simulated bus builds "
                                          "its meters per scenario"):
        config_from_dict(data, "r.toml")


def test_one_master_per_rig():
    data = _rig({"kind": "emulated"})
    data["dut"].append({"name": "m2", "role": "master", "kind": "emulated"})
    with pytest.raises(ConfigError, match="both masters"):
        config_from_dict(data, "r.toml")


def test_an_unknown_role_is_refused():
    with pytest.raises(ConfigError, match="dut.x.role: 'mastre' is not allowed "
                                          r"\(allowed: slave, master\)"):
        config_from_dict({**SIM, "dut": [{"name": "x", "role": "mastre"}]}, "r.toml")


def test_unknown_master_defect_in_the_rig_file():
    with pytest.raises(ConfigError, match="unknown master defect 'slow' \\(allowed: "
                                          "never_toggles_fcb"):
        config_from_dict(_rig({"kind": "emulated", "defects": ["slow"]}), "r.toml")


def test_the_rig_files_page_documents_every_master_key():
    from rig.master_config import MASTER_DUT_KEYS, MASTER_KINDS, OPERATIONS, OUTPUTS, PLACEHOLDERS

    page = (ROOT / "docs" / "rig-files.md").read_text(encoding="utf-8")
    section = page.split("## A master as the DUT", 1)[1].split("\n## ", 1)[0]
    words = MASTER_DUT_KEYS + MASTER_KINDS + tuple(OPERATIONS) + OUTPUTS
    missing = [w for w in words if f"`{w}`" not in section and f'`"{w}"`' not in section]
    missing += [p for p in PLACEHOLDERS if f"`{{{p}}}`" not in section]
    assert missing == []
