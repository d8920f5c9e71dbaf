"""A DUT program that dies during the run is reported as dead (issue 10): the scenario in
which it died fails with "DUT program NAME exited with status N" and the end of its output in
the failure message, even a scenario that would have passed because nothing answered; the
rig restarts the program for the next scenario and says so on the terminal and in the
report. The DUT is tests/programs/tiny_slave.py, a small outside slave written for this."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SLAVE = Path(__file__).resolve().parent / "programs" / "tiny_slave.py"


def rig_file(pytester: pytest.Pytester, *options: str) -> Path:
    command = [sys.executable, "-u", str(SLAVE), "{tty}", "--address", "5", *options]
    return pytester.makefile(".toml", rig=f"""
        name = "tiny"
        [master]
        port = "mbussim://tiny"
        baud = 2400
        [bus]
        kind = "sim"
        [[dut]]
        name = "tiny"
        kind = "program"
        command = {json.dumps(command)}
        address = 5
        features = ["primary"]
    """)


def results(alluredir: Path) -> dict[str, dict]:
    out = {}
    for path in alluredir.glob("*-result.json"):
        result = json.loads(path.read_text())
        out[result["name"]] = result
    return out


SCENARIOS = """
from tests_hil import _wire as w

def test_a_crashes_it(master, dut):
    w.ask(master, w.snd_ud(dut.address, 0x5F, b"\\x00"))
    w.expect_answer(master, w.req_ud2(dut.address), "REQ_UD2 after the unknown CI")

def test_b_after_the_restart(master, dut):
    w.expect_ack(master, w.snd_nke(dut.address), "SND_NKE after the restart")

def test_c_passes_by_silence_alone(master, dut):
    w.ask(master, w.snd_ud(dut.address, 0x5F, b"\\x00"))
    w.expect_silence(master, w.req_ud2(255), "REQ_UD2 at 255")

def test_d_after_the_second_restart(master, dut):
    w.expect_answer(master, w.req_ud2(dut.address), "REQ_UD2 after the restart")
"""


def test_a_dut_crashed_by_a_frame_fails_that_scenario_and_is_restarted(pytester):
    rig = rig_file(pytester, "--die-on-ci", "5F")
    pytester.makepyfile(SCENARIOS)
    alluredir = pytester.path / "allure"
    result = pytester.runpytest("--rig", str(rig), f"--alluredir={alluredir}", "-p",
                                "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2)
    out = result.stdout.str()
    found = results(alluredir)
    for name in ("test_a_crashes_it", "test_c_passes_by_silence_alone"):
        message = found[name]["statusDetails"]["message"].removeprefix("Failed: ")
        assert message.startswith("DUT program tiny exited with status 1; the end of its "
                                  "output:"), message
        assert "ValueError: no handler for CI 5F" in message  # its traceback's last line
        assert re.search(r"The rig restarted it \(pid \d+\) for the next scenario\.", message)
        assert re.search(rf"\[mbus-rig\] DUT program tiny exited with status 1 during "
                         rf"\S*::{name}; the rig restarted it \(pid \d+\)", out)
    own = found["test_a_crashes_it"]["statusDetails"]["message"]
    assert ("The scenario's own failure, with the DUT dead: REQ_UD2 after the unknown CI: "
            "expected an RSP_UD, but sent 10 5B 05 60 16, got (nothing): none") in own
    assert "own failure" not in found["test_c_passes_by_silence_alone"]["statusDetails"][
        "message"]  # it would have passed: silence at 255 is right, but the DUT was dead
    assert found["test_b_after_the_restart"]["status"] == "passed"
    assert found["test_d_after_the_second_restart"]["status"] == "passed"


def test_a_firmware_that_exits_is_named_with_its_status(pytester):
    rig = rig_file(pytester, "--exit-after", "2")
    pytester.makepyfile("""
        from tests_hil import _wire as w

        def test_three_requests(master, dut):
            for n in range(3):
                w.expect_ack(master, w.snd_nke(dut.address), f"SND_NKE #{n + 1}")

        def test_again(master, dut):
            w.expect_ack(master, w.snd_nke(dut.address), "SND_NKE after the restart")
    """)
    result = pytester.runpytest("--rig", str(rig), "-p", "no:cacheprovider", "-rf")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*DUT program tiny exited with status 3; the end of its output:*",
        "*exiting after 2 frames*",
    ])


def test_a_death_after_a_scenario_is_said_before_the_next(pytester):
    """The program is killed between two scenarios (after the first one's verdict): the
    second starts with it restarted, said on the terminal and as a report step."""
    rig = rig_file(pytester)
    pytester.makeconftest("""
        import os, signal
        import pytest
        from fixtures.plugin import STATE

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_teardown(item):
            result = yield
            if item.name == "test_first":
                program = item.config.stash[STATE].rig.dut.program
                os.killpg(program.pid, signal.SIGKILL)
                program.process.wait(timeout=10)
            return result
    """)
    pytester.makepyfile("""
        from tests_hil import _wire as w

        def test_first(master, dut):
            w.expect_ack(master, w.snd_nke(dut.address), "SND_NKE")

        def test_second(master, dut):
            w.expect_ack(master, w.snd_nke(dut.address), "SND_NKE after the restart")
    """)
    alluredir = pytester.path / "allure"
    result = pytester.runpytest("--rig", str(rig), f"--alluredir={alluredir}", "-p",
                                "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.re_match_lines([
        r".*\[mbus-rig\] DUT program tiny exited with status -9 \(killed by SIGKILL\) after "
        r"the previous scenario had ended; the rig restarted it \(pid \d+\) \(before "
        r"\S*::test_second\)"])
    steps = [s["name"] for s in results(alluredir)["test_second"]["steps"]]
    assert steps[0].startswith("DUT program tiny exited with status -9 (killed by SIGKILL) "
                               "after the previous scenario had ended; the rig restarted it")
    assert steps[1].startswith("SND_NKE A=5 @ 2400 Bd -> E5")


def test_the_unknown_ci_scenario_names_the_crash_in_its_verdict(pytester):
    """The suite's own scenario that sends SND_UD CI 5F, on a Python slave that raises on
    it: its verdict is the DUT's crash, not "no answer"."""
    rig = rig_file(pytester, "--die-on-ci", "5F")
    result = pytester.runpytest("--rig", str(rig), "--pyargs", "tests_hil.test_application",
                                "-k", "unknown_ci", "-p", "no:cacheprovider", "-rf")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "FAILED *test_unknown_ci_is_handled - Failed: DUT program tiny exited with st*"])
    result.stdout.fnmatch_lines(["*ValueError: no handler for CI 5F*"])
