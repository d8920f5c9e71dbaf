"""The master suite against the project's own master (the emulated master: the mbus-rig
tools in process, on virtual time): every scenario passes at every rate, and every
recommendation is met (the suite runs in a pytest subprocess)."""

from __future__ import annotations

import pytest

from tests_hil._defects import MASTER_RIG
from tests_hil._run import PACKAGE, WORKERS, run_suite

RIG = PACKAGE / "rigs" / MASTER_RIG


@pytest.mark.slow
def test_the_project_master_passes_every_master_scenario_at_every_rate():
    run = run_suite("--rig", str(RIG), "--baud", "all", "--seed", "1", workers=WORKERS)
    assert not run.failed, run.summary() + "".join(
        f"\nFAILED {t}: {run.messages.get(t, '')[:300]}" for t in run.failed)
    assert not run.having("skipped"), (
        f"the emulated master has every capability, yet: {run.having('skipped')[:5]}")
    assert not run.having("recommended"), (
        f"the project's master misses recommendations: {run.having('recommended')}")
    assert len(run.having("passed")) >= 150, run.summary()
    assert run.returncode == 0, run.summary()


@pytest.mark.slow
def test_the_project_master_passes_with_another_seed():
    run = run_suite("--rig", str(RIG), "--baud", "300,9600", "--seed", "2", workers=WORKERS)
    assert not run.failed, run.summary() + "".join(
        f"\nFAILED {t}: {run.messages.get(t, '')[:300]}" for t in run.failed)
    assert run.having("passed"), run.summary()
