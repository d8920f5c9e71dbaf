"""The master suite's metadata, catalogue and defect table, and which suite a rig runs (no
scenario runs here except the collection checks, which only collect)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rig.config import CAPABILITIES
from rig.defective_master import MASTER_DEFECTS
from tests_hil import _catalog
from tests_hil._defects import MASTER_EXPECTED_FAILURES
from tests_hil._scenario import CLAUSES, SEVERITIES

ROOT = Path(__file__).resolve().parent.parent
MASTER_RIG = ROOT / "tests_hil" / "rigs" / "master.toml"
SELF_SWITCHES = 6
"""Baud switches to the rate they start from, dropped at --baud all: test_baud_switch and
test_baud_switch_is_verified, to 300, 2400 and 9600 Bd."""


@pytest.fixture(scope="module")
def entries() -> list[_catalog.Entry]:
    return _catalog.master_scenarios()


def _collect(*options: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-m", "pytest", *options, "--collect-only", "-q",
                           "-p", "no:cacheprovider"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode in (0, 5), proc.stdout[-3000:] + proc.stderr[-3000:]
    return [line for line in proc.stdout.splitlines() if "::" in line]


def test_every_master_scenario_has_complete_metadata(entries):
    assert len(entries) >= 20
    for e in entries:
        assert e.checks and e.meta.fails_when.strip(), e.node
        assert e.meta.clause in CLAUSES.values(), e.node
        assert e.meta.severity in SEVERITIES, e.node
        assert not set(e.meta.needs) - set(CAPABILITIES), e.node
        if e.meta.severity == "recommended":
            assert e.meta.fails_when.startswith("(recommended)"), e.node


def test_master_modules_do_not_share_names_with_slave_modules(entries):
    """Test ids leave the folder out (tests_hil/_run.py): the two suites' files differ."""
    assert not {e.module for e in entries} & {e.module for e in _catalog.scenarios()}


def test_one_area_per_master_module(entries):
    areas: dict[str, set[str]] = {}
    for e in entries:
        areas.setdefault(e.module, set()).add(e.meta.area)
    assert all(len(a) == 1 for a in areas.values()), areas


def test_the_catalogue_has_the_master_suite(entries):
    text = (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8")
    assert "# Master suite" in text and "## Master defect detection" in text
    assert all(f"`{e.node}`" in text for e in entries)


def test_master_defect_table_covers_exactly_the_named_defects(entries):
    assert set(MASTER_EXPECTED_FAILURES) == set(MASTER_DEFECTS)
    nodes = {e.node for e in entries}
    for defect, expected in MASTER_EXPECTED_FAILURES.items():
        assert expected.rig == "master.toml"
        for pattern in expected.patterns:
            assert pattern.split("[", 1)[0] in nodes, f"{defect}: {pattern!r} names nothing"


def test_collection_on_the_master_rig_is_the_master_suite(entries):
    collected = _collect("tests_hil", "--rig", str(MASTER_RIG), "--baud", "all")
    assert collected and all(line.startswith("tests_hil/master/") for line in collected)
    assert len(collected) == sum(e.cases(8) for e in entries) - SELF_SWITCHES


def test_a_slave_rig_collects_no_master_scenario():
    collected = _collect("tests_hil", "--rig", "sim")
    assert collected and not any(line.startswith("tests_hil/master/") for line in collected)


def test_master_scenarios_named_on_a_slave_rig_skip_with_the_reason():
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests_hil/master/test_robustness.py", "--rig", "sim",
         "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "3 skipped" in proc.stdout
    assert "needs op_read: not available on rig 'sim' with DUT 'meter' (emulated)" in proc.stdout


def test_slave_scenarios_named_on_a_master_rig_skip_with_the_reason(tmp_path):
    """A slave scenario on a master rig: skipped by its capabilities (a master DUT has no
    slave capability), and the master instrument fixture says why for one that needs
    none."""
    probe = tmp_path / "test_probe.py"
    probe.write_text("def test_uses_the_instrument(master):\n    pass\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests_hil/test_addressing.py", str(probe), "--rig",
         str(MASTER_RIG), "-q", "-rs", "-p", "no:cacheprovider", "-k",
         "broadcast_255 or uses_the_instrument"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "2 skipped" in proc.stdout
    assert "needs primary: not available on rig 'master'" in proc.stdout
    assert "a slave scenario: the DUT 'mbus-rig-master' is a master" in proc.stdout
