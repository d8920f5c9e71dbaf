"""The master tools against the simulated bus: what they print, with collisions and faults.

Every test runs the real CLI (``rig.cli.main``) on ``--device sim:N``; a population other
than the default (N heat meters at 1..N) or an armed fault is put in through the sim hooks
of rig.tools.bus, so the command code path is the user's.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator

import pytest
from test_tools_options import run_cli as run

import rig.tools.bus as toolbus
from hardware.profile import load_profile, shipped_profile
from protocol.frames import encode
from protocol.meter import MeterProfile, heat_meter_profile
from rig.commands.decode import decode_frame

Setup = Callable[[toolbus.BusSession], None]


class SimHooks:
    """Replace the population of ``sim:N`` and run ``setup`` on the opened session."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.profiles: list[MeterProfile] | None = None
        self.setup: Setup | None = None
        self.sessions: list[toolbus.BusSession] = []
        original_population = toolbus.sim_population
        original_open = toolbus.open_sim

        def population(count: int, **kwargs: object) -> list[MeterProfile]:
            if self.profiles is not None:
                return self.profiles
            return original_population(count, **kwargs)  # type: ignore[arg-type]

        def open_sim(profiles: list[MeterProfile], **kwargs: object) -> toolbus.BusSession:
            session = original_open(profiles, **kwargs)  # type: ignore[arg-type]
            self.sessions.append(session)
            if self.setup is not None:
                self.setup(session)
            return session

        monkeypatch.setattr(toolbus, "sim_population", population)
        monkeypatch.setattr(toolbus, "open_sim", open_sim)


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimHooks]:
    yield SimHooks(monkeypatch)



def meters(ids: list[int], *, address: int | None = None, **fields: object) -> list[MeterProfile]:
    """Heat meters with these IDs, at ``address`` (default: 1, 2, ...), uniquely named."""
    base = heat_meter_profile()
    return [dataclasses.replace(base, id=i, address=n + 1 if address is None else address,
                                name=f"m{i}-{n}", fabrication_number=50_000_000 + n,
                                **fields)  # type: ignore[arg-type]
            for n, i in enumerate(ids)]


def same_id(field: str, values: tuple[object, ...]) -> list[MeterProfile]:
    """Slaves with one ID that differ only in ``field`` (and their fabrication numbers)."""
    return [dataclasses.replace(heat_meter_profile(), id=12345678, address=0, name=f"s{n}",
                                fabrication_number=60_000_000 + n,
                                **{field: value})  # type: ignore[arg-type]
            for n, value in enumerate(values)]


# --- ping -------------------------------------------------------------------------------------


def test_ping_reports_the_e5_and_its_delay(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "ping", "-d", "sim", "-a", "1")
    assert code == 0 and err == ""
    assert out.startswith("address 1: E5 after ") and out.rstrip().endswith(" ms")
    code, out, _ = run(capsys, "ping", "-d", "sim", "-a", "1", "--json")
    data = json.loads(out)
    assert data["answer"] == "E5" and data["baud"] == 2400 and data["attempts"] == 1
    assert 4.5 < data["response_delay_ms"] < 187.5


def test_nothing_answered_names_address_baud_and_attempts(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "ping", "-d", "sim", "-a", "7", "--retries", "1")
    assert code == 1 and out == ""
    assert err.strip() == ("mbus-rig ping: nothing answered at address 7 (2400 baud, 2 attempts); "
                           "check the address, the baud rate and the wiring")


def test_ping_at_the_wrong_baud_rate_finds_nothing(capsys: pytest.CaptureFixture[str],
                                                   hooks: SimHooks) -> None:
    hooks.profiles = meters([11111111])  # at 2400 baud
    code, _, err = run(capsys, "ping", "-d", "sim", "-a", "1", "--baud", "9600", "-r", "0")
    assert code == 1
    assert "nothing answered at address 1 (9600 baud, 1 attempt)" in err


