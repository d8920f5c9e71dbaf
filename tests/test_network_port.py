"""A master over a TCP gateway (issue 10): characters that arrive in TCP segments with
pauses between them (Nagle's algorithm meeting a delayed ACK) must not be taken for an
inter-character gap inside the slave's frame; network ports get a default read latency, and
a gap error names the setting that fixes it.

The gateway is the project's own raw TCP gateway to a simulated bus running in real time
(``VirtualBusServer.open_tcp``); between it and the master sits a relay that holds back the
rest of each answer for :data:`STALL_S` after its first byte, as a Nagle stall does.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from test_tools_options import run_cli

from hardware.clock import WallClock
from hardware.serial_port import NETWORK_READ_LATENCY, default_read_latency
from hardware.sim.bridges import VirtualBusServer
from protocol.link.master import MasterLink
from rig.config import config_from_dict
from rig.tools.bus import sim_population

STALL_S = 0.06
"""The relay's stall after an answer's first byte: longer than the gap a master tolerates
at 9600 Bd without read latency (2 x 33 bit times, 6.9 ms), shorter than a Nagle stall can be."""
QUIET_S = 0.1
"""A byte after this much quiet starts a new answer."""
IO_TIMEOUT_S = 5.0


class StallingRelay:
    """127.0.0.1 TCP relay: requests go straight through; of the gateway's bytes, the first
    after a quiet spell goes at once and the rest of that segment STALL_S later."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(IO_TIMEOUT_S)
        self.address = self._server.getsockname()[:2]
        self._upstream = upstream
        self._stop = threading.Event()
        self.stalls = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        clock = WallClock()
        try:
            client, _ = self._server.accept()
        except OSError:
            return
        with client, socket.create_connection(self._upstream, timeout=IO_TIMEOUT_S) as gateway:
            client.settimeout(0.02)
            gateway.settimeout(0.02)
            last = float("-inf")
            while not self._stop.is_set():
                try:
                    data = client.recv(4096)
                    if not data:
                        return
                    gateway.sendall(data)
                except TimeoutError:
                    pass
                try:
                    data = gateway.recv(4096)
                except TimeoutError:
                    continue
                if not data:
                    return
                if clock.now() - last > QUIET_S:
                    client.sendall(data[:1])
                    self.stalls += 1
                    self._stop.wait(STALL_S)  # the stall this relay exists to make
                    data = data[1:]
                if data:
                    client.sendall(data)
                last = clock.now()

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        self._thread.join(IO_TIMEOUT_S)


@pytest.fixture
def relay() -> Iterator[tuple[str, StallingRelay]]:
    with VirtualBusServer(sim_population(1, seed=5, baud=9600), baud=9600) as server:
        relay = StallingRelay(server.open_tcp("127.0.0.1", 0))
        try:
            yield "socket://{}:{}".format(*relay.address), relay
        finally:
            relay.close()


def test_network_ports_get_a_default_read_latency() -> None:
    assert default_read_latency("socket://gw:10001") == NETWORK_READ_LATENCY
    assert default_read_latency("rfc2217://gw:2217") == NETWORK_READ_LATENCY
    assert default_read_latency("/dev/ttyUSB0") == 0.0
    assert default_read_latency("mbussim://sim") == 0.0
    gateway = config_from_dict({"bus": {"kind": "real"}, "gpio": {"backend": "sim"},
                                "master": {"port": "socket://gw:10001"},
                                "dut": [{"name": "m", "kind": "black-box", "address": 1}]},
                               "gw.toml")
    assert gateway.master.read_latency == NETWORK_READ_LATENCY
    chosen = config_from_dict({"bus": {"kind": "real"}, "gpio": {"backend": "sim"},
                               "master": {"port": "socket://gw:10001", "read_latency": 0.05},
                               "dut": [{"name": "m", "kind": "black-box", "address": 1}]},
                              "gw.toml")
    assert chosen.master.read_latency == 0.05


def test_an_answer_stalled_by_tcp_is_one_frame(capsys: pytest.CaptureFixture[str],
                                               relay: tuple[str, StallingRelay]) -> None:
    url, stalling = relay
    code, out, err = run_cli(capsys, "read", "-d", url, "-b", "9600", "-a", "1", "--json",
                             "--timeout", "0.5")
    assert code == 0, err
    assert '"a": 1' in out
    assert stalling.stalls >= 1  # the answer really came in two segments


def test_without_read_latency_the_gap_message_names_the_setting(
        capsys: pytest.CaptureFixture[str], relay: tuple[str, StallingRelay]) -> None:
    url, stalling = relay
    code, out, err = run_cli(capsys, "read", "-d", url, "-b", "9600", "-a", "1",
                             "--read-latency", "0", "--retries", "0", "--timeout", "0.5")
    assert code == 1 and out == "", err
    assert stalling.stalls >= 1
    assert "inter-character gap" in err and "the line was idle" in err
    assert "master.read_latency (tools: --read-latency), now 0 ms" in err
    assert err.count("\n") == 1


def test_the_gap_limit_includes_the_read_latency() -> None:
    base = MasterLink(9600).gap_limit
    assert MasterLink(9600, read_latency=NETWORK_READ_LATENCY).gap_limit == pytest.approx(
        base + NETWORK_READ_LATENCY)
    assert base < STALL_S < NETWORK_READ_LATENCY
