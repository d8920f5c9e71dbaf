"""Value-change dumps of the bus levels (hardware/sim/levels.py, fixtures/reporting/vcd.py):
the dump parses as VCD and its edges, read back by a UART at the exchange's rate, are the
bytes that went over the wire; a failing scenario gets one attached."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures.reporting.vcd import value_change_dump
from hardware.sim import SimBus, Simulation
from hardware.sim.levels import LevelRecorder
from hardware.waveform import Waveform
from protocol.chars import WireBytes
from protocol.errors import HardwareError

pytest_plugins = ["pytester"]


# --- a small VCD reader and a UART that reads its edges ---------------------------------------


@dataclass
class Dump:
    timescale_s: float
    signals: dict[str, list[tuple[int, int]]]  # name -> [(time in ticks, level)]
    end: int


def read_vcd(text: str) -> Dump:
    """Parse the VCD subset a logic analyser writes: 1-bit wires, #time, 0x/1x changes."""
    header, _, body = text.partition("$enddefinitions $end")
    assert body, "no $enddefinitions"
    scale = re.search(r"\$timescale\s+(\d+)\s*(s|ms|us|ns|ps)\s+\$end", header)
    assert scale, "no $timescale"
    unit = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "ps": 1e-12}[scale.group(2)]
    names = {}
    for size, code, name in re.findall(r"\$var\s+wire\s+(\d+)\s+(\S+)\s+(\S+)\s+\$end", header):
        assert size == "1"
        names[code] = name
    signals: dict[str, list[tuple[int, int]]] = {n: [] for n in names.values()}
    now = 0
    for token in body.split():
        if token.startswith("#"):
            assert int(token[1:]) >= now, "time goes backwards"
            now = int(token[1:])
        elif token[0] in "01" and token[1:] in names:
            signals[names[token[1:]]].append((now, int(token[0])))
        else:
            assert token in ("$dumpvars", "$end"), f"unexpected VCD token {token!r}"
    return Dump(int(scale.group(1)) * unit, signals, now)


def level_at(changes: list[tuple[int, int]], t: float) -> int:
    level = 1
    for time, value in changes:
        if time > t:
            break
        level = value
    return level


def uart_bytes(dump: Dump, name: str, baud: int) -> list[int]:
    """Read 8E1 characters from a wire: a falling edge from idle, then every bit sampled in
    its middle; parity and stop bit must be right."""
    changes = dump.signals[name]
    bit = 1.0 / baud / dump.timescale_s
    out, busy_until = [], -1.0
    for i, (time, level) in enumerate(changes):
        previous = changes[i - 1][1] if i else 1
        if level != 0 or previous != 1 or time < busy_until:
            continue
        bits = [level_at(changes, time + (k + 0.5) * bit) for k in range(11)]
        assert bits[0] == 0 and bits[10] == 1, f"{name}: framing error at {time}"
        value = sum(b << k for k, b in enumerate(bits[1:9]))
        assert bits[9] == bin(value).count("1") % 2, f"{name}: parity error at {time}"
        out.append(value)
        busy_until = time + 10.5 * bit
    return out


# --- the writer and the recorder ------------------------------------------------------------


def test_dump_of_a_master_frame_and_a_slave_answer_reads_back_as_their_bytes():
    sim = Simulation(1)
    bus = SimBus(sim, master_baud=2400)
    slave = bus.add_slave("meter")
    recorder = LevelRecorder(bus)
    recorder.restart()
    request = bytes.fromhex("105B05 6016".replace(" ", ""))
    end = bus.master.transmit(request)
    answer = bytes.fromhex("E5")
    slave.transmit(answer, at=end + 0.050)
    sim.run_until(end + 0.2)
    levels = recorder.levels(0.0, end + 0.2)
    dump = read_vcd(value_change_dump(levels, origin=0.0, end=end + 0.2, comment="test"))
    assert set(dump.signals) == {"master_voltage", "slave_current"}
    assert bytes(uart_bytes(dump, "master_voltage", 2400)) == request
    assert bytes(uart_bytes(dump, "slave_current", 2400)) == answer
    first_edge = dump.signals["slave_current"][1]  # after $dumpvars' initial value
    assert first_edge == (round((end + 0.050) * 1e6), 0)  # the answer's start bit


def test_collision_and_bad_parity_are_on_the_wires_as_sent():
    """Two slaves at once AND on the current wire; a wrong parity bit is visible too."""
    sim = Simulation(1)
    bus = SimBus(sim, master_baud=9600)
    a, b = bus.add_slave("a"), bus.add_slave("b")
    recorder = LevelRecorder(bus)
    recorder.restart()
    a.transmit(bytes([0xF0]), at=0.001)
    b.transmit(bytes([0x0F]), at=0.001)
    bus.master.transmit(WireBytes(bytes([0x55]), frozenset({0})), at=0.01)
    sim.run_until(0.02)
    dump = read_vcd(value_change_dump(recorder.levels(0.0, 0.02), origin=0.0, end=0.02))
    assert uart_bytes(dump, "slave_current", 9600) == [0x00]  # F0 AND 0F, parity 0 fits
    with pytest.raises(AssertionError, match="parity error"):
        uart_bytes(dump, "master_voltage", 9600)


def test_recording_starts_at_restart_but_keeps_what_is_still_on_the_line():
    sim = Simulation(1)
    bus = SimBus(sim, master_baud=300)
    recorder = LevelRecorder(bus)
    bus.master.transmit(b"\x10\x40")  # two characters: 73 ms at 300 Bd
    sim.run_until(0.010)  # the first is under way
    recorder.restart()
    sim.run_until(0.2)
    master, _ = recorder.levels(0.0, 0.2)
    assert master.level_at(0.001) == 0  # the start bit sent before the restart is kept
    sim.run_until(0.5)
    recorder.restart()
    master, current = recorder.levels(0.3, 0.5)
    assert master.edges == () and master.initial == 1 and current.edges == ()