def test_timeout_widens_the_response_window(capsys: pytest.CaptureFixture[str],
                                            hooks: SimHooks) -> None:
    hooks.setup = lambda s: s.meters[0].core.arm("late", 5, delay=0.300)
    code, _, err = run(capsys, "ping", "-d", "sim", "-a", "1", "-r", "0")
    assert code == 1 and "no answer inside the response window at address 1" in err
    assert "112.5 ms after its window (300.0 ms after the request)" in err
    code, out, err = run(capsys, "ping", "-d", "sim", "-a", "1", "-r", "0", "--timeout", "0.5",
                         "--json")
    assert code == 0, err
    assert json.loads(out)["response_delay_ms"] == pytest.approx(300, abs=1)


def test_echo_of_the_level_converter_is_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "read", "-d", "sim", "-a", "1", "--echo", "--json")
    assert code == 0, err
    assert json.loads(out)["frame"]["a"] == 1


def test_ping_by_secondary_address(capsys: pytest.CaptureFixture[str], hooks: SimHooks) -> None:
    hooks.profiles = meters([11111111, 22222222])
    target = str(hooks.profiles[1].secondary)
    code, out, err = run(capsys, "ping", "-d", "sim:2", "--secondary", target)
    assert code == 0, err
    assert out.startswith(f"secondary {target}: E5")


# --- scan -------------------------------------------------------------------------------------


def test_primary_scan_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "scan", "-d", "sim:3", "--range", "0-5")
    assert code == 0 and err == ""  # no progress bar when stderr is not a terminal
    lines = out.splitlines()
    assert lines[0] == "primary scan, sim:3, 2400 baud: 3 found"
    rows = [line.split() for line in lines[3:]]
    assert [(r[0], r[1]) for r in rows] == [("1", "ok"), ("2", "ok"), ("3", "ok")]
    code, out, _ = run(capsys, "scan", "-d", "sim:3", "--range", "0-5", "--json")
    data = json.loads(out)
    assert [f["address"] for f in data["found"]] == [1, 2, 3]
    assert all(f["status"] == "ok" and len(f["slave"]["secondary"]) == 16 for f in data["found"])


def test_two_slaves_at_one_address_are_a_collision_not_a_device(
    capsys: pytest.CaptureFixture[str], hooks: SimHooks
) -> None:
    hooks.profiles = [*meters([11111111], address=5), *meters([22222222, 33333333], address=9)]
    hooks.profiles[2] = dataclasses.replace(hooks.profiles[2], name="twin")
    code, out, err = run(capsys, "scan", "-d", "sim:3", "--range", "0-12", "--json")
    assert code == 0, err
    found = {f["address"]: f for f in json.loads(out)["found"]}
    assert set(found) == {5, 9}
    assert found[5]["status"] == "ok" and found[5]["slave"]["id"] == "11111111"
    assert found[9]["status"] == "collision" and found[9]["slave"] is None


def test_no_slave_found_is_said_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "scan", "-d", "sim:1", "--range", "100-102", "-r", "0")
    assert code == 0 and out == ""
    assert "no slave answered at addresses 100-102 (2400 baud, 0 retries)" in err


@pytest.mark.parametrize(
    "population",
    [
        pytest.param(lambda: same_id("manufacturer", ("KAM", "ABB", "ELS", "SEN")),
                     id="only-manufacturer"),
        pytest.param(lambda: same_id("version", (0x0A, 0x1B, 0xE1)), id="only-version"),
        pytest.param(lambda: same_id("medium", (0x04, 0x0C, 0x16)), id="only-medium"),
        pytest.param(lambda: meters([12345670, 12345677, 99999990, 99999991], address=0),
                     id="clean-e5-pairs"),
    ],
)
def test_secondary_scan_finds_every_slave(
    capsys: pytest.CaptureFixture[str], hooks: SimHooks,
    population: Callable[[], list[MeterProfile]]
) -> None:
    hooks.profiles = population()
    code, out, err = run(capsys, "scan", "-d", f"sim:{len(hooks.profiles)}", "--secondary",
                         "--json")
    assert code == 0, err
    data = json.loads(out)
    assert sorted(f["secondary"] for f in data["found"]) == sorted(
        str(p.secondary) for p in hooks.profiles)
    assert data["probes"] > 0 and data["bus_time_s"] > 0


