"""Each named defect of the test master (rig/defective_master.py) is caught: with
``--defect NAME`` on the master rig exactly the scenarios of the master expected-failures
table (tests_hil/_defects.py) fail, and every other scenario passes."""

from __future__ import annotations

import pytest

from tests_hil._defects import MASTER_EXPECTED_FAILURES
from tests_hil._run import PACKAGE, WORKERS, run_suite


@pytest.mark.slow
@pytest.mark.parametrize("defect", sorted(MASTER_EXPECTED_FAILURES))
def test_master_defect_is_caught_by_exactly_the_intended_scenarios(defect):
    expected = MASTER_EXPECTED_FAILURES[defect]
    run = run_suite("--rig", str(PACKAGE / "rigs" / expected.rig),
                    "--baud", ",".join(map(str, expected.bauds)), "--defect", defect,
                    workers=WORKERS)
    unexpected = [t for t in run.failed if not expected.matches(t)]
    missed = expected.unmatched(run.failed)
    assert not unexpected and not missed, (
        f"{defect}: {run.summary()}\n"
        + "".join(f"failed but not expected: {t}: {run.messages.get(t, '')[:300]}\n"
                  for t in unexpected)
        + "".join(f"expected to fail, no failure matched: {p}\n" for p in missed))
    assert run.having("passed"), run.summary()
