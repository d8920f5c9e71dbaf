"""The pytest plugin without the bus: options, markers, capability skips, measurements,
allure labels and files, JUnit properties, the summary table (fixtures/plugin.py)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

RIG_WITHOUT_FAULT_LINES = """
name = "bare"
[[dut]]
name = "meter"
kind = "emulated"
address = 5
features = ["primary"]
"""


def _results(alluredir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in alluredir.glob("*-result.json")]


def _labels(result: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for label in result["labels"]:
        out.setdefault(label["name"], []).append(label["value"])
    return out


# --- options --------------------------------------------------------------------------------


@pytest.mark.parametrize("args, words", [
    (["--baud", "1000"], ["--baud 1000", "'1000' is not an M-Bus baud rate", "all"]),
    (["--rig", "missing.toml"], ["rig file missing.toml: not found"]),
    (["--dut", "nobody"], ["no DUT named 'nobody'", "meter"]),
])
def test_bad_options_are_usage_errors(pytester, args, words):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    for word in words:
        assert word in err, (word, err)


def test_bad_rig_file_names_file_and_key(pytester):
    pytester.makefile(".toml", rig='[master]\nbaud = 1234\n')
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--rig", "rig.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*rig.toml: master.baud: 1234 is not an M-Bus baud rate*"])


def test_baud_option_parametrises_the_baud_fixture(pytester):
    pytester.makepyfile("""
        from fixtures.plugin import parse_bauds
        def test_rates():
            assert parse_bauds("all", 2400)[0] == 300
            assert parse_bauds(None, 2400) == [2400]
            assert parse_bauds("9600,2400,9600", 2400) == [9600, 2400]
            assert parse_bauds("dut", 2400, (9600, 300, 2400)) == [300, 2400, 9600]
            assert parse_bauds("dut", 2400) == [2400]
    """)
    pytester.runpytest().assert_outcomes(passed=1)
    pytester.makepyfile(test_ids="""
        import pytest
        def test_ids(request):
            pass
    """)
    result = pytester.runpytest("--collect-only", "-q", "--baud", "300,9600",
                                pytester.path / "test_ids.py")
    assert result.ret == 0


# --- markers and capability skips --------------------------------------------------------------


def test_unknown_capability_is_a_usage_error_not_a_skip(pytester):
    pytester.makepyfile("""
        import pytest
        @pytest.mark.needs("teleport")
        def test_x():
            pass
    """)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown capability 'teleport'" in result.stderr.str()


def test_bad_severity_is_a_usage_error(pytester):
    pytester.makepyfile("""
        import pytest
        @pytest.mark.severity("urgent")
        def test_x():
            pass
    """)
    assert pytester.runpytest().ret == pytest.ExitCode.USAGE_ERROR


def test_missing_capability_skips_with_the_reason(pytester):
    pytester.makefile(".toml", bare=RIG_WITHOUT_FAULT_LINES)
    pytester.makepyfile("""
        import pytest
        @pytest.mark.needs("power_fault")
        def test_power():
            raise AssertionError("must not run")
        @pytest.mark.needs("primary", "control")
        def test_primary():
            pass
    """)
    result = pytester.runpytest("--rig", "bare.toml", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*needs power_fault: not available on rig 'bare' with DUT "
                                 "'meter' (emulated)*"])


def test_builtin_sim_rig_capabilities(pytester):
    pytester.makepyfile("""
        import pytest
        from rig.config import RIG_CAPABILITIES
        @pytest.mark.needs(*RIG_CAPABILITIES, "primary", "secondary", "baud_switch")
        def test_all_faults_and_control():
            pass
        @pytest.mark.needs("multi_telegram")
        def test_multi():
            pass
    """)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*needs multi_telegram: not available on rig 'sim'*"])


# --- measurements ------------------------------------------------------------------------------


def test_failed_measurement_fails_the_test_after_everything_is_recorded(pytester):
    pytester.makepyfile("""
        def test_delays(measure):
            measure("response delay", 0.25, "s", 0.0046, 0.1875)
            measure("retries", 1, "", 0, 2)
            measure("marginal one", 1.9, "s", high=2.0, configured=True)
            measure("near the standard's limit", 0.186, "s", 0.0046, 0.1875)
        def test_good(measure):
            assert measure("response delay", 0.05, "s", 0.0046, 0.1875).outcome == "pass"
    """)
    result = pytester.runpytest("--junitxml=junit.xml")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert ("measurement out of limits: response delay = 0.25 s, limits [0.0046, 0.1875] s: "
            "FAIL") in out
    assert "marginal one =" not in out and "retries =" not in out  # only the failing one
    root = ET.parse(pytester.path / "junit.xml").getroot()
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["measurement.marginal one"].endswith("MARGINAL")
    assert props["measurement.near the standard's limit"].endswith("PASS")
    assert props["measurement.retries"].endswith("PASS")
    assert props["rig"] == "sim" and props["mode"] == "sim"  # the rig's testsuite properties


def test_an_exception_still_wins_over_measurements(pytester):
    pytester.makepyfile("""
        def test_x(measure):
            measure("delay", 9, "s", 0, 1)
            raise RuntimeError("wire fell off")
    """)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*RuntimeError: wire fell off*"])


# --- allure ---------------------------------------------------------------------------------------

LABELLED = """
import pytest

