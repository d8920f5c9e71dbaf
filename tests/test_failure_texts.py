"""Failure texts speak M-Bus, not Python (issue 10): a failed scenario's message, and the
failed step of the exchange that failed, show bytes as hex and frames in M-Bus words, never a
Python repr (``b'...'``, ``RxChar(...)``, ``<... at 0x...>``, ``['...']``). The suite is run
with defects that make many scenarios fail, and every failure text is scanned; the
JUnit messages of every defect run are scanned too (tests/test_suite_defects.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests_hil._run import PACKAGE, WORKERS, python_reprs, run_suite


@pytest.mark.parametrize("text", [
    "expected E5, got <function outcome at 0x7f0ad6227740>(...)",
    "got <rig.master.Exchange object at 0x7f00aa>",
    "assert b'h##h(\\x05rx' == b'h00h'",
    "first char RxChar(value=229, time=0.1, parity_error=False, framing_error=False)",
    "the search missed ['1234567843040104']",
    "frame SingleChar(value=229)",
])
def test_the_scanner_finds_python_reprs(text: str) -> None:
    assert python_reprs(text)


@pytest.mark.parametrize("text", [
    "REQ_UD2 at the DUT's address afterwards: expected an RSP_UD, but sent 10 5B 05 60 16, got "
    "(nothing): none; then a late answer to the REQ_UD2 A=5 FCB=0, 9.2 ms after its window "
    "(196.7 ms after the request): E5",
    "SND_UD (FCV=0) A=5 CI=51 (3 data bytes) @ 2400 Bd -> NONE",
    "the search missed 1234567843040104, 1234567943040104",
    "response window [4.58, 187.5] ms",
])
def test_the_scanner_leaves_m_bus_words_alone(text: str) -> None:
    assert python_reprs(text) == []


def _step_failures(steps: list[dict[str, Any]]) -> list[str]:
    out = []
    for step in steps:
        if step.get("status") == "failed":
            out.append(step.get("statusDetails", {}).get("message", ""))
        out += _step_failures(step.get("steps", []))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("defect, exchanges_fail", [
    ("answers_too_late", True),   # requests go unanswered: failed exchange steps
    ("ignores_fcb", False),       # every exchange works, the telegrams are wrong
])
def test_failure_texts_of_a_defective_dut_have_no_python_reprs(tmp_path: Path, defect: str,
                                                               exchanges_fail: bool) -> None:
    alluredir = tmp_path / "allure"
    run = run_suite("--rig", str(PACKAGE / "rigs" / "conformant.toml"), "--baud", "2400",
                    "--defect", defect, "--alluredir", str(alluredir), workers=WORKERS)
    assert len(run.failed) >= 4, run.summary()
    assert run.python_reprs() == {}
    texts: dict[str, list[str]] = {}
    failed_steps = 0
    for path in alluredir.glob("*-result.json"):
        result = json.loads(path.read_text())
        if result["status"] not in ("failed", "broken"):
            continue
        steps = _step_failures(result.get("steps", []))
        failed_steps += len(steps)
        texts[result["name"]] = [result.get("statusDetails", {}).get("message", ""), *steps]
    assert texts, "no failed scenario"
    assert bool(failed_steps) is exchanges_fail, f"{failed_steps} failed exchange steps"
    found = {name: hits for name, messages in texts.items()
             for hits in [[h for m in messages for h in python_reprs(m)]] if hits}
    assert found == {}


pytest_plugins = ["pytester"]

STEPS = """
import pytest
from protocol.timing import response_window
from tests_hil import _wire as w

@pytest.mark.area("timing")
def test_steps(master, dut):
    w.expect_ack(master, w.snd_nke(dut.address), "SND_NKE")        # passes
    w.ask(master, w.req_ud2(255))                                  # raw, nothing expected
    dut.control.arm("late", 1, delay=response_window(2400)[1] + 0.03)
    w.expect_ack(master, w.snd_nke(dut.address), "late SND_NKE")  # fails; the late E5 heard
"""


def test_a_failing_exchange_is_a_failed_step(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(STEPS)
    alluredir = pytester.path / "allure"
    pytester.runpytest(f"--alluredir={alluredir}", "-p", "no:cacheprovider").assert_outcomes(
        failed=1)
    (path,) = alluredir.glob("*-result.json")
    result = json.loads(path.read_text())
    steps = [(s["name"], s["status"], s.get("statusDetails", {}).get("message", ""))
             for s in result["steps"]]
    assert [status for _, status, _ in steps] == ["passed", "passed", "failed", "passed"]
    assert steps[0][0].startswith("SND_NKE A=5 @ 2400 Bd -> E5")
    assert steps[1][0].startswith("REQ_UD2 A=255 FCB=0 @ 2400 Bd -> NONE")
    assert steps[2][2] == "AssertionError: SND_NKE A=5: expected ack, got NONE (1 attempt)\n"
    assert steps[3][0] == ("Late answer to the SND_NKE A=5, 30.0 ms after its window (217.5 ms "
                           "after the request): E5")
    message = result["statusDetails"]["message"]
    assert message.startswith("AssertionError: late SND_NKE: expected E5, but sent 10 40 05 "
                              "45 16, got (nothing): none; then a late answer to the SND_NKE "
                              "A=5, 30.0 ms after its window"), message
    assert "\nassert " not in message and python_reprs(message) == []


def test_probes_and_raw_any_exchanges_are_never_failed() -> None:
    """A scan or search probe nobody answers, and a raw exchange that expects nothing in
    particular, are no failures; a request whose answer did not come is."""
    from test_master import sim_master

    from protocol.link import Outcome

    master, _ = sim_master("failed-steps-1", 1)
    seen: list[Any] = []
    run = master.run

    def recording(request: Any) -> Any:
        seen.append(run(request))
        return seen[-1]

    master.run = recording  # type: ignore[method-assign]
    master.scan_primary(range(0, 3))
    assert [e.outcome for e in seen] == [Outcome.NONE, Outcome.FRAME, Outcome.NONE]
    assert all(e.probe and not e.failed for e in seen)
    assert not master.exchange(bytes.fromhex("10 40 07 47 16")).failed  # raw, expects "any"
    assert master.exchange(bytes.fromhex("10 40 07 47 16"), "ack").failed
