"""The slave agent in-process: runtime on a pseudo-terminal, HTTP API, AgentClient, OpenAPI."""

from __future__ import annotations

import json
import os
import select
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hardware.clock import WallClock
from hardware.gpio.sim import SimGpio
from hardware.lines import Line
from hardware.serial_port import SerialBusPort
from protocol import frames
from protocol.errors import ConfigError, HardwareError, RigTimeoutError
from protocol.meter import FAULTS, defect_names, heat_meter_profile
from rig.agent.api import ROUTES, allowed_methods
from rig.agent.client import AgentClient, read_token_file
from rig.agent.runtime import SlaveRuntime
from rig.agent.server import AgentServer, openapi_document, serve_in_thread

TOKEN = "test-token-0123456789abcdef"
PF_PIN = 24


@dataclass
class Agent:
    client: AgentClient
    runtime: SlaveRuntime
    server: AgentServer
    master: int  # the pty side the test plays the bus master on
    gpio: SimGpio


@pytest.fixture
def agent() -> Iterator[Agent]:
    master, slave = os.openpty()
    clock = WallClock()
    gpio = SimGpio(clock)
    gpio.drive(PF_PIN, True)  # TSS721A PF high: bus supply good
    pf = Line(gpio, PF_PIN, "slave_power_fail", active_high=False)
    port = SerialBusPort(os.ttyname(slave), clock, baud=2400)
    runtime = SlaveRuntime(port, clock, heat_meter_profile(), port_name="pty", echo=False,
                           power_fail=pf)
    server = AgentServer(("127.0.0.1", 0), runtime, TOKEN, read_timeout=2.0, request_deadline=5.0)
    runtime.start()
    serve_in_thread(server)
    try:
        yield Agent(AgentClient(server.url, TOKEN, timeout=5.0), runtime, server, master, gpio)
    finally:
        server.shutdown()
        server.server_close()
        runtime.stop()
        port.close()
        os.close(master)
        os.close(slave)


def read_frame(fd: int, timeout: float = 3.0) -> bytes:
    """One frame (or E5) from the pty, or what arrived before ``timeout`` of silence."""
    buf = b""
    while True:
        if buf:
            need = frames.frame_length(buf[0], buf[1] if len(buf) > 1 else None)
            if need is not None and len(buf) >= need:
                return buf
        if not select.select([fd], [], [], timeout)[0]:
            return buf
        buf += os.read(fd, 300)


def req_ud2(address: int, fcb: bool = False) -> bytes:
    return frames.encode(frames.ShortFrame(0x7B if fcb else 0x5B, address))


def test_the_slave_answers_on_the_wire(agent: Agent) -> None:
    os.write(agent.master, frames.encode(frames.ShortFrame(0x40, 1)))  # SND_NKE
    assert read_frame(agent.master) == b"\xe5"
    os.write(agent.master, req_ud2(1))
    answer = frames.decode(read_frame(agent.master))
    assert isinstance(answer, frames.LongFrame) and answer.a == 1


def test_status_identity_profile(agent: Agent) -> None:
    status = agent.client.status()
    assert status["loop_running"] and status["baud"] == 2400 and status["powered"]
    assert status["armed"] == [] and status["defects"] == []
    ident = agent.client.identity()
    profile = heat_meter_profile()
    assert ident["address"] == profile.address
    assert ident["id"] == profile.id and ident["manufacturer"] == profile.manufacturer
    info = agent.client.profile()
    assert info["bauds"] == list(profile.bauds)
    assert set(info["fault_kinds"]) == set(FAULTS)
    assert info["defect_names"] == defect_names()


def test_armed_silence_wears_off(agent: Agent) -> None:
    reply = agent.client.arm("silence", count=1)
    assert reply["armed"]["kind"] == "silence"
    assert agent.client.status()["armed"][0]["remaining"] == 1
    os.write(agent.master, frames.encode(frames.ShortFrame(0x40, 1)))
    assert read_frame(agent.master, timeout=0.5) == b""  # silenced
    os.write(agent.master, frames.encode(frames.ShortFrame(0x40, 1)))
    assert read_frame(agent.master) == b"\xe5"
    assert agent.client.status()["armed"] == []


def test_arm_with_params_and_disarm(agent: Agent) -> None:
    agent.client.arm("wrong_address", count=3, address=7)
    armed = agent.client.status()["armed"]
    assert armed == [{"kind": "wrong_address", "remaining": 3, "params": {"address": 7}}]
    agent.client.disarm()
    assert agent.client.status()["armed"] == []


def test_arm_application_error_over_http(agent: Agent) -> None:
    agent.client.arm("application_error", count=1, code=9)
    os.write(agent.master, frames.encode(frames.ShortFrame(0x7B, 1)))
    answer = frames.decode(read_frame(agent.master))
    assert isinstance(answer, frames.LongFrame) and answer.ci == 0x70 and answer.data == b"\x09"
    assert agent.client.status()["armed"] == []
    with pytest.raises(ConfigError, match=r"code=256 must be an integer 0\.\.255"):
        agent.client.arm("application_error", code=256)