def test_secondary_scan_lists_twins_by_fabrication_number(
        capsys: pytest.CaptureFixture[str], hooks: SimHooks) -> None:
    # the same secondary address twice, told apart by enhanced selection
    hooks.profiles = [dataclasses.replace(p, response_delay=delay) for p, delay
                      in zip(same_id("medium", (0x04, 0x04)), (0.020, 0.060), strict=True)]
    code, out, err = run(capsys, "scan", "-d", "sim:2", "--secondary", "--json")
    assert code == 0, err
    data = json.loads(out)
    twin = str(hooks.profiles[0].secondary)
    assert [f["secondary"] for f in data["found"]] == [twin, twin]
    fabs = [f["fabrication"] for f in data["found"]]
    assert fabs[0] != fabs[1] and all(fab and len(fab) == 8 for fab in fabs)
    assert {"60000000", "60000001"} == {
        next(n for n in ("60000000", "60000001")
             if all(m in ("F", d) for m, d in zip(fab, n, strict=True))) for fab in fabs}
    code, out, err = run(capsys, "scan", "-d", "sim:2", "--secondary")
    assert code == 0, err
    assert "2 found" in out.splitlines()[0] and out.count(twin) == 2 and "fabrication" in out


def test_secondary_scan_under_a_mask(capsys: pytest.CaptureFixture[str], hooks: SimHooks) -> None:
    hooks.profiles = meters([12340001, 12349999, 56780000], address=0)
    code, out, err = run(capsys, "scan", "-d", "sim:3", "--secondary", "--mask", "1234FFFFFFFFFFFF")
    assert code == 0, err
    assert "2 found" in out.splitlines()[0]
    assert "12340001" in out and "12349999" in out and "56780000" not in out


def test_scan_option_mixups_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "scan", "-d", "sim", "--mask", "1234FFFFFFFFFFFF")
    assert code == 2 and "--mask applies to the secondary scan" in err
    code, _, err = run(capsys, "scan", "-d", "sim", "--secondary", "--range", "1-3")
    assert code == 2 and "--range applies to the primary scan" in err


# --- read -------------------------------------------------------------------------------------


def test_read_prints_the_records(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "read", "-d", "sim", "-a", "1")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("address 1, telegram 1: ") and "Heat: Outlet" in lines[0]
    assert any(line.split()[5:6] == ["Energy"] for line in lines[3:])


def test_read_json_is_the_decode_json_of_the_frame(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "read", "-d", "sim", "-a", "1", "--json")
    assert code == 0, err
    ours = json.loads(out)
    # the same meter on a fresh bus answers the same first telegram
    bus = toolbus.open_sim(toolbus.sim_population(1, seed=1, baud=2400), baud=2400, seed=1,
                           retries=2)
    try:
        frame = bus.master.req_ud2(1).frame
    finally:
        bus.close()
    assert frame is not None
    assert ours == decode_frame(encode(frame))
    assert ours["header"]["id"] == f"{bus.meters[0].profile.id:08d}"


