"""Which scenarios each named defect of the emulated slave must make fail: the one table.

tests/test_suite_defects.py runs the suite with ``--defect NAME`` at the rates given here and
asserts that the failing test cases are exactly those matching the patterns (every pattern
matching at least one failure, no failure outside them); docs/scenarios.md prints the table.

A pattern is ``file::function[params]`` with shell wildcards (fnmatch), matched against the
test id without its directory, e.g. ``test_timing.py::test_answer_delay_within_window[*]``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Expected:
    """The failures one defect must cause, and the rates to run it at."""

    patterns: tuple[str, ...]
    bauds: tuple[int, ...] = (2400,)
    rig: str = "conformant.toml"  # in tests_hil/rigs/
    collateral: str = ""
    """Why other scenarios may fail too (a slave whose every answer is broken), else ""."""
    must_pass: tuple[str, ...] = ()
    """With collateral failures: cases that must still pass (each pattern matching at least
    one passed case), so the suite is shown to fail selectively even then."""
    recommended: tuple[str, ...] = ()
    """Recommended cases the defect must trip: reported as "recommended, not met" (apart from
    the failures, not failing the run); no other recommended case may trip."""

    def matches(self, test_id: str) -> bool:
        return any(_match(test_id, p) for p in self.patterns)

    def unmatched(self, failed: Iterable[str]) -> list[str]:
        """Patterns no failure matched (a defect the suite did not catch where intended)."""
        failed = list(failed)
        return [p for p in self.patterns if not any(_match(f, p) for f in failed)]


def _match(test_id: str, pattern: str) -> bool:
    """fnmatch with ``*`` and ``?`` only: the brackets of test ids are literal."""
    escaped = pattern.replace("[", "\0").replace("]", "[]]").replace("\0", "[[]")
    return fnmatch.fnmatchcase(test_id, escaped)


EXPECTED_FAILURES: dict[str, Expected] = {
    "ignores_fcb": Expected((
        "test_fcb.py::test_repeated_fcb_repeats_the_telegram",
        "test_answer_errors.py::test_retry_with_same_fcb_gets_the_same_telegram[corrupt_checksum]",
        "test_answer_errors.py::test_retry_with_same_fcb_gets_the_same_telegram[truncated]",
        "test_collisions.py::test_injected_collision_is_detected_and_retried",
        "test_power_and_wiring.py::test_noise_never_yields_false_data[ber0.0001]",
        "test_power_and_wiring.py::test_noise_never_yields_false_data[ber0.001]",
    )),
    "answers_bad_checksum": Expected((
        "test_frame_errors.py::test_faulty_short_frame_is_ignored[*-bad_checksum]",
        "test_frame_errors.py::test_faulty_long_frame_is_ignored[*-bad_checksum]",
    ), bauds=(300, 9600)),
    "acks_unsupported_baud": Expected((
        "test_baud_rate.py::test_unsupported_baud_is_not_acknowledged[*]",
    ), rig="three-rates.toml"),
    "acks_at_new_rate": Expected((
        "test_baud_rate.py::test_baud_switch[*]",
    ), bauds=(300, 2400)),
    "answers_too_early": Expected((
        "test_timing.py::test_answer_delay_within_window[*]",
    ), bauds=(2400, 9600)),
    "answers_too_late": Expected((
        "test_timing.py::test_answer_delay_within_window[*]",
        "test_addressing.py::test_snd_nke_at_primary_address_is_acknowledged[*]",
        "test_addressing.py::test_req_ud2_at_primary_address_is_answered[*]",
    ), bauds=(2400, 9600),
        collateral="every answer starts after the response window: the master takes it for "
                   "no answer and hears it during its next request, so every scenario that "
                   "expects an answer fails",
        must_pass=("test_addressing.py::test_wildcard_selection_table[wrong_*]",)),
    "answers_broadcast_255": Expected((
        "test_addressing.py::test_broadcast_255_is_not_answered[*]",
    )),
    "keeps_selection_after_nke": Expected((
        "test_addressing.py::test_snd_nke_deselects[253]",
    ), recommended=("test_addressing.py::test_snd_nke_deselects[primary]",)),
    "wildcard_mismatch_manufacturer": Expected((
        "test_addressing.py::test_wildcard_selection_table[manufacturer]",
        "test_addressing.py::test_wildcard_selection_table[all]",
        "test_addressing.py::test_wildcard_selection_table[id_prefix]",
        "test_addressing.py::test_secondary_search_finds_every_slave",
        "test_collisions.py::test_wildcard_selecting_two_slaves",
        "test_collisions.py::test_search_adversarial_population[*]",
    )),
    "wrong_checksum_in_answers": Expected((
        "test_addressing.py::test_req_ud2_at_primary_address_is_answered[*]",
        "test_application.py::test_telegram_decodes_to_profile_records[*]",
        "test_fcb.py::test_repeated_fcb_repeats_the_telegram",
    ), collateral="every RSP_UD arrives garbled, so every scenario that reads one fails",
        must_pass=("test_addressing.py::test_snd_nke_at_primary_address_is_acknowledged[*]",
                   "test_addressing.py::test_snd_nke_deselects[*]",
                   "test_frame_errors.py::test_faulty_long_frame_is_ignored[*-bad_checksum]",
                   "test_addressing.py::test_wildcard_selection_table[wrong_*]")),
    "ignores_set_address": Expected((
        "test_addressing.py::test_set_primary_address[*]",
        "test_addressing.py::test_address_0_is_a_primary_address",
    )),
}


MASTER_RIG = "master.toml"
"""The master suite's rig (tests_hil/rigs/): the project's own master, emulated, as the DUT."""

MASTER_EXPECTED_FAILURES: dict[str, Expected] = {
    "never_toggles_fcb": Expected((
        "test_transmission.py::test_fcb_toggles_for_each_next_telegram",
        "test_reported_data.py::test_multi_telegram_readout_is_complete",
        # the search's access-number check needs new telegrams: a repeated FCB gets the
        # cached one, so no slave is confirmed
        "test_scanning.py::test_secondary_search_finds_every_slave[*]",
    ), rig=MASTER_RIG),
    "toggles_fcb_on_retry": Expected((
        "test_transmission.py::test_retry_repeats_the_request_unchanged[*]",
        # two slaves in step AND their answers the same way on every attempt only while the
        # request is repeated unchanged
        "test_scanning.py::test_primary_scan_reports_a_collision[aligned]",
    ), rig=MASTER_RIG),
    "retries_too_few": Expected((
        "test_transmission.py::test_retries_the_configured_number_of_times",
    ), rig=MASTER_RIG),
    "retries_too_many": Expected((
        "test_transmission.py::test_retries_the_configured_number_of_times",
    ), rig=MASTER_RIG),
    "gives_up_early": Expected((
        "test_request_timing.py::test_waits_the_whole_response_window_before_a_retry[*]",
        "test_request_timing.py::test_late_answer_is_taken[*]",
        "test_scanning.py::test_secondary_search_finds_every_slave[*-late]",
        # answers in the second half of the window are missed in the other populations too
        "test_scanning.py::test_secondary_search_finds_every_slave[*-hex_fields]",
        # at 9600 Bd the meters' 45 ms answers fall in the second half of the 84 ms window:
        # the readout after the switch fails
        "test_control.py::test_baud_switch[*-9600]",
    ), rig=MASTER_RIG,
        # the check at 9600 Bd after a switch: its answers come in the second half
        recommended=("test_control.py::test_baud_switch_is_verified[*-9600]",)),
    "no_inter_frame_idle": Expected((
        "test_request_timing.py::test_inter_frame_idle_at_least_11_bit_times[*]",
        # ending at the first answer's last character, it talks over a second answer
        "test_scanning.py::test_primary_scan_reports_a_collision[offset]",
    ), rig=MASTER_RIG,
        # right after the E5 the slave is still switching: the check at the new rate is lost
        recommended=("test_request_timing.py::test_inter_frame_idle_33_bit_times[*]",
                     "test_control.py::test_baud_switch_is_verified[*]")),
    "accepts_bad_checksum": Expected((
        "test_transmission.py::test_retry_repeats_the_request_unchanged[corrupt_checksum]",
        "test_reported_data.py::test_corrupted_answer_never_appears_as_data[checksum]",
        # two slaves in step: the AND of their answers has a wrong checksum
        "test_scanning.py::test_primary_scan_reports_a_collision[aligned]",
    ), rig=MASTER_RIG),
    "takes_and_of_collision": Expected((
        "test_scanning.py::test_primary_scan_reports_a_collision[aligned]",
        "test_control.py::test_read_at_broadcast_254[two_slaves]",
        "test_transmission.py::test_retry_repeats_the_request_unchanged[corrupt_checksum]",
        "test_reported_data.py::test_corrupted_answer_never_appears_as_data[checksum]",
    ), rig=MASTER_RIG),
    "stops_search_at_merged_e5": Expected((
        "test_scanning.py::test_secondary_search_finds_every_slave[*-merged_e5]",
    ), rig=MASTER_RIG),
    "skips_hex_digits": Expected((
        "test_scanning.py::test_secondary_search_finds_every_slave[*-hex_fields]",
    ), rig=MASTER_RIG),
    "reads_first_telegram_only": Expected((
        "test_reported_data.py::test_multi_telegram_readout_is_complete",
    ), rig=MASTER_RIG),
    "talks_old_rate_after_switch": Expected((
        "test_control.py::test_baud_switch[*]",
    ), rig=MASTER_RIG, recommended=("test_control.py::test_baud_switch_is_verified[*]",)),
}
"""Which master scenarios each named defect of the test master (rig/defective_master.py)
must make fail, at 2400 Bd on the master rig: exactly these, every other one passes; and
which recommended ones it must trip ("recommended, not met"), exactly those."""


MASTER_DESELECT_IN_DEFECT_RUNS: tuple[str, ...] = (
    "tests_hil/master/test_scanning.py::test_secondary_search_finds_every_slave[2400Bd-last_digit]",
    "tests_hil/master/test_scanning.py::test_secondary_search_finds_every_slave[2400Bd-mixed]",
)
"""Left out of the master defect runs to keep CI in minutes: the two largest search
populations (a master that breaks the search costs most there); their failure modes are
those of the other populations, and the conformant runs keep them."""


KNOWN_GAPS: dict[str, str] = {}
"""Scenarios the project's own conformant emulated slave fails today, each with the reason.
They must fail in every run (tests/test_suite_conformant.py checks that, so a fix shows up
as a failing test until the entry is removed) and count as expected in the defect runs."""

DESELECT_IN_DEFECT_RUNS: tuple[str, ...] = (
    "tests_hil/test_collisions.py::test_search_adversarial_population[250]",
)
"""Cases left out of the defect runs to keep CI in minutes: the 250-slave search costs about
a minute of simulation and its failure modes are those of the 10-slave one; the conformant
run at every rate keeps it."""


def known_gap(test_id: str) -> str | None:
    """The reason a case is a known gap of the emulated slave, else None."""
    return _gap_in(KNOWN_GAPS)(test_id)


def _gap_in(gaps: Mapping[str, str]) -> Callable[[str], str | None]:
    return lambda test_id: next((why for pattern, why in gaps.items()
                                 if _match(test_id, pattern)), None)


def _text(run: Any, test_id: str) -> str:
    return f"{test_id}: {run.messages.get(test_id, '')[:300]}"


def conformant_problems(run: Any, *, allowed_skips: Mapping[str, str],
                        gaps: Mapping[str, str] = KNOWN_GAPS,
                        may_miss: Mapping[str, str] | None = None) -> list[str]:
    """What is wrong with a suite run (``tests_hil._run.SuiteRun``) on a conformant slave:
    failures that are not known ``gaps`` (pattern -> why), recommendations not met (but those
    it ``may_miss``, pattern -> why), gaps that now pass, and skips whose case and reason
    match no ``allowed_skips`` entry (case pattern -> a regular expression searched in the
    skip reason). Empty: conformant."""
    gap, excused = _gap_in(gaps), _gap_in(may_miss or {})
    out = [f"FAILED {_text(run, t)}" for t in run.failed if gap(t) is None]
    out += [f"RECOMMENDED, not met: {_text(run, t)}" for t in run.having("recommended")
            if excused(t) is None]
    out += [f"known gap that now passes (remove it): {p}" for p in gaps
            if not any(_match(t, p) for t in run.failed)]
    out += [f"unexpected skip {_text(run, t)}" for t in run.having("skipped")
            if not any(_match(t, pattern) and re.search(reason, run.messages.get(t, ""))
                       for pattern, reason in allowed_skips.items())]
    return out


def defect_run_problems(expected: Expected, run: Any, *,
                        gaps: Mapping[str, str] = KNOWN_GAPS,
                        may_miss: Mapping[str, str] | None = None) -> list[str]:
    """What is wrong with a suite run with a defect switched on: failures (or recommendations
    not met) outside ``expected``, the known ``gaps`` and what the slave ``may_miss`` anyway
    (unless collateral), patterns nothing matched, and must-pass cases that did not pass.
    Empty: caught exactly where intended."""
    gap, excused = _gap_in(gaps), _gap_in(may_miss or {})
    not_met = Expected(expected.recommended)
    unexpected = [] if expected.collateral else (
        [t for t in run.failed if not expected.matches(t) and gap(t) is None]
        + [t for t in run.having("recommended")
           if not not_met.matches(t) and excused(t) is None])
    missed = expected.unmatched(run.failed) + not_met.unmatched(run.having("recommended"))
    not_passed = Expected(expected.must_pass).unmatched(run.having("passed"))
    return ([f"failed (or recommendation not met) but not expected: {_text(run, t)}"
             for t in unexpected]
            + [f"expected to fail (or to miss a recommendation), nothing matched: {p}"
               for p in missed]
            + [f"expected to pass despite the defect, no pass matched: {p}"
               for p in not_passed])


def defect_descriptions() -> dict[str, str]:
    """What each defect does, from the engines that implement them."""
    from rig.defects import master_defects, slave_defects

    return {**slave_defects(), **master_defects()}
