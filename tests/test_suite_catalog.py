"""The conformance suite's metadata, catalogue and tools (no rig needed except the collection
check, which only collects)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from protocol.frames import decode
from protocol.identity import SecondaryAddress
from rig.config import CAPABILITIES
from tests_hil import _catalog, _wire
from tests_hil._defects import EXPECTED_FAILURES, Expected, defect_descriptions
from tests_hil._population import adversarial
from tests_hil._run import parse_junit
from tests_hil._scenario import CLAUSES, SEVERITIES, scenario

ROOT = Path(__file__).resolve().parent.parent
BRIEF_DEFECTS = {
    "ignores_fcb", "answers_bad_checksum", "acks_unsupported_baud", "acks_at_new_rate",
    "answers_too_early", "answers_too_late", "answers_broadcast_255",
    "keeps_selection_after_nke", "wildcard_mismatch_manufacturer", "wrong_checksum_in_answers",
    "ignores_set_address",
}


@pytest.fixture(scope="module")
def entries() -> list[_catalog.Entry]:
    return _catalog.scenarios()


def test_committed_catalogue_is_up_to_date(entries):
    committed = (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8")
    assert committed == _catalog.render(entries), (
        "docs/scenarios.md is out of date: run .venv/bin/python -m tests_hil._catalog")


def test_catalogue_check_mode_reports_a_stale_file(tmp_path):
    stale = tmp_path / "scenarios.md"
    stale.write_text("# old\n", encoding="utf-8")
    assert _catalog.main(["--check", "--output", str(stale)]) == 1
    assert _catalog.main(["--output", str(stale)]) == 0
    assert _catalog.main(["--check", "--output", str(stale)]) == 0


def test_every_scenario_has_complete_metadata(entries):
    assert len(entries) >= 30
    for e in entries:
        assert e.checks, e.node
        assert e.meta.fails_when.strip(), e.node
        assert e.meta.clause in CLAUSES.values(), e.node
        assert e.meta.severity in SEVERITIES, e.node
        unknown = set(e.meta.needs) - set(CAPABILITIES)
        assert not unknown, f"{e.node}: unknown capabilities {unknown}"


def test_one_area_per_module(entries):
    areas: dict[str, set[str]] = {}
    for e in entries:
        areas.setdefault(e.module, set()).add(e.meta.area)
    assert all(len(a) == 1 for a in areas.values()), areas


def test_scenario_decorator_rejects_incomplete_declarations():
    with pytest.raises(KeyError):
        scenario("x", "no.such.clause", fails_when="never")
    with pytest.raises(ValueError):
        scenario("x", "link.primary", severity="fatal", fails_when="never")

    def undocumented():
        pass

    with pytest.raises(ValueError, match="docstring"):
        scenario("x", "link.primary", fails_when="never")(undocumented)


def test_defect_table_covers_exactly_the_named_defects():
    from protocol.meter import defect_names

    assert set(EXPECTED_FAILURES) == BRIEF_DEFECTS
    assert set(defect_names()) == BRIEF_DEFECTS
    assert set(defect_descriptions()) >= BRIEF_DEFECTS


def test_defect_patterns_name_existing_scenarios(entries):
    nodes = {e.node for e in entries}
    for defect, expected in EXPECTED_FAILURES.items():
        for pattern in expected.patterns:
            node = pattern.split("[", 1)[0]
            assert node in nodes, f"{defect}: pattern {pattern!r} names no scenario"


def test_expected_matching():
    exp = Expected(("a.py::t[*-x]", "b.py::u"))
    assert exp.matches("a.py::t[2400Bd-x]")
    assert not exp.matches("a.py::t[2400Bd-y]")
    assert not exp.matches("b.py::u[1]")
    assert exp.unmatched(["a.py::t[300Bd-x]"]) == ["b.py::u"]
    assert Expected(("a.py::t[x]",)).matches("a.py::t[x]")
    assert not Expected(("a.py::t[x]",)).matches("a.py::tx")


def test_collection_at_every_rate_matches_the_catalogue(entries):
    """What pytest collects with --baud all is what the catalogue counts, minus the baud
    switches to the rate they start from (deselected: 8 of them)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests_hil", "--collect-only", "-q",
         "-p", "no:cacheprovider", "--rig", "sim", "--baud", "all"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    collected = [line for line in proc.stdout.splitlines() if "::" in line]
    assert len(collected) == sum(e.cases(8) for e in entries) - 8
    assert not any("test_baud_switch[300Bd-300]" in line for line in collected)