def test_read_all_telegrams_follows_the_pages(capsys: pytest.CaptureFixture[str],
                                              hooks: SimHooks) -> None:
    profile = load_profile(shipped_profile("multi-telegram"))
    hooks.profiles = [dataclasses.replace(profile, address=1)]
    code, out, err = run(capsys, "read", "-d", "sim", "-a", "1", "--all-telegrams", "--json")
    assert code == 0, err
    telegrams = [json.loads(line) for line in out.splitlines()]
    assert len(telegrams) == len(profile.pages) > 1
    # pages hold storage numbers 0-8, 9-16, 17-24 (plus a storage-0 record at each end)
    storages = [sorted({r["storage"] for r in t["records"]} - {0}) for t in telegrams]
    assert all(a[-1] < b[0] for a, b in zip(storages, storages[1:], strict=False))
    assert [t["more_records_follow"] for t in telegrams] == [True] * (len(telegrams) - 1) + [False]
    code, out, err = run(capsys, "read", "-d", "sim", "-a", "1")
    assert "more records follow (use --all-telegrams to read them)" in out


def test_a_corrupted_page_is_asked_again_with_the_same_fcb(
    capsys: pytest.CaptureFixture[str], hooks: SimHooks
) -> None:
    """A retry with a toggled FCB would fetch page 2 and lose page 1."""
    profile = load_profile(shipped_profile("multi-telegram"))
    hooks.profiles = [dataclasses.replace(profile, address=1)]
    hooks.setup = lambda s: s.meters[0].core.arm("corrupt_checksum", 1)
    code, out, err = run(capsys, "read", "-d", "sim", "-a", "1", "--all-telegrams", "--json")
    assert code == 0, err
    telegrams = [json.loads(line) for line in out.splitlines()]
    firsts = [min({r["storage"] for r in t["records"]} - {0}) for t in telegrams]
    assert firsts == [1, 9, 17]


def test_read_by_secondary_address(capsys: pytest.CaptureFixture[str], hooks: SimHooks) -> None:
    hooks.profiles = meters([11111111, 22222222], address=0)
    target = str(hooks.profiles[1].secondary)
    code, out, err = run(capsys, "read", "-d", "sim:2", "--secondary", target, "--json")
    assert code == 0, err
    assert json.loads(out)["header"]["id"] == "22222222"


def test_checksum_error_on_every_attempt_shows_the_bytes(
    capsys: pytest.CaptureFixture[str], hooks: SimHooks
) -> None:
    hooks.setup = lambda s: s.meters[0].core.arm("corrupt_checksum", 3)
    code, out, err = run(capsys, "read", "-d", "sim", "-a", "1")
    assert code == 1 and out == ""
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith("mbus-rig read: garbled answer from address 1 (2400 baud, 3 attempts): "
                           "checksum: ")
    raw = bytes.fromhex(line.split("bytes: ")[1])
    assert raw[0] == 0x68 and raw[-1] == 0x16 and len(raw) == raw[1] + 6


def test_one_corrupted_answer_is_retried_with_the_same_fcb(
    capsys: pytest.CaptureFixture[str], hooks: SimHooks
) -> None:
    hooks.setup = lambda s: s.meters[0].core.arm("corrupt_checksum", 1)
    code, out, err = run(capsys, "read", "-d", "sim", "-a", "1", "--json", "--verbose")
    assert code == 0, err
    assert json.loads(out)["frame"]["a"] == 1
    assert "M>S" in err and "S>M" in err  # the trace, with the retry


def test_a_late_slave_is_named_late_not_silent(capsys: pytest.CaptureFixture[str],
                                              hooks: SimHooks) -> None:
    """Every answer starts 30 ms after the response window: the tool says the slave answers
    too late, with the delay, not "nothing answered"."""
    from protocol.timing import response_window

    late = response_window(2400)[1] + 0.030
    hooks.setup = lambda s: s.meters[0].core.arm("late", 10, delay=late)
    code, out, err = run(capsys, "ping", "-d", "sim", "-a", "1", "-r", "0")
    assert code == 1 and out == ""
    assert err.strip() == (
        "mbus-rig ping: no answer inside the response window at address 1 (2400 baud, 1 "
        "attempt), but a late one: late answer to the SND_NKE A=1, 30.0 ms after its window "
        "(217.5 ms after the request): E5; the slave answers too late (--timeout S listens "
        "longer)")


