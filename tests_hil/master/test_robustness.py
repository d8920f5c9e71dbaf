"""Robustness: a slave that answers garbage, never answers, or answers twice neither hangs
nor crashes the master, and what it reports says what happened."""

from __future__ import annotations

import pytest

from tests_hil._scenario import scenario
from tests_hil.master import _drive, _judge, _meters

AREA = "robustness"

BEHAVIOURS = ["garbage", "silent", "twice"]


def _slave(meters, behaviour: str):
    profile = _meters.single_meter()
    telegram = _meters.telegram_of(profile)
    answer = {"garbage": _meters.garbage, "silent": _meters.silent,
              "twice": _meters.twice(telegram, profile.address)}[behaviour]
    return meters.scripted(answer, delay=profile.response_delay, address=profile.address)


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
@scenario(AREA, "master.robust", needs=("op_read",), severity="critical",
          fails_when="the master hangs (does not finish within its timeout), crashes (a "
                     "signal or a traceback), reports data it was not sent, or reports "
                     "success without data without saying so")
def test_misbehaving_slave(mut, meters, bus_trace, behaviour):
    """A slave that answers every request with garbage, never answers, or sends each
    telegram twice back to back: the master finishes, does not crash, and never reports
    data it was not sent; for garbage and silence it reports the failure (a non-zero exit
    status and a message)."""
    slave = _slave(meters, behaviour)
    result = _drive.run(mut, "read", slave)
    assert not result.hung, f"the master hung: {result.describe()}"
    assert not result.crashed, f"the master crashed: {result.describe()}"
    reported = mut.report(result).telegrams if "reports" in mut.capabilities else ()
    if behaviour == "twice":
        sent = [t for _, t in _judge.sent_telegrams(_judge.window(bus_trace, result))]
        for telegram in reported:
            problems = _judge.telegram_problems(telegram, sent[0])
            assert not problems, "; ".join(problems[:6])
        return
    assert not reported, (f"{len(reported)} telegram(s) reported from a slave that "
                          f"{'answers garbage' if behaviour == 'garbage' else 'never answers'}")
    assert not result.ok, f"the master reported success: {result.describe()}"
    assert (result.stderr + result.stdout).strip(), "the master failed without saying why"