@pytest.mark.clause("EN 13757-2 5.7.3", "FCB toggles")
@pytest.mark.area("addressing")
@pytest.mark.severity("critical")
def test_fcb(measure):
    '''FCB toggling fetches the next telegram.'''
    measure("response delay", 0.01, "s", 0.0046, 0.1875)

@pytest.mark.clause("EN 13757-3 secondary addressing")
@pytest.mark.area("selection")
def test_broken():
    assert False, "no E5 to the selection"

def test_plain():
    pass
"""


def test_allure_labels_links_attachments_and_files(pytester):
    pytester.makepyfile(LABELLED)
    alluredir = pytester.path / "allure"
    result = pytester.runpytest(f"--alluredir={alluredir}")
    result.assert_outcomes(passed=2, failed=1)
    by_name = {r["name"]: r for r in _results(alluredir)}
    fcb = _labels(by_name["test_fcb"])
    assert fcb["epic"] == ["EN 13757-2"]
    assert fcb["feature"] == ["addressing"]
    assert fcb["story"] == ["FCB toggling fetches the next telegram."]
    assert fcb["severity"] == ["critical"]
    assert fcb["clause"] == ["EN 13757-2 5.7.3: FCB toggles"]
    assert not by_name["test_fcb"].get("links")  # no copy of the standard given: no link
    attachments = {a["name"] for a in by_name["test_fcb"]["attachments"]}
    assert {"measurements against their limits.svg", "measurements.json"} <= attachments
    broken = _labels(by_name["test_broken"])
    assert broken["epic"] == ["EN 13757-3"] and broken["story"] == ["broken"]
    assert "epic" not in _labels(by_name["test_plain"])
    env = (alluredir / "environment.properties").read_text()
    assert "rig=sim" in env and "mode=sim" in env and "seed=1" in env
    categories = json.loads((alluredir / "categories.json").read_text())
    assert [c["name"] for c in categories][1:] == ["Rig fault", "Timing", "Protocol violation"]


def test_summary_table_per_area_with_failing_clauses(pytester):
    pytester.makepyfile(LABELLED)
    result = pytester.runpytest()
    out = result.stdout.str()
    assert "M-Bus conformance summary" in out
    rows = {line.split()[1]: line for line in result.stdout.lines
            if line.startswith("│") and len(line.split()) > 2}
    assert "addressing" in rows and "selection" in rows
    assert "EN 13757-3 secondary addressing" in rows["selection"]
    assert "(no" in out  # the unmarked test is counted under "(no area)"


def test_summary_is_silent_without_scenarios(pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    assert "M-Bus conformance summary" not in pytester.runpytest().stdout.str()


def test_progress_lines_in_long_runs(pytester):
    pytester.makepyfile("""
        import pytest
        @pytest.mark.area("timing")
        @pytest.mark.parametrize("n", range(60))
        def test_many(n):
            assert n != 59, "the last one fails"
    """)
    result = pytester.runpytest()
    progress = [line for line in result.stdout.lines if "[mbus-rig]" in line]
    assert any("6/60 scenarios, 0 failed" in line for line in progress)
    assert len(progress) == 9  # every 10 %, not at the end
    assert any(line.split()[:4] == ["│", "timing", "│", "59"] for line in result.stdout.lines)


@pytest.mark.parametrize("extra", [[], ["-p", "mbus-rig"], ["-p", "fixtures.plugin"]])
def test_root_conftest_registers_the_plugin_with_autoload_disabled(pytester, monkeypatch, extra):
    root_conftest = Path(__file__).resolve().parent.parent / "conftest.py"
    pytester.makeconftest(root_conftest.read_text())
    pytester.makepyfile("""
        def test_reads(master, dut):
            master.req_ud2(dut.address)
    """)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest_subprocess("--rig", "sim", "-p", "no:cacheprovider", *extra)
    result.assert_outcomes(passed=1)


def test_baud_dut_runs_the_baud_scenarios_at_every_rate_the_dut_supports(pytester):
    pytester.makepyfile(test_rates="""
        def test_at(baud, dut):
            assert baud in dut.profile.bauds
    """)
    result = pytester.runpytest("--rig", "sim", "--baud", "dut", "-q")
    result.assert_outcomes(passed=3)  # the built-in heat meter: 300, 2400 and 9600 Bd


# --- recommended: what the standard only recommends ------------------------------------------

RECOMMENDED = """
import pytest

