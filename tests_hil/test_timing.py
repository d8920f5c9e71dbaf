"""Timing: the slave's answer delay and the master's idle time between frames."""

from __future__ import annotations

from protocol.timing import char_time, inter_frame_idle, response_window
from tests_hil import _wire as w
from tests_hil._scenario import scenario

AREA = "timing"

SAMPLES = 4
"""Requests of each kind timed per rate."""


@scenario(AREA, "link.timing", needs=("primary",), severity="critical",
          fails_when="measurement response_delay_min or response_delay_max outside "
                     "[11 bit times, 330 bit times + 50 ms]")
def test_answer_delay_within_window(master, dut, baud, measure):
    """The delay from the end of the request to the start of the answer lies in the
    response window, 11 bit times .. 330 bit times + 50 ms (timing.response_window), for
    E5 answers to SND_NKE and RSP_UD answers to REQ_UD2. The shortest and longest delays
    are recorded as measurements with those limits, a late or garbled answer's delay too."""
    low, high = response_window(baud)
    delays: list[float] = []
    problems: list[str] = []
    for i in range(SAMPLES):
        for request, what in ((w.snd_nke(dut.address), "SND_NKE"),
                              (w.req_ud2(dut.address, fcb=bool(i % 2)), "REQ_UD2")):
            ex = w.ask(master, request)
            late = master.late_answer(ex) if w.outcome(ex) == "none" else None
            delay = late.delay if late is not None else ex.response_delay
            if delay is not None:
                delays.append(delay)
            if w.outcome(ex) not in ("ack", "frame"):
                problems.append(f"{what} #{i + 1}: no clean answer inside the response window "
                                f"[{low * 1000:.2f}, {high * 1000:.1f}] ms: "
                                f"{w.describe(ex, late)}")
    if delays:
        measure("response_delay_min", min(delays), "s", low=low, high=high)
        measure("response_delay_max", max(delays), "s", low=low, high=high)
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    assert not problems, problems[0] + more if problems else ""
    assert delays, "no answer could be timed"


@scenario(AREA, "link.idle", needs=("primary",), severity="normal",
          fails_when="measurement inter_frame_idle_min below 33 bit times")
def test_master_keeps_inter_frame_idle(master, dut, baud, bus_trace, rig, measure):
    """Between the end of one frame on the bus and the start of the master's next frame
    there are at least 33 bit times of idle line (timing.inter_frame_idle), through a
    readout of SND_NKE and REQ_UD2s with and without answers."""
    start = rig.clock.now()
    master.snd_nke(dut.address)
    master.req_ud2(dut.address)
    master.req_ud2(dut.address)
    w.ask(master, w.req_ud2(255))
    w.ask(master, w.snd_nke(dut.address))
    frames = list(bus_trace.since(start).frames())
    gaps = [nxt.start - char_time(baud) - prev.end
            for prev, nxt in zip(frames, frames[1:], strict=False) if nxt.direction == "M>S"]
    assert gaps, "the trace shows no master frame following another frame"
    measure("inter_frame_idle_min", min(gaps), "s", low=inter_frame_idle(baud))
