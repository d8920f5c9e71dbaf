"""The Rig (rig/rig.py): built from a config, faults through GPIO lines, outside DUT programs,
the loopback agent, the lock."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from hardware.clock import WallClock
from protocol.errors import ConfigError, HardwareError, NoAnswerError
from protocol.identity import SecondaryAddress
from rig.config import builtin_sim_config, config_from_dict, load_config
from rig.dut import DutProgram
from rig.rig import NotSupportedError, Rig
from rig.safety import RigBusyError

ROOT = Path(__file__).resolve().parent.parent

#: A minimal outside slave: answers E5 to SND_NKE at address 5, logs what it gets.
SLAVE_PROGRAM = """
import os, select, sys, tty
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
tty.setraw(fd)
print("slave on", sys.argv[1], flush=True)
buf = b""
while True:
    if not select.select([fd], [], [], 1)[0]:
        continue
    buf += os.read(fd, 100)
    while len(buf) >= 5 and buf[0] == 0x10:
        frame, buf = buf[:5], buf[5:]
        print("got", frame.hex(" "), flush=True)
        if frame[1] == 0x40 and frame[2] == 5:
            os.write(fd, b"\\xe5")
    if buf and buf[0] != 0x10:
        buf = buf[1:]
"""


@pytest.fixture
def sim_rig():
    with Rig(builtin_sim_config()) as rig:
        yield rig


def test_sim_rig_reads_its_dut_over_mbussim(sim_rig):
    assert sim_rig.mode == "sim" and sim_rig.clock.is_virtual
    assert sim_rig.port.path.startswith("mbussim://")  # the same SerialBusPort as hardware
    reply = sim_rig.master.req_ud2(sim_rig.dut.address)
    assert reply.telegram.header.id == sim_rig.dut.secondary.id
    assert [f.direction for f in sim_rig.trace.frames()] == ["M>S", "S>M"]


def test_fault_wears_off_after_its_duration(sim_rig):
    fault = sim_rig.faults.inject("power_cut", duration=0.5)
    assert fault.end == pytest.approx(fault.start + 0.5)
    assert sim_rig.faults.active == ["bus power cut"]
    with pytest.raises(NoAnswerError):
        sim_rig.master.req_ud2(5)
    sim_rig.clock.sleep(1.0)  # the rest of the cut, then the slave's power-up time
    assert sim_rig.faults.active == []
    sim_rig.master.req_ud2(5)


def test_fault_at_a_later_time_and_clear(sim_rig):
    start = sim_rig.clock.now() + 0.2
    sim_rig.faults.inject("short", at=start)
    assert sim_rig.faults.active == []
    sim_rig.clock.sleep(0.3)
    assert sim_rig.faults.active == ["bus short"]
    assert sim_rig.bus.shorted
    sim_rig.faults.clear()
    assert sim_rig.faults.active == [] and not sim_rig.bus.shorted


def test_cleared_faults_never_come_back_from_their_timers(sim_rig):
    now = sim_rig.clock.now()
    sim_rig.faults.inject("noise", at=now + 0.5)            # pending start
    sim_rig.faults.inject("power_cut", duration=2.0)        # pending wear-off
    sim_rig.faults.clear()
    sim_rig.faults.inject("power_cut")                      # a new one, no end
    sim_rig.clock.sleep(3.0)
    assert sim_rig.faults.active == ["bus power cut"]       # the old wear-off did not end it
    sim_rig.faults.clear()
    sim_rig.faults.inject("short", at=sim_rig.clock.now() + 1.0)
    sim_rig.close()                                          # safe state with a start pending
    sim_rig.clock.sleep(2.0)                                 # the pending start comes due
    assert not sim_rig.gpio.level(22) and not sim_rig.bus.shorted


def test_sim_fault_parameters_are_set_on_the_bus_and_reset(sim_rig):
    sim_rig.faults.inject("noise", rate=0.2)
    assert sim_rig.bus.noise_down == 0.2 and sim_rig.bus.down.noise == 0.2
    sim_rig.faults.inject("collision", window=0.001)
    assert sim_rig.bus.collision_duration == 0.001
    sim_rig.faults.clear()
    assert sim_rig.bus.noise_down == 0.0 and sim_rig.bus.down.noise == 0.0
    assert sim_rig.bus.collision_duration is None


@pytest.mark.parametrize("kind, params, error, words", [
    ("flood", {}, ConfigError, ["'flood'", "power_cut, disconnect"]),
    ("noise", {"volume": 11}, ConfigError, ["'volume'", "rate"]),
    ("power_cut", {"duration": -1}, ConfigError, ["negative"]),
])
def test_bad_fault_requests(sim_rig, kind, params, error, words):
    with pytest.raises(error) as info:
        sim_rig.faults.inject(kind, **params)
    for word in words:
        assert word in str(info.value)


def test_fault_without_its_line_is_not_supported():
    cfg = config_from_dict({"dut": [{"name": "m", "address": 5}]}, "bare.toml")
    with Rig(cfg) as rig:
        with pytest.raises(NotSupportedError, match="no bus_power_cut line"):
            rig.faults.inject("power_cut")


def test_use_baud_and_unsupported_rate(sim_rig):
    sim_rig.use_baud(9600)
    assert sim_rig.master.baud == 9600
    assert sim_rig.master.req_ud2(5).exchange.baud == 9600
    with pytest.raises(NotSupportedError, match="does not support 38400 Bd"):
        sim_rig.use_baud(38400)


def test_extra_slaves_come_and_go(sim_rig):
    population = sim_rig.population()
    [extra] = population.add(SecondaryAddress(11111111, 0x2C2D, 1, 4), address=9)
    assert extra.address == 9 and len(sim_rig.bus.slaves) == 2
    assert sim_rig.master.req_ud2(9).telegram.header.id == 11111111
    population.clear()
    assert len(sim_rig.bus.slaves) == 1


def test_emulated_dut_control(sim_rig):
    control = sim_rig.dut.control
    control.set_defects(["ignores_fcb"])
    assert control.identity()["defects"] == ["ignores_fcb"]
    control.arm("silence", 1)
    reply = sim_rig.master.req_ud2(5)
    assert reply.exchange.attempts == 2
    assert any(e["direction"] == "S>M" for e in control.trace())


def test_close_releases_lines_and_the_bus_name():
    rig = Rig(builtin_sim_config()).open()
    rig.faults.inject("noise")
    name = rig.bus.name
    gpio = rig.gpio
    rig.close()
    assert not gpio.level(24)  # noise line (active high) released
    from hardware.sim.registry import names

    assert name not in names()


def test_two_sessions_on_one_locked_rig(tmp_path, monkeypatch):
    monkeypatch.setenv("MBUS_RIG_LOCK_DIR", str(tmp_path))
    cfg = builtin_sim_config()
    with Rig(cfg, lock=True):
        with pytest.raises(RigBusyError, match=r"in use by another session \(pid \d+"):
            Rig(cfg, lock=True).open()
    with Rig(cfg, lock=True):
        pass


# --- outside DUT programs ----------------------------------------------------------------------


def _program_config(tmp_path: Path, script: str) -> object:
    program = tmp_path / "slave.py"
    program.write_text(script)
    return config_from_dict({"dut": [{"name": "prog", "kind": "program", "address": 5,
                                      "command": [sys.executable, "-u", str(program), "{tty}"]}]},
                            str(tmp_path / "rig.toml"))


def test_program_dut_joins_through_a_pty_and_its_output_is_kept(tmp_path):
    cfg = _program_config(tmp_path, SLAVE_PROGRAM)
    assert cfg.mode == "loopback"
    with Rig(cfg) as rig:
        assert not rig.clock.is_virtual
        assert rig.master.snd_nke(5).outcome.name == "ACK"
        program = rig.dut.program
        assert program.running
        assert "got 10 40 05 45 16" in rig.dut_output()
    assert not program.running and program.returncode is not None
    assert program.output().startswith("slave on /dev/")


def test_program_runs_with_its_env_and_cwd_and_its_declarations_reach_the_dut(tmp_path):
    (tmp_path / "firmware").mkdir()
    program = tmp_path / "firmware" / "show.py"
    program.write_text("import os, sys, time\n"
                       "print('cwd', os.getcwd(), 'id', os.environ['METER_ID'], flush=True)\n"
                       "time.sleep(30)\n")
    rig_file = tmp_path / "rig.toml"
    rig_file.write_text(
        '[[dut]]\nname = "prog"\nkind = "program"\n'
        f'command = ["{sys.executable}", "-u", "show.py", "{{tty}}"]\n'
        'cwd = "firmware"\nenv = {METER_ID = "12345678"}\n'
        'bauds = [300, 2400]\nfabrication = 87654321\nsends_fabrication = true\n'
        'profile = "heat-meter"\n')
    with Rig(load_config(rig_file)) as rig:
        dut = rig.dut
        clock = WallClock()
        deadline = clock.now() + 10
        while "id" not in dut.program.output() and clock.now() < deadline:
            clock.sleep(0.05)
        assert dut.program.output().split() == ["cwd", str(tmp_path / "firmware"),
                                                "id", "12345678"]
        assert dut.bauds == (300, 2400)
        assert dut.fabrication == 87654321 and dut.sends_fabrication
        assert dut.profile.name == "heat-meter"
        # no address or secondary in the rig file: the declared profile's
        assert dut.address == 1 and str(dut.secondary) == "1234567843040104"
        with pytest.raises(NotSupportedError, match="does not support 9600 Bd"):
            rig.use_baud(9600)


#: An outside slave that switches its pty to 9600 Bd the moment it has written the E5 to a
#: baud switch (a pty drains at once), then acknowledges a SND_NKE at the new rate.
SWITCHING_SLAVE = """
import os, select, sys, termios, tty
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
tty.setraw(fd)
def speed(baud):
    attrs = termios.tcgetattr(fd)
    attrs[4] = attrs[5] = getattr(termios, "B%d" % baud)
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
def frame(n):
    buf = b""
    while len(buf) < n and select.select([fd], [], [], 10)[0]:
        buf += os.read(fd, n - len(buf))
    return buf