def test_power_cut_holds_the_master_voltage_at_space():
    sim = Simulation(1)
    bus = SimBus(sim)
    recorder = LevelRecorder(bus)
    recorder.restart()
    sim.run_until(0.1)
    bus.set_power(False)
    sim.run_until(0.3)
    bus.set_power(True)
    master, _ = recorder.levels(0.0, 0.5)
    assert master.edges == ((0.1, 0), (0.3, 1))


def test_waveform_from_intervals_merges_and_clips():
    w = Waveform.from_intervals("w", [(0.2, 0.4), (0.3, 0.5), (0.9, 2.0), (-1, 0.05)], 0.0,
                                1.0, inside=1)
    assert w.initial == 1
    assert w.edges == ((0.05, 0), (0.2, 1), (0.5, 0), (0.9, 1))
    assert [w.level_at(t) for t in (0.0, 0.1, 0.25, 0.6, 0.95)] == [1, 0, 1, 0, 1]


def test_writer_refuses_nothing_to_dump_and_rejects_an_empty_window():
    with pytest.raises(ValueError, match="at least one waveform"):
        value_change_dump([], origin=0.0, end=1.0)
    bus = SimBus(Simulation(1))
    with pytest.raises(ValueError, match="empty"):
        LevelRecorder(bus).levels(1.0, 1.0)


# --- a failing scenario gets the dump of its failing exchange -------------------------------

FAILING = """
import pytest

@pytest.mark.area("link")
@pytest.mark.clause("EN 13757-2 link layer, transmission procedure", "retries")
def test_needs_one_attempt(master, dut):
    master.snd_nke(dut.address)
    dut.control.arm("silence", 1)
    reply = master.req_ud2(dut.address)
    assert reply.exchange.attempts == 1, "the DUT's first answer was lost"
"""


def _results(alluredir: Path) -> dict[str, dict]:
    return {r["name"]: r for r in (json.loads(p.read_text())
                                   for p in alluredir.glob("*-result.json"))}


def test_failing_scenario_gets_a_vcd_of_its_failing_exchange(pytester):
    pytester.makepyfile(FAILING)
    alluredir = pytester.path / "allure"
    pytester.runpytest(f"--alluredir={alluredir}", "-p", "no:cacheprovider").assert_outcomes(
        failed=1)
    result = _results(alluredir)["test_needs_one_attempt"]
    attachments = {a["name"]: a for a in result["attachments"]}
    vcd = attachments["failing exchange.vcd"]
    assert vcd["source"].endswith(".vcd")
    dump = read_vcd((alluredir / vcd["source"]).read_text())
    steps = [s for s in result["steps"] if s["name"].startswith("REQ_UD2")]
    params = {p["name"]: p["value"] for p in steps[-1]["parameters"]}
    request = bytes.fromhex(params["request"])
    answer = bytes.fromhex(params["answer"])
    assert params["attempts"] == "2"
    # the request twice (the first went unanswered), the answer once, in the dump's edges
    assert bytes(uart_bytes(dump, "master_voltage", 2400)) == request * 2
    assert bytes(uart_bytes(dump, "slave_current", 2400)) == answer
    window = dump.signals["response_window"]
    assert [level for _, level in window] == [0, 1, 0, 1, 0]  # two windows opened and closed


def test_levels_dropped_for_want_of_room_are_an_error_not_an_idle_line(monkeypatch):
    import hardware.sim.levels as levels

    monkeypatch.setattr(levels, "RECORD_LIMIT", 4)
    sim = Simulation(1)
    bus = SimBus(sim, master_baud=9600)
    recorder = LevelRecorder(bus)
    recorder.restart()
    end = bus.master.transmit(bytes(range(1, 9)))  # 8 characters, 4 kept
    sim.run_until(end + 0.01)
    with pytest.raises(HardwareError, match="no longer kept"):
        recorder.levels(0.0, end)
    master, _ = recorder.levels(end - 0.001, end)  # the last characters are still there
    assert master.edges


LATE = """
from tests_hil import _wire as w

def test_late_e5(master, dut):
    dut.control.arm("late", 1)
    exchange = w.ask(master, w.snd_nke(dut.address))
    assert w.outcome(exchange) == "ack", "no E5 in the window"
"""


def test_an_answer_after_the_window_is_in_the_dump_and_the_diagram(pytester):
    """The master stopped listening; the bus still carried the late E5: both show it."""
    pytester.makepyfile(LATE)
    alluredir = pytester.path / "allure"
    pytester.runpytest(f"--alluredir={alluredir}", "-p", "no:cacheprovider").assert_outcomes(
        failed=1)
    result = _results(alluredir)["test_late_e5"]
    attachments = {a["name"]: a for a in result["attachments"]}
    dump = read_vcd((alluredir / attachments["failing exchange.vcd"]["source"]).read_text())
    assert bytes(uart_bytes(dump, "master_voltage", 2400)) == bytes.fromhex("1040054516")
    assert uart_bytes(dump, "slave_current", 2400) == [0xE5]
    window_closes = dump.signals["response_window"][-1][0]
    answer_starts = dump.signals["slave_current"][1][0]
    assert answer_starts > window_closes  # after the window, as sent
    diagram = (alluredir / attachments["failing exchange.svg"]["source"]).read_text()
    assert "#1 E5" in diagram and "too late" in diagram and "no answer" not in diagram