def test_read_at_a_shared_address_shows_the_garbled_answers(capsys: pytest.CaptureFixture[str],
                                                  hooks: SimHooks) -> None:
    hooks.profiles = [*meters([11111111], address=4),
                      dataclasses.replace(meters([22222222], address=4)[0], name="twin")]
    code, out, err = run(capsys, "read", "-d", "sim:2", "-a", "4")
    assert code == 1 and out == ""
    assert err.startswith("mbus-rig read: garbled answer from address 4 (2400 baud, 3 attempts): "
                          "character error")
    assert "several slaves answering at once" in err


# --- select, set-address, switch-baud, reset ----------------------------------------------------


def test_select_names_the_selected_slave(capsys: pytest.CaptureFixture[str], hooks: SimHooks) -> None:
    hooks.profiles = meters([12340001, 56780000], address=0)
    code, out, err = run(capsys, "select", "-d", "sim:2", "--mask", "1234FFFFFFFFFFFF")
    assert code == 0, err
    assert out.startswith(f"selected {hooks.profiles[0].secondary} (")
    assert out.rstrip().endswith("it answers at address 253")


def test_select_matching_two_slaves_is_a_collision(capsys: pytest.CaptureFixture[str],
                                                   hooks: SimHooks) -> None:
    hooks.profiles = meters([12340001, 12340002], address=0)
    code, _, err = run(capsys, "select", "-d", "sim:2", "--mask", "1234FFFFFFFFFFFF")
    assert code == 1
    assert err.startswith("mbus-rig select: garbled answer from address 253 after selecting "
                          "1234FFFFFFFFFFFF (2400 baud, 3 attempts): character error")
    assert "several slaves answering at once" in err


def test_select_nothing_matches(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "select", "-d", "sim", "--mask", "99FFFFFFFFFFFFFF", "-r", "0")
    assert code == 1
    assert "nothing answered at mask 99FFFFFFFFFFFFFF (2400 baud, 1 attempt)" in err


