"""Safe state through a whole pytest session on the simulated rig: every exit path ends with
every fault line released. Each case runs pytest in a child process whose SimGpio logs every
level change of the fault lines to a file (pin level per line); the parent reads it."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT_S = 30
POWER_CUT_PIN, SHORT_PIN = 17, 22  # rig.config.SIM_LINES, active high

CONFTEST = """
import os
import pytest

@pytest.fixture(scope="session")
def logged(rig):
    log = open(os.environ["GPIO_LOG"], "a", buffering=1)
    for line in rig.config.gpio.lines:
        rig.gpio.on_change(line.pin, lambda pin, level: log.write(f"{pin} {int(level)}\\n"))
    return rig

@pytest.fixture
def two_faults(logged, faults):
    faults.inject("power_cut")
    faults.inject("short")
    return faults
"""

SCENARIOS = {
    "signal": """
import signal
def test_block(two_faults, pytestconfig):
    labgrid = pytestconfig.pluginmanager.has_plugin("labgrid")
    # one line, from the body: every fixture is set up by now
    print(f"READY (labgrid's plugin loaded: {labgrid})", flush=True)
    signal.pause()
""",
    "failing": """
def test_fails(two_faults):
    assert False, "DUT misbehaved"

def test_next_one_starts_clean(logged):
    assert logged.faults.active == []
""",
    "keyboard": """
def test_interrupted(two_faults):
    raise KeyboardInterrupt
""",
    "fixture": """
import pytest

@pytest.fixture
def broken(two_faults):
    raise RuntimeError("fixture blew up")

def test_with_broken_fixture(broken):
    pass

def test_next_one_starts_clean(logged):
    assert logged.faults.active == []
""",
    "exit": """
import pytest
def test_stops_the_session(two_faults):
    pytest.exit("operator said stop")
""",
    "hang": """
import signal, threading
import pytest

@pytest.fixture
def hangs_in_teardown(two_faults):
    yield
    threading.Event().wait()  # a teardown that never ends

def test_block(hangs_in_teardown):
    print("READY", flush=True)  # from the body: the hanging fixture is set up by now
    signal.pause()
""",
}


def _levels(log: Path) -> dict[int, int]:
    levels: dict[int, int] = {}
    for row in log.read_text().splitlines():
        pin, level = row.split()
        levels[int(pin)] = int(level)
    return levels


#: After the rig is closed, a plugin's terminal summary that runs past the watchdog's bound
#: (counted from the interrupt, which comes after the signal that armed it).
SLOW_SUMMARY = """
import time

from rig.safety import SafeStateGuard

interrupted = []

def pytest_keyboard_interrupt(excinfo):
    interrupted.append(time.monotonic())

def pytest_terminal_summary(terminalreporter):
    if interrupted:
        time.sleep(max(0.0, interrupted[0] + SafeStateGuard().bound + 0.5 - time.monotonic()))
        print("SUMMARY DONE", flush=True)
"""

#: Our plugin alone, and beside labgrid's (a user's project with both installed: the child
#: runs in a folder without the project's pytest options, so labgrid's loads when installed).
PLUGIN_SETS = {
    "alone": ["-p", "no:labgrid"],
    "beside-labgrid": ["-p", "labgrid"],  # its pytest11 entry point
}


def _plugins(name: str) -> list[str]:
    if name == "beside-labgrid":
        pytest.importorskip("labgrid.pytestplugin", reason="labgrid (the farm extra) missing")
    return PLUGIN_SETS[name]


def _run(tmp_path: Path, scenario: str, signum: int | None = None,
         env: dict[str, str] | None = None, args: tuple[str, ...] = (),
         conftest: str = "") -> tuple[int, str, Path]:
    (tmp_path / "conftest.py").write_text(CONFTEST + conftest)
    (tmp_path / "test_scenario.py").write_text(SCENARIOS[scenario])
    log = tmp_path / "gpio.log"
    log.write_text("")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-s", "-q", "-p", "no:cacheprovider", "--rig", "sim",
         *args, "test_scenario.py"], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "GPIO_LOG": str(log), **(env or {})})
    assert proc.stdout is not None
    seen = ""
    try:
        if signum is not None:
            while "READY" not in seen:
                ready, _, _ = select.select([proc.stdout], [], [], CHILD_TIMEOUT_S)
                assert ready, f"no READY from the child: {seen}"
                line = proc.stdout.readline()
                assert line, f"child ended early: {seen}"
                seen += line
            assert _levels(log) == {POWER_CUT_PIN: 1, SHORT_PIN: 1}
            proc.send_signal(signum)
        status = proc.wait(CHILD_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return status, seen + proc.stdout.read(), log


@pytest.mark.parametrize("plugins", list(PLUGIN_SETS))
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_a_scenario(tmp_path, signum, plugins):
    status, out, log = _run(tmp_path, "signal", signum, args=tuple(_plugins(plugins)))
    assert f"labgrid's plugin loaded: {plugins == 'beside-labgrid'}" in out
    assert status == pytest.ExitCode.INTERRUPTED, out
    assert _levels(log) == {POWER_CUT_PIN: 0, SHORT_PIN: 0}
    assert "rig put in safe state" in out


def test_reporting_after_the_rig_is_closed_is_not_cut_by_the_watchdog(tmp_path):
    """The watchdog bounds the rig's teardown; a plugin's summary that runs past the bound
    after the rig is closed ends as pytest's "interrupted", with its reports written."""
    status, out, log = _run(tmp_path, "signal", signal.SIGTERM, conftest=SLOW_SUMMARY,
                            args=("--junitxml=junit.xml",))
    assert status == pytest.ExitCode.INTERRUPTED, out
    assert "SUMMARY DONE" in out and "teardown took longer" not in out
    assert (tmp_path / "junit.xml").is_file()
    assert _levels(log) == {POWER_CUT_PIN: 0, SHORT_PIN: 0}


@pytest.mark.parametrize("scenario, status", [
    ("failing", pytest.ExitCode.TESTS_FAILED),
    ("keyboard", pytest.ExitCode.INTERRUPTED),
    ("fixture", pytest.ExitCode.TESTS_FAILED),
    ("exit", pytest.ExitCode.INTERRUPTED),
])
def test_exit_paths_end_in_safe_state(tmp_path, scenario, status):
    code, out, log = _run(tmp_path, scenario)
    assert code == status, out
    assert _levels(log)[POWER_CUT_PIN] == 0 and _levels(log)[SHORT_PIN] == 0
    assert "1 passed" in out or scenario in ("keyboard", "exit")  # the next scenario ran clean


def test_hung_teardown_after_sigterm_is_cut_short_by_the_watchdog(tmp_path):
    status, out, log = _run(tmp_path, "hang", signal.SIGTERM,
                            env={"MBUS_RIG_TEARDOWN_BOUND_S": "1"})
    assert status == 143, out
    assert "teardown took longer than 1 s" in out
    assert _levels(log) == {POWER_CUT_PIN: 0, SHORT_PIN: 0}  # released before the hang


def test_safe_state_command(tmp_path):
    out = subprocess.run([sys.executable, "-m", "rig", "safe-state", "--rig",
                          str(ROOT / "rig" / "examples" / "sim.toml")],
                         capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    assert out.returncode == 0, out.stderr
    assert "safe state: 5 fault line(s) released" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "rig", "safe-state", "--rig", "nope.toml"],
                         capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    assert bad.returncode == 2 and "nope.toml: not found" in bad.stderr