speed(2400)
print("ready", flush=True)
if frame(9) == bytes.fromhex("68 03 03 68 53 05 bd 15 16"):
    os.write(fd, b"\\xe5")
    speed(9600)
    if frame(5) == bytes.fromhex("10 40 05 45 16"):
        os.write(fd, b"\\xe5")
"""


def test_program_switching_its_pty_rate_after_the_e5_is_followed(tmp_path):
    """The E5 a slave writes before switching its pty's rate goes out at the old rate, and
    the master's next frame is heard at the new one, however soon the program switches and
    however late the bridge's reader thread looks at the pty."""
    with Rig(_program_config(tmp_path, SWITCHING_SLAVE)) as rig:
        clock = WallClock()
        deadline = clock.now() + 10
        while "ready" not in rig.dut_output() and clock.now() < deadline:
            clock.sleep(0.05)  # the program has its pty open and set (a loaded host is slow)
        master = rig.master
        switch = master.exchange(bytes.fromhex("68 03 03 68 53 05 bd 15 16"))
        assert switch.outcome.name == "ACK", switch
        master.set_baud(9600)
        nke = master.exchange(bytes.fromhex("10 40 05 45 16"))
        assert nke.outcome.name == "ACK", (nke, rig.dut_output())
        assert rig.dut.extra["endpoint"].baud == 9600


