"""Each named defect of the emulated slave is caught: with ``--defect NAME`` exactly the
scenarios of the expected-failures table (tests_hil/_defects.py) fail, and every other
scenario still passes."""

from __future__ import annotations

import pytest

from tests_hil._defects import DESELECT_IN_DEFECT_RUNS, EXPECTED_FAILURES, Expected, known_gap
from tests_hil._run import PACKAGE, WORKERS, run_suite


@pytest.mark.slow
@pytest.mark.parametrize("defect", sorted(EXPECTED_FAILURES))
def test_defect_is_caught_by_exactly_the_intended_scenarios(defect):
    expected = EXPECTED_FAILURES[defect]
    deselect = [arg for node in DESELECT_IN_DEFECT_RUNS for arg in ("--deselect", node)]
    run = run_suite("--rig", str(PACKAGE / "rigs" / expected.rig),
                    "--baud", ",".join(map(str, expected.bauds)), "--defect", defect,
                    *deselect, workers=WORKERS)
    unexpected = [t for t in run.failed if not expected.matches(t) and known_gap(t) is None]
    not_met = Expected(expected.recommended)
    unexpected += [t for t in run.having("recommended") if not not_met.matches(t)]
    if expected.collateral:
        unexpected = []
    missed = expected.unmatched(run.failed) + not_met.unmatched(run.having("recommended"))
    not_passed = Expected(expected.must_pass).unmatched(run.having("passed"))
    assert not unexpected and not missed and not not_passed, (
        f"{defect}: {run.summary()}\n"
        + "".join(f"failed (or recommendation not met) but not expected: {t}: "
                  f"{run.messages.get(t, '')[:300]}\n" for t in unexpected)
        + "".join(f"expected to fail (or to miss a recommendation), nothing matched: {p}\n"
                  for p in missed)
        + "".join(f"expected to pass despite the defect, no pass matched: {p}\n"
                  for p in not_passed))
    assert run.having("passed"), run.summary()
    assert run.python_reprs() == {}, f"{defect}: failure texts with Python reprs"
