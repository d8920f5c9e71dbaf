"""Each named defect of the emulated slave is caught: with ``--defect NAME`` exactly the
scenarios of the expected-failures table (tests_hil/_defects.py) fail, and every other
scenario still passes."""

from __future__ import annotations

import pytest

from tests_hil._defects import DESELECT_IN_DEFECT_RUNS, EXPECTED_FAILURES, defect_run_problems
from tests_hil._run import PACKAGE, WORKERS, run_suite


@pytest.mark.slow
@pytest.mark.parametrize("defect", sorted(EXPECTED_FAILURES))
def test_defect_is_caught_by_exactly_the_intended_scenarios(defect):
    expected = EXPECTED_FAILURES[defect]
    deselect = [arg for node in DESELECT_IN_DEFECT_RUNS for arg in ("--deselect", node)]
    run = run_suite("--rig", str(PACKAGE / "rigs" / expected.rig),
                    "--baud", ",".join(map(str, expected.bauds)), "--defect", defect,
                    *deselect, workers=WORKERS)
    problems = defect_run_problems(expected, run)
    assert not problems, f"{defect}: {run.summary()}\n" + "\n".join(problems)
    assert run.having("passed"), run.summary()
    assert run.python_reprs() == {}, f"{defect}: failure texts with Python reprs"
