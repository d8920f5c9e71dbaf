"""The report's SVG charts (fixtures/reporting/svg.py, charts.py): standalone SVG with nothing
to fetch, and drawn where the numbers say."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest

from fixtures.measurements import Measurement
from fixtures.reporting.charts import (
    INSIDE,
    OUTSIDE,
    REQUEST_FILL,
    WINDOW_FILL,
    AnswerDelay,
    answer_delay_chart,
    exchange_diagram,
    limits_chart,
)
from fixtures.reporting.svg import LinearScale, LogScale, Svg
from fixtures.reporting.units import fmt_ms
from hardware.trace import TraceEntry
from protocol.chars import RxChar, WireBytes
from protocol.link.master import Attempt, Outcome
from protocol.timing import char_time, response_window

pytest_plugins = ["pytester"]

NS = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    for element in root.iter():
        assert element.tag != f"{NS}script"
        for name, value in element.attrib.items():
            assert "href" not in name and "url(" not in value, (name, value)
    return root


def _all(root: ET.Element, tag: str) -> list[ET.Element]:
    return list(root.iter(f"{NS}{tag}"))


def _tooltip(element: ET.Element) -> str:
    title = element.find(f"{NS}title")
    return "" if title is None else str(title.text)


def test_svg_writer_escapes_text_and_writes_compact_numbers():
    svg = Svg(100, 50, 'a <b> & "c"')
    svg.text(1.0, 2.333333, "x < y & z")
    svg.rect(0, 0, 10.5, -3, fill="#fff", tooltip="<tip>")
    root = _parse(svg.render())
    assert root.get("viewBox") == "0 0 100 50"
    text = [t for t in _all(root, "text")][0]
    assert text.text == "x < y & z" and text.get("y") == "2.33"
    rect = _all(root, "rect")[-1]
    assert rect.get("height") == "0" and _tooltip(rect) == "<tip>"


def test_scales():
    lin = LinearScale(0.0, 10.0, 100.0, 200.0)
    assert lin(0) == 100 and lin(5) == 150 and lin(10) == 200
    assert lin.ticks(5) == [0, 2, 4, 6, 8, 10]
    log = LogScale(0.001, 1.0, 0.0, 300.0)
    assert log(0.001) == 0 and log(0.01) == pytest.approx(100) and log(1.0) == 300
    assert log.ticks()[:3] == [0.001, 0.002, 0.005] and log.ticks()[-1] == 1.0
    with pytest.raises(ValueError, match="0 < lo < hi"):
        LogScale(0.0, 1.0, 0, 1)


def test_answer_delay_chart_has_a_window_per_rate_and_colours_delays_by_it():
    low300, high300 = response_window(300)
    delays = [AnswerDelay(2400, 0.050, "REQ_UD2 -> RSP_UD"), AnswerDelay(2400, 0.300, "late"),
              AnswerDelay(300, low300 / 2, "early"), AnswerDelay(300, 0.2, "fine")]
    root = _parse(answer_delay_chart(delays, "Answer delays"))
    windows = [r for r in _all(root, "rect") if r.get("fill") == WINDOW_FILL and _tooltip(r)]
    assert len(windows) == 2  # one row per baud rate, lowest rate first (and a legend)
    assert "at 300 Bd: 36.67 ms .. 1150 ms" in _tooltip(windows[0])
    assert "at 2400 Bd: 4.583 ms .. 187.5 ms" in _tooltip(windows[1])
    dots = {_tooltip(c).split(":")[0]: c for c in _all(root, "circle") if _tooltip(c)}
    assert dots["REQ_UD2 -> RSP_UD"].get("fill") == INSIDE
    assert dots["late"].get("fill") == OUTSIDE and dots["early"].get("fill") == OUTSIDE
    assert dots["fine"].get("fill") == INSIDE
    window = windows[1]
    x0 = float(window.get("x", 0))
    x1 = x0 + float(window.get("width", 0))
    assert x0 < float(dots["REQ_UD2 -> RSP_UD"].get("cx", 0)) < x1 < float(
        dots["late"].get("cx", 0))
    texts = " ".join(str(t.text) for t in _all(root, "text"))
    assert "1 outside the window" in texts and "2 answers, 50..300 ms" in texts


def test_answer_delay_chart_of_a_long_run_stays_small():
    delays = [AnswerDelay(2400, 0.005 + i * 1e-6, f"#{i}") for i in range(20_000)]
    svg = answer_delay_chart(delays, "run")
    circles = _all(_parse(svg), "circle")
    assert len(circles) < 200 and len(svg) < 50_000
    assert any("more here" in _tooltip(c) for c in circles)
    with pytest.raises(ValueError, match="at least one"):
        answer_delay_chart([], "none")


def test_limits_chart_places_value_and_limits():
    ok = Measurement("power_up_time", 0.31, "s", None, 5.0)
    bad = Measurement("inter_frame_idle_min", 0.010, "s", 0.01375, None)
    root = _parse(limits_chart([ok, bad, Measurement("probes", 12, "probes")], "limits"))
    texts = [str(t.text) for t in _all(root, "text")]
    assert "310 ms: PASS" in texts and "10 ms: FAIL" in texts
    assert "high 5000 ms" in texts and "low 13.75 ms" in texts
    assert "probes" not in texts  # no limit: not charted
    markers = [c for c in _all(root, "circle")]
    assert [m.get("fill") for m in markers] == [INSIDE, OUTSIDE]
    allowed = [r for r in _all(root, "rect") if r.get("fill") == WINDOW_FILL]
    lo, hi = float(allowed[1].get("x", 0)), float(allowed[1].get("x", 0)) + float(
        allowed[1].get("width", 0))
    assert float(markers[1].get("cx", 0)) < lo < hi  # below the low limit
    with pytest.raises(ValueError, match="with a limit"):
        limits_chart([Measurement("probes", 12)], "none")


@dataclass
class _Exchange:
    history: tuple[Attempt, ...]


def _attempt(number: int, end: float, chars: tuple[RxChar, ...], outcome: Outcome) -> Attempt:
    request = WireBytes(bytes.fromhex("105B056016"))
    return Attempt(number, request, end, chars, outcome, None, None,
                   chars[0].time if chars else None, 2400)


def test_exchange_diagram_shows_every_attempt_its_window_and_the_answer():
    c = char_time(2400)
    first = _attempt(1, 0.1, (), Outcome.NONE)
    second = _attempt(2, 0.5, (), Outcome.NONE)
    start = 0.9 + 0.05  # the answer's start bit, 50 ms after the third request
    answer = tuple(RxChar(0xE5 if i == 0 else 0x00, start + i * c + 10.5 / 2400,
                          parity_error=i == 1) for i in range(2))
    third = _attempt(3, 0.9, answer, Outcome.GARBLED)
    root = _parse(exchange_diagram(_Exchange((first, second, third)), "REQ_UD2 A=5"))
    requests = [r for r in _all(root, "rect") if r.get("fill") == REQUEST_FILL and _tooltip(r)]
    windows = [r for r in _all(root, "rect") if r.get("fill") == WINDOW_FILL and _tooltip(r)]
    assert len(requests) == 3 and len(windows) == 3
    xs = [float(r.get("x", 0)) for r in requests]
    assert xs == sorted(xs)
    texts = [str(t.text) for t in _all(root, "text")]
    assert texts.count("no answer") == 2
    assert "#3 garbled, 2 bytes" in texts and "delay 50 ms" in texts
    garbled = [r for r in _all(root, "rect") if r.get("fill") == OUTSIDE and _tooltip(r)]
    assert _tooltip(garbled[0]) == "E5 00!P"  # the parity error marked as in the trace
    with pytest.raises(ValueError, match="at least one attempt"):
        exchange_diagram(_Exchange(()), "nothing")


def test_exchange_diagram_shows_an_answer_the_master_no_longer_listened_for():
    """From the bus trace: an E5 that starts 22 bit times after the window closed."""
    low, high = response_window(2400)
    attempt = _attempt(1, 0.1, (), Outcome.NONE)
    late_start = 0.1 + high + 22 / 2400
    bus = [TraceEntry(late_start + 10.5 / 2400, "S>M", 2400, 0xE5)]
    root = _parse(exchange_diagram(_Exchange((attempt,)), "SND_NKE A=5", bus))
    texts = [str(t.text) for t in _all(root, "text")]
    assert "#1 E5" in texts and "no answer" not in texts
    assert f"delay {fmt_ms(high + 22 / 2400)}: too late" in texts
    answer = [r for r in _all(root, "rect") if _tooltip(r) == "E5"]
    window = [r for r in _all(root, "rect") if r.get("fill") == WINDOW_FILL and _tooltip(r)][0]
    assert answer[0].get("fill") == OUTSIDE
    assert float(answer[0].get("x", 0)) > float(window.get("x", 0)) + float(
        window.get("width", 0))  # right of the window


def test_an_answer_that_began_before_the_request_ended_is_drawn_left_of_the_axis():
    delays = [AnswerDelay(2400, -0.018, "talked over"), AnswerDelay(2400, 0.05, "fine")]
    root = _parse(answer_delay_chart(delays, "Answer delays"))
    dots = {_tooltip(c).split(":")[0]: c for c in _all(root, "circle") if _tooltip(c)}
    window = [r for r in _all(root, "rect") if r.get("fill") == WINDOW_FILL and _tooltip(r)][0]
    ticks = [float(line.get("x1", 0)) for line in _all(root, "line")]
    below_zero = [t for t in _all(root, "text") if t.text == "<= 0"]
    cx = float(dots["talked over"].get("cx", 0))
    assert dots["talked over"].get("fill") == OUTSIDE
    assert 0 < cx < min(ticks) and cx < float(window.get("x", 0))
    assert [float(t.get("x", 0)) for t in below_zero] == [cx]  # labelled under the axis


RUN = """
import pytest

@pytest.mark.parametrize("n", range(4))
def test_reads(master, dut, n):
    master.snd_nke(dut.address)
    master.req_ud2(dut.address)
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "xdist"])
def test_run_chart_holds_every_answer_of_the_run(pytester, workers):
    """Eight answers in four scenarios, in one process or spread over two xdist workers:
    the run's chart (an allure global attachment) counts all eight."""
    pytester.makepyfile(RUN)
    alluredir = pytester.path / "allure"
    pytester.runpytest_subprocess(f"--alluredir={alluredir}", "-p", "no:cacheprovider",
                                  *workers).assert_outcomes(passed=4)
    globals_ = [json.loads(p.read_text()) for p in alluredir.glob("*-globals.json")]
    attachments = [a for g in globals_ for a in g.get("attachments", [])]
    assert [a["name"] for a in attachments] == ["answer delays per baud rate.svg"]
    root = _parse((alluredir / attachments[0]["source"]).read_text())
    assert root.find(f"{NS}title") is not None
    assert "(8 answers; 2400 Bd)" in str(root.find(f"{NS}title").text)  # type: ignore[union-attr]