def test_openapi_lists_every_fault_kind() -> None:
    schema = json.loads(openapi_document())["paths"]["/faults"]["post"]["requestBody"]
    kind = schema["content"]["application/json"]["schema"]["properties"]["kind"]
    assert kind["enum"] == list(FAULTS)


def test_defects_switch_on_and_off(agent: Agent) -> None:
    assert agent.client.set_defects({"answers_bad_checksum", "answers_too_late"})["defects"] == [
        "answers_bad_checksum", "answers_too_late"]
    assert agent.client.status()["defects"] == ["answers_bad_checksum", "answers_too_late"]
    agent.client.set_defects([])
    assert agent.client.status()["defects"] == []


def test_set_baud_and_reset(agent: Agent) -> None:
    agent.client.set_defects(["ignores_fcb"])
    assert agent.client.set_baud(9600) == {"baud": 9600}
    assert agent.runtime.port.baud == 9600
    assert agent.client.status()["defects"] == ["ignores_fcb"]  # kept over a baud change
    with pytest.raises(ConfigError, match=r"refused: baud 600: not a rate of profile heat-meter \(allowed: 300, 2400, 9600\)$"):
        agent.client.set_baud(600)
    reset = agent.client.reset()
    assert reset["baud"] == 2400 and agent.runtime.port.baud == 2400
    assert agent.client.status()["defects"] == []


def test_trace_has_received_and_sent_characters(agent: Agent) -> None:
    agent.client.clear_trace()
    request = frames.encode(frames.ShortFrame(0x40, 1))
    os.write(agent.master, request)
    assert read_frame(agent.master) == b"\xe5"
    trace = agent.client.slave_trace()
    rx = [e.value for e in trace.entries if e.direction == "M>S"]
    tx = [e.value for e in trace.entries if e.direction == "S>M"]
    assert bytes(rx) == request and tx == [0xE5]
    assert [e.source for e in trace.entries] == ["rx"] * len(request) + ["tx"]
    last = trace.entries[-1].time
    assert len(agent.client.trace(since=last)) == 1
    assert len(agent.client.slave_trace(limit=2)) == 2
    framed = agent.client._call("GET", "/trace?format=frames")["frames"]
    assert [f["direction"] for f in framed] == ["M>S", "S>M"]


def test_power_fail_line_silences_and_restarts_the_slave(agent: Agent) -> None:
    assert agent.client.power_fail() == {"wired": True, "asserted": False, "pin": PF_PIN,
                                         "active_high": False}
    agent.client.set_baud(9600)
    agent.gpio.drive(PF_PIN, False)  # PF low: bus supply lost
    assert agent.client.power_fail()["asserted"] is True
    assert agent.client.status()["powered"] is False
    os.write(agent.master, frames.encode(frames.ShortFrame(0x40, 1)))
    assert read_frame(agent.master, timeout=0.5) == b""
    agent.gpio.drive(PF_PIN, True)
    status = agent.client.status()
    assert status["powered"] and status["power_losses"] == 1
    assert status["baud"] == 9600  # power-up at the rate it was put at


def test_client_errors_are_clear(agent: Agent) -> None:
    with pytest.raises(HardwareError, match="token refused \\(401\\)"):
        AgentClient(agent.server.url, "wrong-token").status()
    with pytest.raises(ConfigError, match="refused: unknown fault 'melt'|kind 'melt' is not known"):
        agent.client.arm("melt")
    with pytest.raises(ConfigError, match="fault late: delay=-1 must be a number 0.0..60.0"):
        agent.client.arm("late", delay=-1)
    with pytest.raises(ConfigError, match="defect 'x' is not known"):
        agent.client.set_defects(["x"])
    assert agent.client.status()["armed"] == []


def test_client_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(HardwareError, match="connection refused.*mbus-rig agent"):
        AgentClient(f"http://127.0.0.1:{port}", TOKEN, timeout=2.0).status()


def test_client_timeout() -> None:
    with socket.socket() as s:  # listens, never answers
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        with pytest.raises(RigTimeoutError, match="no reply within 0.3 s"):
            AgentClient(url, TOKEN, timeout=0.3).status()


def test_client_refuses_bad_url_and_token(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not an http"):
        AgentClient("ftp://x", TOKEN)
    with pytest.raises(ConfigError, match="empty"):
        AgentClient("http://x", "")
    (tmp_path / "t").write_text("  two words \n")
    with pytest.raises(ConfigError, match="one word"):
        read_token_file(tmp_path / "t")
    with pytest.raises(ConfigError, match="token file .*missing"):
        read_token_file(tmp_path / "missing")
    assert "test-token" not in repr(AgentClient("http://x", TOKEN))


def test_openapi_document_matches_the_routes(agent: Agent) -> None:
    served = agent.client.openapi()
    assert served == json.loads(openapi_document())
    documented = {(path, method.upper()) for path, ops in served["paths"].items()
                  for method in ops}
    routed = {(path, method) for path, methods in ROUTES.items() for method in methods}
    routed.add(("/openapi.json", "GET"))
    assert documented == routed
    for path, _method in documented:
        assert allowed_methods(path) is not None


def test_client_is_a_dut_control(agent: Agent) -> None:
    from rig.dut import DutControl

    assert isinstance(agent.client, DutControl)
    entries = agent.client.trace()
    assert isinstance(entries, list)
