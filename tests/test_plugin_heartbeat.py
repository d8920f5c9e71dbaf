"""The run is never silent during a long case: the summary names the case running and for
how long once nothing was said for HEARTBEAT_S (fixtures/summary.py)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from fixtures import summary
from fixtures.summary import HEARTBEAT_S, ScenarioSummary

SLOW = "tests_hil/test_power_and_wiring.py::test_power_up_time[300Bd]"


class Reporter:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.written = threading.Event()

    def write_line(self, line: str) -> None:
        self.lines.append(line)
        self.written.set()


def make_summary(clock, reporter: Reporter | None = None) -> ScenarioSummary:
    config = SimpleNamespace(pluginmanager=SimpleNamespace(
        get_plugin=lambda name: reporter if name == "terminalreporter" else None))
    s = ScenarioSummary(config)  # type: ignore[arg-type]
    s._clock = clock
    s._start = s._said = clock.now()
    s.seen_scenarios, s.total = True, 12
    return s


def test_a_long_case_is_named_with_its_running_time(clock):
    s = make_summary(clock)
    s.pytest_runtest_logstart(SLOW, None)
    clock.t = HEARTBEAT_S - 1
    assert s.heartbeat() is None
    clock.t = HEARTBEAT_S + 1
    line = s.heartbeat()
    assert line == (f"[mbus-rig] 0/12 scenarios, 0 failed, 0 skipped, 31 s elapsed; "
                    f"running {SLOW} for 31 s")
    assert s.heartbeat() is None  # just said
    clock.t = 2 * HEARTBEAT_S + 1
    assert s.heartbeat().endswith(f"running {SLOW} for 61 s")


def test_no_heartbeat_between_cases_or_without_scenarios(clock):
    s = make_summary(clock)
    clock.t = 10 * HEARTBEAT_S
    assert s.heartbeat() is None  # nothing running
    s.pytest_runtest_logstart(SLOW, None)
    clock.t += 5
    assert s.heartbeat() is None  # the case only started
    s.seen_scenarios = False
    clock.t += 2 * HEARTBEAT_S
    assert s.heartbeat() is None  # a run without M-Bus scenarios stays silent


def test_the_longest_running_case_and_the_time_left_are_shown(clock):
    s = make_summary(clock)
    s.done = 3
    s.pytest_runtest_logstart("a.py::test_first", None)
    clock.t = 10
    s.pytest_runtest_logstart("b.py::test_second", None)
    clock.t = 40
    line = s.heartbeat()
    assert line is not None and "3/12 scenarios" in line and "about 120 s left" in line
    assert line.endswith("running a.py::test_first for 40 s")


def test_the_heartbeat_thread_writes_the_line_and_stops(clock, monkeypatch):
    monkeypatch.setattr(summary, "HEARTBEAT_CHECK_S", 0.01)
    reporter = Reporter()
    s = make_summary(clock, reporter)
    s.pytest_runtest_logstart(SLOW, None)
    clock.t = HEARTBEAT_S
    s.pytest_sessionstart(None)  # type: ignore[arg-type]
    try:
        assert reporter.written.wait(10), "no heartbeat line within 10 s"
    finally:
        s.pytest_sessionfinish(None)  # type: ignore[arg-type]
    assert s._thread is not None and not s._thread.is_alive()
    assert reporter.lines[0].endswith(f"running {SLOW} for 30 s")
