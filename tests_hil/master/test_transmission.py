"""Transmission procedure: repeats with the same FCB after a missing or spoilt answer, the
configured number of times; the FCB toggled for each next telegram; SND_NKE first."""

from __future__ import annotations

import pytest

from protocol.fields import Function
from tests_hil._scenario import scenario
from tests_hil.master import _drive, _judge, _meters

AREA = "transmission procedure"

SPOILT = ["silent", "corrupt_checksum", "truncated"]


def _meter_spoiling_its_first_answer(meters, spoilt: str):
    """A meter whose first answer to REQ_UD2 is missing (``silent``: a scripted meter that
    still acknowledges SND_NKE) or spoilt by an armed fault (checksum, truncation)."""
    profile = _meters.single_meter()
    if spoilt == "silent":
        telegram = _meters.telegram_of(profile)
        answer = _meters.answering(profile.address, lambda n: None if n == 0 else telegram)
        return meters.scripted(answer, delay=profile.response_delay, address=profile.address)
    meter = meters.add(profile)
    meter.control.arm(spoilt, 1)
    return meter


@pytest.mark.parametrize("spoilt", SPOILT)
@scenario(AREA, "master.retry", needs=("op_read",), severity="critical",
          fails_when="after a missing, corrupted or truncated answer the master does not "
                     "repeat the request, or repeats it changed (another FCB)")
def test_retry_repeats_the_request_unchanged(mut, meters, bus_trace, spoilt):
    """The meter's first answer to REQ_UD2 is missing, has a wrong checksum or is cut
    short: the master's next frame to it is the very same request (same C field, so the
    same FCB), and the read then succeeds."""
    meter = _meter_spoiling_its_first_answer(meters, spoilt)
    result = _drive.run(mut, "read", meter)
    exchanges = [x for x in _judge.exchanges(_judge.window(bus_trace, result))
                 if x.request.address == meter.address]
    first = next((i for i, x in enumerate(exchanges)
                  if _judge.is_function(x.request, Function.REQ_UD2) and x.spoilt), None)
    assert first is not None, (f"no REQ_UD2 to address {meter.address} got the spoilt "
                               f"answer: {result.describe()}")
    spoilt_request = exchanges[first].request
    assert first + 1 < len(exchanges), (
        f"the master did not repeat {spoilt_request.describe()} after its {spoilt} answer: "
        f"{result.describe()}")
    again = exchanges[first + 1].request
    assert again.raw == spoilt_request.raw, (
        f"after the {spoilt} answer the master sent {again.describe()}, not the same "
        f"request {spoilt_request.hex()} (a changed FCB asks for the next telegram)")
    assert result.ok, f"the read failed after the repeat: {result.describe()}"


@scenario(AREA, "master.retry", needs=("op_read",), severity="critical",
          fails_when="a request nobody answers is sent other than 1 + the configured "
                     "retries times, or the master reports success")
def test_retries_the_configured_number_of_times(mut, meters, bus_trace):
    """A meter that never answers: each request the master gives up on was sent exactly
    1 + the retries its rig file declares (``retries``) times, and the master reports the
    failure (a non-zero exit status)."""
    meter = meters.add(_meters.single_meter())
    meter.control.arm("silence", 100)
    result = _drive.run(mut, "read", meter)
    sent = _judge.to(_judge.requests(_judge.window(bus_trace, result)), meter.address)
    assert sent, f"the master sent nothing to address {meter.address}: {result.describe()}"
    runs: list[list[_judge.WireFrame]] = []
    for request in sent:
        if runs and runs[-1][0].raw == request.raw:
            runs[-1].append(request)
        else:
            runs.append([request])
    expected = 1 + mut.settings.retries
    wrong = [run for run in runs if len(run) != expected]
    assert not wrong, (f"{wrong[0][0].hex()} was sent {len(wrong[0])} times, expected "
                       f"{expected} (1 + retries = {mut.settings.retries})")
    assert not result.ok and not result.hung, (
        f"nothing answered, yet the master reported success: {result.describe()}")


@scenario(AREA, "master.fcb", needs=("op_read",), severity="critical",
          fails_when="two answered REQ_UD2 in a row to the slave carry the same FCB")
def test_fcb_toggles_for_each_next_telegram(mut, meters, bus_trace):
    """A three-telegram readout: each REQ_UD2 (with FCV) after an answered one carries the
    other FCB, so the meter moves on to its next telegram."""
    meter = meters.add(_meters.shipped("multi-telegram"))
    result = _drive.run(mut, "read", meter)
    answered = [x.request for x in _judge.exchanges(_judge.window(bus_trace, result))
                if x.request.address == meter.address and x.answered
                and _judge.is_function(x.request, Function.REQ_UD2)
                and _judge.fcb(x.request) is not None]
    same = [(a, b) for a, b in zip(answered, answered[1:], strict=False)
            if _judge.fcb(a) == _judge.fcb(b)]
    assert not same, (f"{same[0][1].describe()} carries the FCB of the answered "
                      f"{same[0][0].hex()} before it: the meter repeats instead of moving on")


@scenario(AREA, "master.snd_nke", needs=("op_read",), severity="recommended",
          fails_when="(recommended) a readout does not start with SND_NKE to the slave")
def test_readout_starts_with_snd_nke(mut, meters, bus_trace):
    """Before its first REQ_UD2 to a slave the master resets the slave's link with SND_NKE,
    so the FCB sequence and the readout start at the beginning (docs/mbus-facts.md "What
    peers get wrong": partial readouts without it)."""
    meter = meters.add(_meters.single_meter())
    result = _drive.run(mut, "read", meter)
    sent = _judge.to(_judge.requests(_judge.window(bus_trace, result)), meter.address)
    assert sent, f"the master sent nothing to address {meter.address}: {result.describe()}"
    assert _judge.is_function(sent[0], Function.SND_NKE), (
        f"the readout starts with {sent[0].describe()}, not SND_NKE")