@pytest.mark.clause("EN 13757-2 link layer, SND_NKE", "SND_NKE deselects")
@pytest.mark.area("addressing")
@pytest.mark.severity("critical")
@pytest.mark.parametrize("target", [
    "demanded",
    pytest.param("optional", marks=[
        pytest.mark.severity("recommended"),
        pytest.mark.clause("IEC 60870-5-1 FT1.2 rule R4", "idle line after an error")]),
])
def test_rule(target):
    '''A demanded rule and a recommendation.'''
    assert target == "demanded", "the DUT answered the frame behind garbage"

@pytest.mark.clause("EN 13757-2 link layer, timing", "idle")
@pytest.mark.area("timing")
@pytest.mark.severity("recommended")
def test_recommended_measurement(measure):
    '''A recommended limit.'''
    measure("idle", 0.001, "s", 0.01)

@pytest.mark.area("timing")
@pytest.mark.severity("recommended")
def test_recommended_and_met():
    '''A recommendation the DUT follows.'''
"""

RIG_FAULT_IN_RECOMMENDED = """
import pytest

@pytest.mark.area("timing")
@pytest.mark.severity("recommended")
def test_rig_fell_over():
    raise RuntimeError("the relay board is gone")
"""


def test_failing_recommended_cases_are_reported_apart_and_do_not_fail_the_run(pytester):
    pytester.makepyfile(RECOMMENDED)
    alluredir = pytester.path / "allure"
    result = pytester.runpytest("--junitxml=junit.xml", f"--alluredir={alluredir}")
    assert result.ret == pytest.ExitCode.OK
    assert result.parseoutcomes() == {"passed": 2, "recommended": 2}
    out = result.stdout.str()
    assert "recommended, not met (not conformance failures; the run does not fail on them):" in out
    assert ("test_rule[optional]: recommended, not met (IEC 60870-5-1 FT1.2 rule R4; not a "
            "conformance failure): the DUT answered the frame behind garbage") in out
    assert "measurement out of limits: idle = 0.001 s" in out
    # JUnit: a skip of its own type, with the verdict property; no failure
    root = ET.parse(pytester.path / "junit.xml").getroot()
    assert not list(root.iter("failure")) and not list(root.iter("error"))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    skipped = cases["test_rule[optional]"].find("skipped")
    assert skipped is not None and skipped.get("type") == "mbus.recommended"
    assert skipped.get("message", "").startswith("recommended, not met (IEC 60870-5-1")
    props = {p.get("name"): p.get("value")
             for p in cases["test_rule[optional]"].iter("property")}
    assert props["mbus.verdict"] == "recommended, not met"
    assert props["mbus.clause"] == "IEC 60870-5-1 FT1.2 rule R4"  # the case's own clause
    assert cases["test_rule[demanded]"].find("skipped") is None
    assert cases["test_recommended_and_met"].find("skipped") is None
    # allure: not failed; tagged, in the category of its own, labelled with its own clause
    by_name = {r["name"]: r for r in _results(alluredir)}
    optional = by_name["test_rule[optional]"]
    assert optional["status"] == "skipped"
    labels = _labels(optional)
    assert {"recommended", "recommended, not met"} <= set(labels["tag"])
    assert labels["severity"] == ["trivial"]
    assert labels["clause"] == ["IEC 60870-5-1 FT1.2 rule R4: idle line after an error"]
    categories = json.loads((alluredir / "categories.json").read_text())
    first = categories[0]
    assert first["name"].startswith("Recommended, not met")
    assert re.match(first["messageRegex"], optional["statusDetails"]["message"])
    assert by_name["test_rule[demanded]"]["status"] == "passed"
    assert "tag" not in _labels(by_name["test_rule[demanded]"])


def test_a_rig_fault_in_a_recommended_case_stays_an_error(pytester):
    pytester.makepyfile(RIG_FAULT_IN_RECOMMENDED)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*RuntimeError: the relay board is gone*"])


def test_recommended_cases_under_xdist(pytester):
    pytester.makepyfile(RECOMMENDED)
    result = pytester.runpytest_subprocess("-n", "2", "--junitxml=junit.xml",
                                           "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-2000:]
    root = ET.parse(pytester.path / "junit.xml").getroot()
    types = sorted(s.get("type") for s in root.iter("skipped"))
    assert types == ["mbus.recommended", "mbus.recommended"]
    assert "recommended, not met (not conformance failures" in result.stdout.str()
