"""The conformance suite against a conformant emulated slave: every scenario passes at every
baud rate, for several seeds of the simulated bus (the suite runs in a pytest subprocess)."""

from __future__ import annotations

import pytest

from tests_hil._defects import DESELECT_IN_DEFECT_RUNS, KNOWN_GAPS, _match, known_gap
from tests_hil._run import CONFORMANT_RIG, PACKAGE, WORKERS, run_suite

ALLOWED_SKIPS = {
    "test_baud_rate.py::test_unsupported_baud_is_not_acknowledged[*]":
        "supports every M-Bus rate",
}
"""Cases that may skip on the conformant rig, with the reason they must give."""


def _check_conformant(run) -> None:
    failed = [t for t in run.failed if known_gap(t) is None]
    assert not failed, (
        f"{run.summary()}\n" + "\n".join(f"FAILED {t}: {run.messages.get(t, '')[:300]}"
                                         for t in failed))
    not_met = run.having("recommended")
    assert not not_met, (
        f"{run.summary()}\nthe conformant emulated meter follows every recommendation:\n"
        + "\n".join(f"RECOMMENDED {t}: {run.messages.get(t, '')[:300]}" for t in not_met))
    fixed = [p for p in KNOWN_GAPS if not any(_match(t, p) for t in run.failed)]
    assert not fixed, f"known gaps that now pass (remove them from KNOWN_GAPS): {fixed}"
    for test in run.having("skipped"):
        allowed = [reason for pattern, reason in ALLOWED_SKIPS.items() if _match(test, pattern)]
        assert allowed and allowed[0] in run.messages.get(test, ""), (
            f"unexpected skip {test}: {run.messages.get(test, '')}")
    assert run.having("passed"), run.summary()


@pytest.mark.slow
def test_conformant_slave_passes_every_scenario_at_every_rate():
    run = run_suite("--rig", str(CONFORMANT_RIG), "--baud", "all", "--seed", "1",
                    workers=WORKERS)
    _check_conformant(run)
    assert len(run.having("passed")) >= 300, run.summary()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3])
def test_conformant_slave_passes_with_other_seeds(seed):
    deselect = [arg for node in DESELECT_IN_DEFECT_RUNS for arg in ("--deselect", node)]
    run = run_suite("--rig", str(CONFORMANT_RIG), "--baud", "300,9600", "--seed", str(seed),
                    *deselect, workers=WORKERS)
    _check_conformant(run)


@pytest.mark.slow
def test_three_rate_meter_passes_at_its_rates():
    """A meter with fewer rates and the other CI 56 reading: the unsupported-rate scenario
    runs (and passes) here instead of skipping."""
    deselect = [arg for node in DESELECT_IN_DEFECT_RUNS for arg in ("--deselect", node)]
    run = run_suite("--rig", str(PACKAGE / "rigs" / "three-rates.toml"),
                    "--baud", "300,2400,9600", *deselect, workers=WORKERS)
    assert not [t for t in run.failed if known_gap(t) is None], run.summary()
    unsupported = [t for t in run.having("passed") if "test_unsupported_baud" in t]
    assert len(unsupported) == 3, run.summary()
    assert "test_addressing.py::test_ci56_per_configured_reading" in run.having("passed")
