"""Each named defect of the test master (rig/defective_master.py) is caught: with
``--defect NAME`` on the master rig exactly the scenarios of the master expected-failures
table (tests_hil/_defects.py) fail and exactly its recommended ones are not met, and every
other scenario passes."""

from __future__ import annotations

import pytest

from tests_hil._defects import MASTER_DESELECT_IN_DEFECT_RUNS, MASTER_EXPECTED_FAILURES, Expected
from tests_hil._run import PACKAGE, run_suite


@pytest.mark.slow
@pytest.mark.parametrize("defect", sorted(MASTER_EXPECTED_FAILURES))
def test_master_defect_is_caught_by_exactly_the_intended_scenarios(defect):
    expected = MASTER_EXPECTED_FAILURES[defect]
    deselect = [arg for node in MASTER_DESELECT_IN_DEFECT_RUNS for arg in ("--deselect", node)]
    # one process: a run at one rate is shorter than starting xdist workers
    run = run_suite("--rig", str(PACKAGE / "rigs" / expected.rig),
                    "--baud", ",".join(map(str, expected.bauds)), "--defect", defect,
                    *deselect, workers=0)
    not_met = Expected(expected.recommended)
    unexpected = [t for t in run.failed if not expected.matches(t)]
    unexpected += [t for t in run.having("recommended") if not not_met.matches(t)]
    missed = expected.unmatched(run.failed) + not_met.unmatched(run.having("recommended"))
    assert not unexpected and not missed, (
        f"{defect}: {run.summary()}\n"
        + "".join(f"failed (or recommendation not met) but not expected: {t}: "
                  f"{run.messages.get(t, '')[:300]}\n" for t in unexpected)
        + "".join(f"expected to fail (or to miss a recommendation), nothing matched: {p}\n"
                  for p in missed))
    assert run.having("passed"), run.summary()
