"""Scenario metadata: one decorator puts the plugin's markers and the catalogue entry on a test.

Every scenario in ``tests_hil`` is written as::

    @scenario(AREA, "link.broadcast", needs=("primary",), severity="critical",
              fails_when="a frame comes back to a request at address 255")
    def test_broadcast_255_is_not_answered(master, dut):
        '''What it checks, in one paragraph (becomes the catalogue's "checks" column).'''

The decorator applies ``pytest.mark.clause(ref, text)``, ``pytest.mark.area(name)``,
``pytest.mark.needs(*caps)`` and ``pytest.mark.severity(level)`` (the markers of the rig's
pytest plugin) and keeps the same facts on the function as :class:`ScenarioMeta` so that
``tests_hil._catalog`` can write docs/scenarios.md without running pytest.

Clause references live in :data:`CLAUSES`, one table, so a reference checked against the
standard is corrected in one place. They name the part of EN 13757 and the topic; section
numbers are not given because they differ between editions (2004, 2013, 2018) and the facts
here come from docs/mbus-facts.md, not from the standard's text (docs/mbus-facts.md: "Clause
references").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

F = TypeVar("F", bound=Callable[..., Any])

SEVERITIES = ("blocker", "critical", "normal", "minor", "trivial", "recommended")
"""Allure's severity levels, which the plugin passes on, and ``recommended``: what the
standard only recommends, or does not clearly demand. A failing ``recommended`` case is
reported apart from conformance failures and does not fail the run (fixtures/plugin.py)."""

RECOMMENDED = "recommended"


@dataclass(frozen=True, slots=True)
class Clause:
    """A reference into EN 13757 and what it requires, in a few words; ``basis`` says, for a
    recommended check, why it is not a conformance requirement."""

    ref: str
    text: str
    basis: str = ""


CLAUSES: dict[str, Clause] = {
    # EN 13757-2: link layer (FT1.2 frames, addressing, FCB, timing) and physical layer.
    "link.primary": Clause("EN 13757-2 link layer, A field",
                           "a slave answers requests at its primary address, and only those"),
    "link.broadcast": Clause("EN 13757-2 link layer, A field",
                             "254 is answered by every slave; 255 by none"),
    "link.address0": Clause("EN 13757-2 link layer, A field",
                            "address 0 is the unconfigured slave's primary address"),
    "link.snd_nke": Clause("EN 13757-2 link layer, SND_NKE",
                           "SND_NKE is acknowledged, resets the link layer and deselects"),
    "link.frames": Clause("EN 13757-2 / IEC 60870-5-1 FT1.2, frame checks",
                          "a frame failing any receiver check (parity, start, L, CS, stop, "
                          "length) is discarded and never answered"),
    "link.answers": Clause("EN 13757-2 link layer, transmission procedure",
                           "a missing or garbled answer is detected; the master repeats the "
                           "request with the same FCB and the slave repeats its answer"),
    "link.fcb": Clause("EN 13757-2 link layer, FCB/FCV",
                       "a toggled FCB fetches the next telegram, a repeated FCB repeats the last"),
    "link.collision": Clause("EN 13757-2 physical layer, collisions",
                             "simultaneous answers are detected as collisions, never read as data"),
    "link.timing": Clause("EN 13757-2 link layer, timing",
                          "a slave answers 11 bit times .. 330 bit times + 50 ms after the request"),
    "link.idle": Clause("IEC 60870-5-1 FT1.2 transmission rules",
                        "at least 33 bit times of idle line between frames"),
    # What EN 13757-2 does not clearly demand of a slave: checked as `recommended`.
    "link.idle_after_error": Clause(
        "IEC 60870-5-1 FT1.2 transmission rule R4",
        "after a detected error a frame counts only after 33 bit times of idle line, so a "
        "frame straight behind garbage is discarded",
        basis="EN 13757-2 takes the FT1.2 frame format and its receiver checks (start, L, "
              "CS, stop, parity); the idle line after an error is an FT1.2 transmission rule "
              "it does not clearly demand of a slave (docs/mbus-facts.md \"Timing\", gaps)"),
    "link.no_pause_in_frame": Clause(
        "IEC 60870-5-1 FT1.2 transmission rule R3",
        "no idle line between the characters of a frame, so a frame with a pause inside "
        "is discarded",
        basis="R3 binds the sender; EN 13757-2 does not clearly demand that a receiving "
              "slave drop a frame with a pause inside (docs/mbus-facts.md \"Timing\", gaps: real "
              "masters tolerate gaps from slow slaves)"),
    "net.snd_nke_primary": Clause(
        "EN 13757-3 secondary addressing, end of selection",
        "a selected slave is deselected by a non-matching selection or SND_NKE to 253",
        basis="SND_NKE resets the link layer; that SND_NKE at the slave's primary address "
              "also ends its selection is not demanded (vendor manuals quoting the standard "
              "name the non-matching selection, CI 56 and SND_NKE to 253)"),
    "phys.power": Clause("EN 13757-2 physical layer, slave power supply",
                         "a slave survives bus power loss and is back after its power-up time"),
    "phys.wiring": Clause("EN 13757-2 physical layer, bus",
                          "disconnection, shorts and noise lose telegrams, never corrupt them"),
    # EN 13757-3: application layer, and its network-layer parts (secondary addressing).
    "net.secondary": Clause("EN 13757-3 secondary addressing (CI 52)",
                            "selection by ID, manufacturer, version and medium; deselection "
                            "by a non-matching selection"),
    "net.wildcards": Clause("EN 13757-3 secondary addressing, wildcards",
                            "F in an ID nibble, FFFF manufacturer, FF version or medium match "
                            "anything"),
    "net.enhanced": Clause("EN 13757-3 enhanced selection",
                           "selection extended by the fabrication number (VIF 78)"),
    "net.ci56": Clause("EN 13757-3 CI 56",
                       "CI 56 is select with an MSB-first mask or deselect: a setting"),
    "net.search": Clause("EN 13757-3 secondary search",
                         "a wildcard search finds every slave on the bus"),
    "app.set_address": Clause("EN 13757-3 SND_UD CI 51, VIF 7A",
                              "set primary address: acknowledged at the old address, then "
                              "answered only at the new one"),
    "app.baud": Clause("EN 13757-2 baud rate switch (CI B8..BF)",
                       "acknowledged at the old rate, then answered only at the new rate; an "
                       "unsupported rate is not acknowledged"),
    "app.reset": Clause("EN 13757-3 application reset (CI 50)",
                        "acknowledged; the slave keeps its address and rate"),
    "app.rsp_ud": Clause("EN 13757-3 variable data structure (CI 72)",
                         "header and records as the meter's profile describes"),
    "app.alarm": Clause("EN 13757-3 REQ_UD1, alarm (CI 71)",
                        "REQ_UD1 is answered E5 or with one alarm byte"),
    "app.status": Clause("EN 13757-3 status byte",
                         "status bits describe the meter's state; reserved codes unused"),
    "app.errors": Clause("EN 13757-3 application errors (CI 70)",
                         "an application error is reported as CI 70 with a defined code"),
    # The master suite (tests_hil/master/): what EN 13757-2/-3 ask of the master.
    "master.frames": Clause("EN 13757-2 / IEC 60870-5-2 FT1.2, frames of the master",
                            "every request is a valid frame (start, L, checksum, stop) with "
                            "PRM 1 and its function's FCV/FCB: SND_NKE 40, SND_UD 53/73, "
                            "REQ_UD2 5B/7B, REQ_UD1 5A/7A; short frames for SND_NKE and "
                            "REQ_UD, control or long frames for SND_UD"),
    "master.parity": Clause("EN 13757-2 link layer, character format",
                            "8E1: every character with even parity"),
    "master.idle": Clause("EN 13757-2 link layer, timing",
                          "at least 11 bit times of idle line before the master's next frame "
                          "(at a rate change, the slower rate's bit times)"),
    "master.idle_ft12": Clause(
        "IEC 60870-5-1 FT1.2 transmission rules",
        "at least 33 bit times of idle line between frames",
        basis="the FT1.2 rule; EN 13757-2 takes the FT1.2 frames but does not clearly demand "
              "33 bit times of the master (docs/mbus-facts.md \"Timing\"; real masters wait "
              "50-100 ms)"),
    "master.window": Clause("EN 13757-2 link layer, timing",
                            "the master waits the whole response window (330 bit times + "
                            "50 ms) before it repeats or moves on, takes an answer that starts "
                            "inside it, and never talks over a slave"),
    "master.retry": Clause("EN 13757-2 link layer, transmission procedure",
                           "after a missing or garbled answer the master repeats the request "
                           "unchanged (same FCB), the configured number of times"),
    "master.fcb": Clause("EN 13757-2 link layer, FCB/FCV",
                         "the master toggles the FCB for each next telegram"),
    "master.snd_nke": Clause(
        "EN 13757-2 link layer, SND_NKE",
        "a readout starts with SND_NKE (link reset), so the slave's first telegram comes "
        "first",
        basis="SND_NKE initialises the link; sending it before every readout is good practice "
              "(docs/mbus-facts.md \"What peers get wrong\": partial readouts without it), "
              "not a demand on each read"),
    "master.data": Clause("EN 13757-3 variable data structure (CI 72)",
                          "what the master reports is what the slave sent: values, units, "
                          "storage, tariff, subunit, function"),
    "master.integrity": Clause("EN 13757-2 / IEC 60870-5-1 FT1.2 data integrity",
                               "an answer failing a check (parity, checksum, length) is never "
                               "taken as data"),
    "master.multi": Clause("EN 13757-3 multi-telegram readout (DIF 1F)",
                           "the master asks again until a telegram without 'more records "
                           "follow'"),
    "master.scan": Clause("EN 13757-2 link layer, A field; collisions",
                          "a primary scan finds every slave and reports several slaves at "
                          "one address as a collision"),
    "master.set_address": Clause("EN 13757-3 SND_UD CI 51, VIF 7A",
                                 "set primary address: SND_UD CI 51 01 7A <new> to the old "
                                 "address, acknowledged"),
    "master.set_address_check": Clause(
        "EN 13757-3 SND_UD CI 51, VIF 7A",
        "after the change the master checks that the slave answers at the new address",
        basis="the acknowledgement comes at the old address; checking the new one is good "
              "practice, not demanded"),
    "master.baud": Clause("EN 13757-2 baud rate switch (CI B8..BF)",
                          "after the slave's E5 at the old rate the master talks to it at the "
                          "new rate"),
    "master.baud_check": Clause(
        "EN 13757-2 baud rate switch (CI B8..BF)",
        "after the switch the master checks that the slave answers at the new rate",
        basis="the E5 comes at the old rate; checking the new one is good practice (a slave "
              "may fall back after a vendor-specific time, docs/mbus-facts.md \"Baud "
              "switch\"), not demanded"),
    "master.reset": Clause("EN 13757-3 application reset (CI 50)",
                           "SND_UD CI 50 to the slave, acknowledged with E5"),
    "master.broadcast": Clause("EN 13757-2 link layer, A field 254",
                               "a lone slave's answer at 254 is its data; several slaves' "
                               "answers collide and are not"),
    "master.robust": Clause("EN 13757-2 link layer, transmission procedure",
                            "a slave that answers garbage, twice or never: the master ends "
                            "the exchange after its retries, neither hangs nor takes it for "
                            "data, and says what happened"),
}


@dataclass(frozen=True, slots=True)
class ScenarioMeta:
    """What the catalogue says about one scenario."""

    area: str
    clause: Clause
    needs: tuple[str, ...]
    severity: str
    fails_when: str


def recommended(value: Any, *, id: str, clause: str) -> Any:
    """One parametrised case that checks what the standard only recommends (or does not
    clearly demand): severity ``recommended`` and its own clause (``CLAUSES[clause]``), both
    taking precedence over the scenario's for this case."""
    if clause not in CLAUSES:
        raise KeyError(f"unknown clause key {clause!r} (add it to CLAUSES)")
    ref = CLAUSES[clause]
    return pytest.param(value, id=id, marks=[pytest.mark.severity(RECOMMENDED),
                                             pytest.mark.clause(ref.ref, ref.text)])


def scenario(area: str, clause: str, *, needs: tuple[str, ...] = (), severity: str = "normal",
             fails_when: str) -> Callable[[F], F]:
    """Mark a test function as a conformance scenario (see the module docstring)."""
    if clause not in CLAUSES:
        raise KeyError(f"unknown clause key {clause!r} (add it to CLAUSES)")
    if severity not in SEVERITIES:
        raise ValueError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    ref = CLAUSES[clause]
    meta = ScenarioMeta(area, ref, tuple(needs), severity, fails_when)

    def apply(fn: F) -> F:
        if not (fn.__doc__ or "").strip():
            raise ValueError(f"scenario {fn.__name__} needs a docstring (what it checks)")
        marked = pytest.mark.clause(ref.ref, ref.text)(fn)
        marked = pytest.mark.area(area)(marked)
        if needs:
            marked = pytest.mark.needs(*needs)(marked)
        marked = pytest.mark.severity(severity)(marked)
        marked.__scenario__ = meta  # type: ignore[attr-defined]
        return marked

    return apply
