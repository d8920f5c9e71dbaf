"""Reported data: what the master reports is what the meters sent, every telegram of a
readout, and nothing of a corrupted answer."""

from __future__ import annotations

import pytest

from protocol.frames import decode
from tests_hil._scenario import scenario
from tests_hil.master import _drive, _judge, _meters

AREA = "reported data"

PROFILES = {"heat_meter": _meters.single_meter, "record_variety": _meters.record_variety}
NOISE_READS = 4
"""Readouts through the noise: enough for some answers to be hit at 1e-3 bit errors."""


def _sent(bus_trace, result, meter) -> list:
    return [t for _, t in _judge.sent_telegrams(_judge.window(bus_trace, result),
                                                source=meter.name)]


@pytest.mark.parametrize("profile", sorted(PROFILES))
@scenario(AREA, "master.data", needs=("op_read", "reports"), severity="critical",
          fails_when="a reported value, unit, storage number, tariff, subunit or function "
                     "differs from the record sent, or a record is missing or extra")
def test_reported_records_are_the_records_sent(mut, meters, bus_trace, profile):
    """The master's report of a readout has the telegrams the meter sent, record for record:
    the same values, units, storage numbers, tariffs, subunits and functions, as far as its
    output says them (the built-in heat meter; a meter using every function, storage,
    tariff, subunit and data type)."""
    meter = meters.add(PROFILES[profile]())
    result = _drive.run(mut, "read", meter)
    assert result.ok, f"the read failed: {result.describe()}"
    problems = _judge.report_problems(mut.report(result), _sent(bus_trace, result, meter))
    assert not problems, "; ".join(problems[:6])


@pytest.mark.parametrize("name", _meters.CORPUS_TELEGRAMS)
@scenario(AREA, "master.data", needs=("op_read", "reports"), severity="critical",
          fails_when="a record of a real meter's telegram is reported otherwise than sent")
def test_corpus_telegram_is_reported_faithfully(mut, meters, bus_trace, name):
    """Telegrams recorded from real meters (the libmbus corpus in tests/data/libmbus),
    answered to the master's REQ_UD2: its report has every record as sent."""
    telegram = _meters.corpus_telegram(name)
    if telegram is None:
        pytest.skip(f"the libmbus corpus ({_meters.CORPUS}) is not in this installation")
    address = _meters.METER_ADDRESS
    answer = _meters.replayed(telegram, address)
    meter = meters.scripted(_meters.answering(address, lambda _n: answer),
                            delay=_meters.DELAY_S, address=address)
    result = _drive.run(mut, "read", meter)
    assert result.ok, f"the read failed: {result.describe()}"
    sent = _judge.sent_telegram(_judge.answers(_judge.window(bus_trace, result))[-1])
    assert sent is not None, f"{name}: the replayed telegram did not decode: {answer.hex(' ')}"
    problems = _judge.report_problems(mut.report(result), [sent])
    assert not problems, f"{name}: " + "; ".join(problems[:6])


CORRUPTION = [
    pytest.param("checksum", id="checksum"),
    pytest.param("truncation", id="truncation"),
    pytest.param("noise", marks=pytest.mark.needs("noise"), id="noise_ber1e-3"),
]


@pytest.mark.parametrize("corruption", CORRUPTION)
@scenario(AREA, "master.integrity", needs=("op_read", "reports"), severity="critical",
          fails_when="data is reported from answers that all failed a check, or a reported "
                     "record differs from the clean telegram")
def test_corrupted_answer_never_appears_as_data(mut, meters, faults, corruption):
    """Every answer with a wrong checksum, or cut short: the master reports no data and a
    failure. Through noise at a bit error rate of 1e-3 (several readouts): whatever the
    master reports is the clean telegram, record for record."""
    profile = _meters.single_meter()
    meter = meters.add(profile)
    if corruption != "noise":
        meter.control.arm("corrupt_checksum" if corruption == "checksum" else "truncated", 100)
        result = _drive.run(mut, "read", meter)
        reported = mut.report(result).telegrams
        assert not reported, (f"{len(reported)} telegram(s) reported though every answer had "
                              f"a bad {corruption}: {result.describe()}")
        assert not result.ok and not result.hung, (
            f"every answer failed its {corruption} check, yet: {result.describe()}")
        return
    clean = _judge.telegram_of(decode(_meters.telegram_of(profile)))
    assert clean is not None
    faults.inject("noise", rate=1e-3)
    for attempt in range(1, NOISE_READS + 1):
        result = _drive.run(mut, "read", meter)
        for telegram in mut.report(result).telegrams:
            problems = _judge.telegram_problems(telegram, clean)
            assert not problems, f"readout {attempt} through noise: " + "; ".join(problems[:6])


@scenario(AREA, "master.multi", needs=("op_read",), severity="critical",
          fails_when="the readout stops before the telegram without 'more records follow', "
                     "or a telegram is reported twice, missing or out of order")
def test_multi_telegram_readout_is_complete(mut, meters, bus_trace):
    """A meter with three telegrams (DIF 1F on all but the last): the master fetches every
    one up to the last, and reports each once, in order."""
    profile = _meters.shipped("multi-telegram")
    meter = meters.add(profile)
    result = _drive.run(mut, "read", meter)
    sent = _sent(bus_trace, result, meter)
    pages = len(profile.pages)
    assert len(sent) >= pages, (f"the master fetched {len(sent)} of the {pages} telegrams: "
                                f"{result.describe()}")
    assert result.ok, f"the readout failed: {result.describe()}"
    if "reports" in mut.capabilities:
        problems = _judge.report_problems(mut.report(result), sent[:pages])
        assert not problems, "; ".join(problems[:6])