def test_set_address_verifies_the_new_address(capsys: pytest.CaptureFixture[str],
                                              hooks: SimHooks) -> None:
    code, out, err = run(capsys, "set-address", "-d", "sim", "-a", "1", "--new", "42", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["verified"] is True and data["slave"]["address"] == 42
    assert hooks.sessions[0].meters[0].core.address == 42


def test_set_address_refuses_a_taken_address(capsys: pytest.CaptureFixture[str],
                                             hooks: SimHooks) -> None:
    code, _, err = run(capsys, "set-address", "-d", "sim:2", "-a", "1", "--new", "2")
    assert code == 1 and "address 2 is already in use" in err
    assert hooks.sessions[0].meters[0].core.address == 1


def test_set_address_ignored_by_a_defective_slave(capsys: pytest.CaptureFixture[str],
                                                  hooks: SimHooks) -> None:
    hooks.setup = lambda s: s.meters[0].core.set_defects(["ignores_set_address"])
    code, _, err = run(capsys, "set-address", "-d", "sim", "-a", "1", "--new", "42", "-r", "0")
    assert code == 1
    assert "acknowledged the new address 42 but does not answer there" in err


def test_set_address_after_a_readout_answers_with_the_new_address(
    capsys: pytest.CaptureFixture[str], hooks: SimHooks
) -> None:
    """Regression (issue 10): a readout at the old address left FCB=1 and its answer cached
    in the slave; the first REQ_UD2 at the new address (FCB=1 too) got that cached answer,
    naming the old address."""
    def read_first(session: toolbus.BusSession) -> None:
        session.master.read_all(3)

    hooks.profiles = [dataclasses.replace(heat_meter_profile(), address=3)]
    hooks.setup = read_first
    code, out, err = run(capsys, "set-address", "-d", "sim", "-a", "3", "--new", "42", "--json")
    assert code == 0, err
    assert json.loads(out)["slave"]["address"] == 42


def test_set_address_names_a_stale_a_field_as_the_cause(capsys: pytest.CaptureFixture[str],
                                                        hooks: SimHooks) -> None:
    """A slave that moved but still names its old address in its answers is reported as
    such, not as the last retry's "the answer names address 3, not 42"."""
    hooks.profiles = [dataclasses.replace(heat_meter_profile(), address=3)]
    hooks.setup = lambda s: s.meters[0].core.arm("wrong_address", 10, address=3)
    code, _, err = run(capsys, "set-address", "-d", "sim", "-a", "3", "--new", "42")
    assert code == 1
    assert err.strip() == (
        "mbus-rig set-address: address 3 took the new address 42 (it was at 3) and answers "
        "there, but its RSP_UD names its old address in the A field, not 42 (a slave answers "
        "with its own, new, address; 2400 baud)")


def test_set_address_not_done_names_where_the_slave_still_is(
    capsys: pytest.CaptureFixture[str], hooks: SimHooks
) -> None:
    hooks.setup = lambda s: s.meters[0].core.set_defects(["ignores_set_address"])
    code, _, err = run(capsys, "set-address", "-d", "sim", "-a", "1", "--new", "42", "-r", "0")
    assert code == 1
    assert err.strip().endswith("acknowledged the new address 42 but does not answer there "
                                "(2400 baud); it still answers at 1: it did not change its "
                                "address")


def test_switch_baud_verifies_at_the_new_rate(capsys: pytest.CaptureFixture[str],
                                              hooks: SimHooks) -> None:
    hooks.profiles = [dataclasses.replace(heat_meter_profile(), address=1, bauds=(2400, 9600))]
    code, out, err = run(capsys, "switch-baud", "-d", "sim", "-a", "1", "--to", "9600")
    assert code == 0, err
    assert out.strip() == "address 1: switched from 2400 to 9600 baud; verified, it answers at 9600 baud"
    assert hooks.sessions[0].meters[0].core.baud == 9600


def test_switch_to_an_unsupported_rate_is_not_acknowledged(
    capsys: pytest.CaptureFixture[str], hooks: SimHooks
) -> None:
    hooks.profiles = [dataclasses.replace(heat_meter_profile(), address=1, bauds=(2400,))]
    code, _, err = run(capsys, "switch-baud", "-d", "sim", "-a", "1", "--to", "9600", "-r", "0")
    assert code == 1 and "nothing answered at address 1 (2400 baud" in err


def test_switch_acknowledged_but_not_done_is_reported(
    capsys: pytest.CaptureFixture[str], hooks: SimHooks
) -> None:
    hooks.profiles = [dataclasses.replace(heat_meter_profile(), address=1, bauds=(2400,))]
    hooks.setup = lambda s: s.meters[0].core.set_defects(["acks_unsupported_baud"])
    code, _, err = run(capsys, "switch-baud", "-d", "sim", "-a", "1", "--to", "9600", "-r", "0")
    assert code == 1
    assert ("acknowledged the switch from 2400 to 9600 baud at 2400 baud, but does not answer "
            "at 9600 baud (NoAnswerError); it still answers at 2400 baud: it did not switch") in err


def test_reset_is_acknowledged(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "reset", "-d", "sim", "-a", "1", "--subcode", "0A")
    assert code == 0, err
    assert out.strip() == "address 1: application reset (subcode 0A) acknowledged"


# --- verbose trace ------------------------------------------------------------------------------


def test_verbose_prints_the_decoded_trace_with_times(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "ping", "-d", "sim", "-a", "1", "--verbose")
    assert code == 0
    assert out.startswith("address 1: E5")
    assert "SND_NKE" in err or "10 40 01 41 16" in err.upper()
    assert "M>S" in err and "S>M" in err