def test_parse_junit(tmp_path):
    xml = tmp_path / "j.xml"
    xml.write_text(
        '<testsuites><testsuite>'
        '<testcase classname="tests_hil.test_a" name="test_x[300Bd]"/>'
        '<testcase classname="tests_hil.test_a" name="test_y"><failure message="boom"/></testcase>'
        '<testcase classname="tests_hil.test_b" name="test_z"><skipped message="needs noise"/>'
        '</testcase>'
        '<testcase classname="tests_hil.test_b" name="test_z2"><failure message="f"/></testcase>'
        '<testcase classname="tests_hil.test_b" name="test_z2"><error message="teardown"/>'
        '</testcase>'
        '<testcase classname="tests_hil.test_c" name="test_r"><skipped type="mbus.recommended" '
        'message="recommended, not met (R4): E5"/></testcase></testsuite></testsuites>',
        encoding="utf-8")
    outcomes, messages = parse_junit(xml)
    assert outcomes == {"test_a.py::test_x[300Bd]": "passed", "test_a.py::test_y": "failed",
                        "test_b.py::test_z": "skipped", "test_b.py::test_z2": "failed",
                        "test_c.py::test_r": "recommended"}
    assert messages["test_b.py::test_z"] == "needs noise"
    assert messages["test_c.py::test_r"] == "recommended, not met (R4): E5"


# --- the scenarios' vocabulary -----------------------------------------------------------------


def test_requests_are_the_frames_of_mbus_md():
    assert _wire.snd_nke(5) == bytes.fromhex("10 40 05 45 16")
    assert _wire.req_ud2(5, fcb=True) == bytes.fromhex("10 7B 05 80 16")
    assert _wire.baud_request(1, 9600) == bytes.fromhex("68 03 03 68 53 01 BD 11 16")
    set_address = _wire.set_address_request(5, 7)
    assert set_address == bytes.fromhex("68 06 06 68 53 05 51 01 7A 07 2B 16")
    frame = decode(_wire.selection(_wire.mask("1234567F", 0xFFFF, 0x01, 0xFF)))
    assert (frame.a, frame.ci, frame.data) == (253, 0x52,
                                               bytes.fromhex("7F 56 34 12 FF FF 01 FF"))
    kam = decode(_wire.selection(_wire.mask("12345678", 0x2C2D, 0x01, 0x04)))
    assert kam.data == bytes.fromhex("78 56 34 12 2D 2C 01 04")  # manufacturer little-endian


def test_enhanced_selection_appends_the_fabrication_number():
    sec = SecondaryAddress(12345678, 0x0443, 1, 4)
    frame = decode(_wire.selection(_wire.exact(sec, 87654321)))
    assert frame.data == sec.to_bytes() + bytes.fromhex("0C 78 21 43 65 87")


def test_nobody_mask_matches_no_given_slave():
    population = [SecondaryAddress(99_999_999, 1, 1, 1), SecondaryAddress(5, 1, 1, 1)]
    mask = _wire.nobody(population)
    assert not any(mask.matches(s) for s in population)


@pytest.mark.parametrize("count", [1, 3, 9, 249])
def test_adversarial_population(count):
    dut = SecondaryAddress(12345678, 0x0443, 1, 4)
    pop = adversarial(dut, count)
    assert len(pop) == count == len(set(pop))
    assert dut not in pop
    assert all(s.version != 0xFF and s.medium != 0xFF for s in pop)
    if count >= 3:  # the IDs libmbus cannot tell apart: same ID, other hex fields
        same_id = [s for s in pop if s.id == dut.id]
        assert {(s.manufacturer != dut.manufacturer, s.version != dut.version,
                 s.medium != dut.medium) for s in same_id} == {
            (True, False, False), (False, True, False), (False, False, True)}
    if count >= 12:
        assert sum(1 for s in pop if s.id // 10 == dut.id // 10 and s.id != dut.id) == 9
