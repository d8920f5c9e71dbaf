"""Rig file parsing and validation (rig/config.py): every mistake names file, key, allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.errors import ConfigError
from protocol.identity import SecondaryAddress
from rig.config import (
    PROTOCOL_CAPABILITIES,
    builtin_sim_config,
    config_from_dict,
    load_config,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "rig" / "examples"


def test_builtin_sim_rig_needs_no_file():
    cfg = load_config("sim")
    assert cfg.mode == "sim"
    assert cfg.master.port.startswith("mbussim://")
    assert cfg.duts[0].kind == "emulated"
    assert cfg.line_capabilities == {"power_fault", "disconnect", "short", "collision_injector",
                                     "noise"}


@pytest.mark.parametrize("name, mode", [("sim.toml", "sim"), ("two-pi.toml", "hardware"),
                                        ("loopback.toml", "loopback"),
                                        ("program-dut.toml", "loopback"),
                                        ("black-box.toml", "hardware")])
def test_examples_load(name, mode):
    cfg = load_config(EXAMPLES / name)
    assert cfg.mode == mode
    assert cfg.source.endswith(name)
    assert cfg.duts


def test_parity_and_bus_power_reach_a_dut_on_a_wire_but_not_through_a_pty():
    sim = load_config("sim")
    sim_caps = sim.capabilities(sim.duts[0])
    assert {"parity", "power_fault"} <= sim_caps
    real = load_config(EXAMPLES / "two-pi.toml")
    assert "parity" in real.capabilities(real.duts[0])
    loop = load_config(EXAMPLES / "loopback.toml")
    loop_caps = loop.capabilities(loop.duts[0])
    assert "power_fault" in loop.line_capabilities  # the relay is there ...
    assert "parity" not in loop_caps and "power_fault" not in loop_caps  # ... the pty DUT can't feel it


def test_read_latency_reaches_the_master(tmp_path):
    rig_file = tmp_path / "rig.toml"
    rig_file.write_text('[master]\nread_latency = 0.02\n')
    assert load_config(rig_file).master.read_latency == pytest.approx(0.02)
    assert load_config("sim").master.read_latency == 0.0


def test_two_pi_example_is_the_real_rig():
    cfg = load_config(EXAMPLES / "two-pi.toml")
    assert cfg.master.port == "/dev/ttyAMA0" and cfg.master.echo
    assert cfg.gpio.backend == "rpi"
    dut = cfg.dut("slave-pi")
    assert dut.kind == "agent" and dut.url and dut.token_file
    assert dut.secondary == SecondaryAddress.parse("123456782D2C0104")
    assert "baud_switch" in dut.features


def test_loopback_token_file_resolves_next_to_the_rig_file():
    dut = load_config(EXAMPLES / "loopback.toml").duts[0]
    assert dut.token_file == EXAMPLES / "agent.token"
    assert any("{tty}" in arg for arg in dut.command)


def test_program_command_string_is_split_like_a_shell_line():
    dut = load_config(EXAMPLES / "program-dut.toml").duts[0]
    assert dut.command[0] == "mbus-rig" and "{tty}" in dut.command


def test_sim_config_equals_the_builtin_one_in_what_matters():
    file_cfg = load_config(EXAMPLES / "sim.toml")
    builtin = builtin_sim_config()
    assert file_cfg.mode == builtin.mode
    assert file_cfg.line_capabilities == builtin.line_capabilities
    assert file_cfg.duts[0].address == builtin.duts[0].address
    assert file_cfg.duts[0].features == builtin.duts[0].features


def test_emulated_dut_claims_what_its_profile_supports(tmp_path):
    heat = builtin_sim_config().duts[0].features
    assert {"primary", "secondary", "fcb", "baud_switch", "enhanced_selection"} <= heat
    assert "multi_telegram" not in heat  # the built-in heat meter sends one telegram
    multi = config_from_dict({"dut": [{"name": "m", "profile": "multi-telegram"}]}, "r.toml")
    assert "multi_telegram" in multi.duts[0].features
    assert multi.duts[0].meter_profile.pages[1:]
    chosen = config_from_dict({"dut": [{"name": "m", "features": ["primary"]}]}, "r.toml")
    assert chosen.duts[0].features == {"primary"}  # a rig file may claim less
    assert set(PROTOCOL_CAPABILITIES) >= heat


def _error(data, source="rig.toml") -> str:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, source)
    return str(info.value)


@pytest.mark.parametrize("data, words", [
    ({"colour": 1}, ["rig.toml", "colour", "unknown key", "allowed: name, master"]),
    ({"master": {"baud": 1000}}, ["master.baud", "1000", "300, 600"]),
    ({"master": {"retries": 12}}, ["master.retries", "0..9"]),
    ({"master": {"read_latency": 5}}, ["master.read_latency", "0.0..1.0"]),
    ({"master": {"read_latency": "16 ms"}}, ["master.read_latency", "a string"]),
    ({"master": {"echo": "yes"}}, ["master.echo", "must be a boolean"]),
    ({"master": {"port": "/dev/ttyUSB0"}}, ["master.port", "mbussim://"]),
    ({"bus": {"kind": "real"}}, ["master.port", "missing"]),
    ({"bus": {"kind": "air"}}, ["bus.kind", "'air'", "sim, real"]),
    ({"bus": {"sim": {"noise_rate": -1}}}, ["bus.sim.noise_rate", "negative"]),
    ({"bus": {"sim": {"wind": 1}}}, ["bus.sim.wind", "noise_rate"]),
    ({"bus": {"kind": "real", "sim": {"noise_rate": 1}}, "master": {"port": "/dev/x"}},
     ["bus.sim", "kind"]),
    ({"gpio": {"backend": "rpi"}}, ["gpio.backend", "sim"]),
    ({"gpio": {"lines": [{"role": "smoke", "pin": 17}]}}, ["gpio.lines[0].role", "bus_power_cut"]),
    ({"gpio": {"lines": [{"role": "noise"}]}}, ["gpio.lines[0].pin", "missing"]),
    ({"gpio": {"lines": [{"role": "noise", "pin": 40}]}}, ["gpio.lines[0].pin", "0..27"]),
    ({"gpio": {"lines": [{"role": "noise", "pin": 14}]}}, ["gpio.lines[0].pin", "UART"]),
    ({"gpio": {"lines": [{"role": "noise", "pin": 17}, {"role": "collision", "pin": 17}]}},
     ["gpio.lines[1].pin", "already used"]),
    ({"dut": [{"kind": "emulated"}]}, ["dut[0].name", "missing"]),
    ({"dut": [{"name": "m", "kind": "robot"}]}, ["dut.m.kind", "emulated, program"]),
    ({"dut": [{"name": "m", "address": 251}]}, ["dut.m.address", "0..250"]),
    ({"dut": [{"name": "m", "secondary": "1234"}]}, ["dut.m.secondary", "16 hex digits"]),
    ({"dut": [{"name": "m", "features": ["teleport"]}]}, ["dut.m.features", "'teleport'",
                                                          "primary"]),
    ({"dut": [{"name": "m", "kind": "program"}]}, ["dut.m.command", "missing"]),
    ({"dut": [{"name": "m", "kind": "program", "command": ["meter", "/dev/ttyS0"]}]},
     ["dut.m.command", "{tty}"]),
    ({"dut": [{"name": "m", "kind": "agent", "token_file": "t"}]}, ["dut.m.url", "missing"]),
    ({"dut": [{"name": "m", "kind": "agent", "url": "ftp://x", "token_file": "t"}]},
     ["dut.m.url", "http://"]),
    ({"dut": [{"name": "m", "kind": "agent", "url": "http://x"}]}, ["dut.m.token_file"]),
    ({"dut": [{"name": "m", "kind": "black-box", "url": "http://x"}]}, ["dut.m.url", "agent"]),
    ({"dut": [{"name": "m", "address": 3}, {"name": "n", "address": 3}]}, ["address 3"]),
    ({"dut": [{"name": "m"}, {"name": "m"}]}, ["dut[1].name", "twice"]),
    ({"dut": [{"name": "m", "profile": "gas-meter"}]}, ["dut.m.profile", "heat-meter"]),
    ({"dut": [{"name": "m", "profile": "nope.toml"}]}, ["dut.m.profile", "nope.toml"]),
    ({"bus": {"kind": "real"}, "master": {"port": "/dev/ttyAMA0"}, "dut": [{"name": "m"}]},
     ["dut.m.kind", "agent"]),
])
def test_mistakes_name_file_key_and_what_is_allowed(data, words):
    message = _error(data)
    for word in words:
        assert word in message, (word, message)


def test_bad_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[master\nport=1\n")
    with pytest.raises(ConfigError, match=r"rig file .*bad\.toml: invalid TOML: .*line 1"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_unknown_profile_in_a_rig_file_names_the_rig_file_not_the_cli_flag(tmp_path):
    rig = tmp_path / "rig.toml"
    rig.write_text('[[dut]]\nname = "m"\nprofile = "gas-meter"\n')
    with pytest.raises(ConfigError) as info:
        load_config(rig)
    message = str(info.value)
    assert message.startswith(f"{rig}: dut.m.profile: profile gas-meter: no such file, nor a "
                              "shipped profile (shipped: heat-meter, multi-telegram")
    assert "--profile" not in message


def test_dut_lookup_and_overrides():
    cfg = builtin_sim_config()
    assert cfg.dut(None).name == "meter"
    with pytest.raises(ConfigError, match="no DUT named 'x'.*meter"):
        cfg.dut("x")
    changed = cfg.with_overrides(seed=7, baud=9600, defects=frozenset({"ignores_fcb"}))
    assert changed.bus.seed == 7
    assert changed.master.baud == 9600 and changed.duts[0].baud == 9600
    assert changed.duts[0].defects == {"ignores_fcb"}
    assert cfg.bus.seed == 1  # the original is untouched


def test_profile_file_resolves_next_to_the_rig_file(tmp_path):
    import os

    from hardware.profile import PROFILE_DIR

    rel = os.path.relpath(PROFILE_DIR / "multi-telegram.toml", tmp_path)
    rig = tmp_path / "rig.toml"
    rig.write_text(f'[[dut]]\nname = "m"\nprofile = "{rel}"\n')
    dut = load_config(rig).duts[0]
    assert "multi_telegram" in dut.features
    assert dut.meter_profile.pages[1:]


# --- declarations every DUT kind can make ----------------------------------------------------

PROGRAM = {"name": "slave", "kind": "program", "command": ["slave", "{tty}"]}
AGENT = {"name": "pi", "kind": "agent", "url": "http://pi:8765", "token_file": "t"}
BLACK_BOX = {"name": "meter", "kind": "black-box"}
REAL = {"bus": {"kind": "real"}, "master": {"port": "/dev/ttyAMA0"}}


@pytest.mark.parametrize("dut, bus", [(PROGRAM, {}), (AGENT, REAL), (BLACK_BOX, REAL)],
                         ids=["program", "agent", "black-box"])
def test_outside_duts_declare_rates_fabrication_profile_and_readable_secondary(dut, bus):
    cfg = config_from_dict({**bus, "dut": [{
        **dut, "bauds": [9600, 300, 2400], "baud": 9600, "fabrication": 87654321,
        "sends_fabrication": True, "profile": "heat-meter",
        "secondary": "12345678 KAM 1 heat", "features": ["primary", "enhanced_selection"]}]},
        "rig.toml")
    d = cfg.duts[0]
    assert d.bauds == (300, 2400, 9600) and d.supported_bauds == (300, 2400, 9600)
    assert d.baud == 9600
    assert d.fabrication == 87654321 and d.sends_fabrication
    assert d.meter_profile.name == "heat-meter"  # the records it is known to send
    assert d.secondary == SecondaryAddress.parse("123456782D2C0104")


def test_an_outside_dut_without_declarations_knows_only_its_one_rate():
    d = config_from_dict({"dut": [PROGRAM]}, "rig.toml").duts[0]
    assert d.bauds is None and d.supported_bauds == (2400,)
    slow = config_from_dict({"dut": [{**PROGRAM, "bauds": [300, 9600]}]}, "r.toml").duts[0]
    assert slow.baud == 300  # it starts at a rate it has: 2400 when it has it, else its lowest
    assert d.fabrication is None and not d.sends_fabrication and d.meter_profile is None


def test_declarations_shape_an_emulated_dut():
    d = config_from_dict({"dut": [{"name": "m", "bauds": [300, 9600], "baud": 300,
                                   "fabrication": 11112222}]}, "rig.toml").duts[0]
    assert d.meter_profile.bauds == (300, 9600) and d.meter_profile.baud == 300
    assert d.meter_profile.fabrication_number == 11112222 and d.fabrication == 11112222
    assert d.sends_fabrication  # the built-in heat meter has a VIF 78 record


@pytest.mark.parametrize("secondary, expected", [
    ("12345678 ABC 1 heat", "1234567843040104"),
    ("00000001 kam 0x10 cold_water", "000000012D2C1016"),
    ("12345678 KAM 255 7", "123456782D2CFF07"),
    ("12345678 2D2C 01 04", "123456782D2C0104"),
    ("123456782D2C0104", "123456782D2C0104"),
])
def test_secondary_in_readable_or_wire_order_form(secondary, expected):
    d = config_from_dict({"dut": [{**PROGRAM, "secondary": secondary}]}, "rig.toml").duts[0]
    assert str(d.secondary) == expected


def test_program_env_and_working_directory(tmp_path):
    (tmp_path / "firmware").mkdir()
    d = config_from_dict({"dut": [{**PROGRAM, "env": {"METER_ID": "12345678", "_X1": ""},
                                   "cwd": "firmware"}]}, "rig.toml", base=tmp_path).duts[0]
    assert dict(d.env) == {"METER_ID": "12345678", "_X1": ""}
    assert d.cwd == tmp_path / "firmware"


@pytest.mark.parametrize("dut, words", [
    ({**PROGRAM, "bauds": [2400, 1000]}, ["dut.slave.bauds", "1000", "not an M-Bus baud rate",
                                          "300, 600"]),
    ({**PROGRAM, "bauds": []}, ["dut.slave.bauds", "empty", "allowed: 300"]),
    ({**PROGRAM, "bauds": "2400"}, ["dut.slave.bauds", "must be an array"]),
    ({**PROGRAM, "bauds": [300, 9600], "baud": 2400}, ["dut.slave.baud", "2400",
                                                        "allowed: 300, 9600"]),
    ({**PROGRAM, "fabrication": 123456789}, ["dut.slave.fabrication", "0..99999999"]),
    ({**PROGRAM, "fabrication": "87654321"}, ["dut.slave.fabrication", "an integer"]),
    ({**PROGRAM, "sends_fabrication": True}, ["dut.slave.sends_fabrication",
                                              "fabrication = N"]),
    ({**PROGRAM, "sends_fabrication": "yes"}, ["dut.slave.sends_fabrication", "a boolean"]),
    ({**PROGRAM, "features": ["enhanced_selection"]}, ["dut.slave.fabrication", "missing",
                                                       "enhanced_selection"]),
    ({**PROGRAM, "profile": "multi-telegram", "sends_fabrication": True, "fabrication": 1},
     ["dut.slave.sends_fabrication", "no fabrication number record (VIF 78)"]),
    ({**PROGRAM, "profile": "gas-meter"}, ["dut.slave.profile", "heat-meter"]),
    ({**PROGRAM, "secondary": "12345678 AB1 1 heat"}, ["dut.slave.secondary",
                                                       "12345678 ABC 1 heat"]),
    ({**PROGRAM, "secondary": "12345678 ABC 1 lava"}, ["dut.slave.secondary", "'lava'",
                                                       "heat", "0..255"]),
    ({**PROGRAM, "secondary": "12345678 ABC 300 heat"}, ["dut.slave.secondary", "version",
                                                         "0..255"]),
    ({**PROGRAM, "secondary": "123456789 ABC 1 heat"}, ["dut.slave.secondary", "8 decimal"]),
    ({**PROGRAM, "env": {"1X": "a"}}, ["dut.slave.env", "'1X'", "not an environment variable"]),
    ({**PROGRAM, "env": {"PORT": 5}}, ["dut.slave.env", "PORT must be a string",
                                       'PORT = "5"']),
    ({**PROGRAM, "env": ["A=1"]}, ["dut.slave.env", "must be a table"]),
    ({**PROGRAM, "cwd": "no/such/dir"}, ["dut.slave.cwd", "not a directory", "rig file"]),
    ({**BLACK_BOX, "env": {"A": "1"}}, ["dut.meter.env", "only for a DUT the rig starts"]),
    ({"name": "m", "cwd": "."}, ["dut.m.cwd", "only for a DUT the rig starts"]),
])
def test_declaration_mistakes_name_file_key_and_what_is_allowed(dut, words):
    message = _error({"dut": [dut]})
    assert message.startswith("rig.toml: "), message
    for word in words:
        assert word in message, (word, message)