def test_program_that_dies_at_once_is_reported(tmp_path):
    cfg = _program_config(tmp_path, "import sys\nprint('no licence')\nsys.exit(4)\n")
    with pytest.raises(HardwareError, match="exited.*status 4.*no licence"):
        Rig(cfg).open()


def test_program_ignoring_sigterm_is_killed_within_the_bound(tmp_path):
    script = tmp_path / "stubborn.py"
    script.write_text("import signal, sys\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                      "print('ready', flush=True)\nsys.stdin = None\n"
                      "while True:\n    signal.pause()\n")
    program = DutProgram("stubborn", [sys.executable, str(script)])
    clock = WallClock()
    deadline = clock.now() + 20
    while "ready" not in program.output() and clock.now() < deadline:
        clock.sleep(0.02)  # until its SIGTERM handler is in place
    assert "ready" in program.output()
    assert program.stop(bound=0.5) == -9
    assert not program.running


def test_missing_program_is_a_hardware_error():
    with pytest.raises(HardwareError, match="cannot start 'no-such-meter-firmware'"):
        DutProgram("x", ["no-such-meter-firmware", "/dev/null"])


# --- loopback: the agent on 127.0.0.1 -----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_loopback_agent_is_controlled_over_http(tmp_path):
    token = tmp_path / "agent.token"
    token.write_text("loopback-test-token\n")
    token.chmod(0o600)
    port = _free_port()
    cfg = config_from_dict({"dut": [{
        "name": "agent", "kind": "agent", "url": f"http://127.0.0.1:{port}",
        "token_file": str(token), "features": ["primary"],
        "command": ["mbus-rig", "agent", "--port", "{tty}", "--listen", f"127.0.0.1:{port}",
                    "--token-file", str(token), "--no-echo", "--gpio", "sim"]}]},
        str(tmp_path / "loopback.toml"))
    with Rig(cfg) as rig:
        dut = rig.dut
        assert dut.kind == "agent" and dut.address == 1  # as the agent reports it
        assert rig.master.req_ud2(dut.address).telegram.header.id == dut.secondary.id
        dut.control.arm("silence", 1)
        assert rig.master.req_ud2(dut.address).exchange.attempts == 2
        assert "listening on" in rig.dut_output()


def test_loopback_example_file_is_valid():
    cfg = load_config(ROOT / "rig" / "examples" / "loopback.toml")
    assert cfg.mode == "loopback" and cfg.duts[0].kind == "agent"


def test_master_read_latency_from_the_rig_file_reaches_the_master_engine():
    cfg = config_from_dict({"master": {"read_latency": 0.016},
                            "dut": [{"name": "m", "address": 5}]}, "usb.toml")
    with Rig(cfg) as rig:
        assert rig.master.link.read_latency == 0.016
        assert rig.master.snd_nke(5).outcome.name == "ACK"
