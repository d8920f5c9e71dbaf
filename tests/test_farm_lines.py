"""The farm's fault lines over HTTP: the line server (rig/farm/lines.py) on a virtual rig pair
(simulated GPIO wired to a real-time simulated bus, as the relays are), and a Rig driving them
through ``[gpio] backend = "remote"`` (127.0.0.1 only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hardware.gpio.sim import SimGpio
from hardware.sim.bridges import VirtualBusServer
from protocol.errors import ConfigError, HardwareError
from protocol.meter import heat_meter_profile
from rig.config import SIM_LINES, config_from_dict
from rig.farm.lines import LineService, RemoteGpio, open_line_server, sim_line_service
from rig.rig import Rig

TOKEN = "line-token-0123456789abcdef"


@dataclass
class Pair:
    """A virtual rig pair: meter on a real-time bus, TCP master side, line server."""

    bus: VirtualBusServer
    service: LineService
    url: str
    master_url: str
    token_file: Path


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    token_file = tmp_path / "lines.token"
    token_file.write_text(TOKEN + "\n")
    with VirtualBusServer([heat_meter_profile()]) as bus:
        host, port = bus.open_tcp()
        service = sim_line_service(bus.bus, bus.runner)
        server = open_line_server(service, ("127.0.0.1", 0), TOKEN)
        try:
            yield Pair(bus, service, server.url, f"socket://{host}:{port}", token_file)
        finally:
            server.shutdown()
            server.server_close()
            service.close()


def _request(url: str, method: str, body: Any = None, token: str = TOKEN) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_lines_are_listed_released_and_driven_by_pin(pair: Pair) -> None:
    gpio = RemoteGpio(pair.url, TOKEN)
    lines = {line["role"]: line for line in gpio.lines()}
    assert set(lines) == {spec.role for spec in SIM_LINES}
    assert not any(line["asserted"] for line in lines.values())
    pin = lines["bus_short"]["pin"]
    gpio.write(pin, True)  # active high: the short relay on
    assert gpio.read(pin) is True
    assert pair.service.lines["bus_short"].is_asserted
    gpio.release(pin)
    assert not pair.service.lines["bus_short"].is_asserted


def test_refused_requests_say_why_and_change_nothing(pair: Pair) -> None:
    status, body = _request(pair.url + "/pins/5", "PUT", {"level": True})
    assert status == 404 and "GPIO 5 is not a fault line here" in body["error"]
    status, body = _request(pair.url + "/pins/17", "PUT", {"level": "on"})
    assert status == 400 and "level" in body["error"]
    status, body = _request(pair.url + "/pins/17", "PUT", b"{not json")
    assert status == 400
    status, body = _request(pair.url + "/pins/17", "PUT", {"level": True}, token="wrong")
    assert status == 401
    status, _ = _request(pair.url + "/lines", "DELETE")
    assert status == 405
    status, body = _request(pair.url + "/openapi.json", "GET")
    assert status == 404
    assert not pair.service.lines.asserted()


def test_safe_state_releases_every_line(pair: Pair) -> None:
    gpio = RemoteGpio(pair.url, TOKEN)
    for line in gpio.lines():
        gpio.write(line["pin"], line["active_high"])
    assert len(pair.service.lines.asserted()) == len(SIM_LINES)
    assert "5 fault line(s) released" in gpio.safe_state()
    assert pair.service.lines.asserted() == []


def test_remote_gpio_serves_no_inputs_and_names_a_dead_server(pair: Pair) -> None:
    gpio = RemoteGpio(pair.url, TOKEN)
    with pytest.raises(HardwareError, match="only fault-enable outputs"):
        gpio.setup_input(16)
    dead = RemoteGpio("http://127.0.0.1:9", TOKEN, timeout=2.0)
    with pytest.raises(HardwareError, match="line server at http://127.0.0.1:9: connection "
                                            "refused .*mbus-rig line-server"):
        dead.read(17)


def test_a_rig_injects_faults_through_the_line_server(pair: Pair) -> None:
    """A power cut through the remote lines silences the meter on the other side's bus; after
    clearing it (the rig's safe state) the meter answers again; closing the rig leaves every
    line released."""
    lines = [{"role": x["role"], "pin": x["pin"], "active_high": x["active_high"]}
             for x in RemoteGpio(pair.url, TOKEN).lines()]
    cfg = config_from_dict({
        "name": "pair", "bus": {"kind": "real"},
        "master": {"port": pair.master_url},
        "gpio": {"backend": "remote", "url": pair.url, "token_file": str(pair.token_file),
                 "lines": lines},
        "dut": [{"name": "meter", "kind": "black-box", "address": 1}],
    }, "pair.toml")
    assert "parity" not in cfg.capabilities(cfg.duts[0])  # not over a network port
    with Rig(cfg, lock=False) as rig:
        assert rig.master.req_ud2(1).telegram.header is not None
        rig.faults.inject("power_cut")
        assert pair.service.lines["bus_power_cut"].is_asserted
        rig.clock.sleep(0.3)  # past the TSS721A hold-up: the meter is off
        with pytest.raises(Exception, match="[Nn]o answer"):
            rig.master.snd_nke(1)
        rig.faults.clear()
        assert not pair.service.lines.asserted()
        rig.clock.sleep(0.3)  # power-up time
        rig.master.snd_nke(1)
        rig.faults.inject("short")
    assert pair.service.lines.asserted() == []


def test_remote_backend_needs_url_and_token_in_the_rig_file() -> None:
    base = {"bus": {"kind": "real"}, "master": {"port": "/dev/ttyAMA0"}}
    with pytest.raises(ConfigError, match="gpio.url: missing"):
        config_from_dict({**base, "gpio": {"backend": "remote", "token_file": "t"}}, "r.toml")
    with pytest.raises(ConfigError, match="gpio.token_file: missing"):
        config_from_dict({**base, "gpio": {"backend": "remote", "url": "http://h:1"}}, "r.toml")
    with pytest.raises(ConfigError, match="gpio.url: only for backend"):
        config_from_dict({**base, "gpio": {"backend": "rpi", "url": "http://h:1"}}, "r.toml")
    with pytest.raises(ConfigError, match="gpio.backend: \"remote\" drives real relays"):
        config_from_dict({"gpio": {"backend": "remote", "url": "http://h:1",
                                   "token_file": "t"}}, "r.toml")


def test_a_line_service_serves_outputs_only(gpio: SimGpio) -> None:
    specs = [*SIM_LINES[:2], SIM_LINES[0].__class__("slave_power_fail", 16, False, "pf")]
    service = LineService(gpio, specs)
    assert [line.role for line in service.lines] == ["bus_power_cut", "slave_disconnect"]
    service.close()
