"""The plugin's rig fixtures on the built-in simulated rig: rig, master, dut, baud, faults,
bus_trace, sim_population; traces and steps in the allure results; xdist."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent


def _results(alluredir: Path) -> dict[str, dict]:
    return {r["name"]: r for r in (json.loads(p.read_text())
                                   for p in alluredir.glob("*-result.json"))}


def _steps(result: dict) -> list[str]:
    return [s["name"] for s in result.get("steps", [])]


FIXTURES = """
import pytest

def test_read(master, dut, bus_trace, rig):
    reply = master.req_ud2(dut.address)
    assert reply.telegram.header.id == dut.secondary.id
    frames = bus_trace.frames()
    assert [f.direction for f in frames] == ["M>S", "S>M"]
    assert rig.mode == "sim" and rig.dut is dut

def test_fault_is_on_during_the_test(master, dut, faults):
    faults.inject("power_cut")
    assert faults.active == ["bus power cut"]
    with pytest.raises(Exception, match="no answer"):
        master.req_ud2(dut.address)

def test_fault_was_cleared_after_the_test(master, dut, rig):
    assert rig.faults.active == []
    master.clock.sleep(1.0)  # the slave's power-up time after the cut
    master.req_ud2(dut.address)

def test_dut_fault_armed(master, dut):
    dut.control.arm("silence", 5)
    with pytest.raises(Exception, match="no answer"):
        master.req_ud2(dut.address)

def test_dut_fault_disarmed_after_the_test(master, dut):
    master.req_ud2(dut.address)

def test_population(master, dut, sim_population):
    from protocol.identity import SecondaryAddress
    [extra] = sim_population.add([SecondaryAddress(11111111, 0x2C2D, 1, 4)], address=9)
    assert master.req_ud2(9).telegram.header.id == 11111111

def test_population_gone(master, rig):
    assert len(rig.bus.slaves) == 1
    with pytest.raises(Exception, match="no answer"):
        master.req_ud2(9)
"""


def test_rig_fixtures_on_the_simulated_rig(pytester):
    pytester.makepyfile(FIXTURES)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=7)


BAUDS = """
def test_at_rate(master, dut, baud, rig):
    assert master.baud == baud
    assert rig.dut.extra["endpoint"].baud == baud
    assert master.req_ud2(dut.address).exchange.baud == baud

def test_default_rate_afterwards(master, dut):
    assert master.baud == 2400
    master.req_ud2(dut.address)
"""


def test_baud_parametrisation_and_unsupported_rates_skip(pytester):
    pytester.makepyfile(BAUDS)
    result = pytester.runpytest("--baud", "all", "-rs", "-v")
    # the built-in heat meter supports 300, 2400 and 9600
    result.assert_outcomes(passed=4, skipped=5)
    result.stdout.fnmatch_lines(["*test_at_rate?300Bd? PASSED*", "*test_at_rate?9600Bd? PASSED*",
                                 "*DUT meter does not support 38400 Bd*"])


FAILING = """
import pytest

@pytest.mark.area("addressing")
@pytest.mark.clause("EN 13757-2 link layer", "answers at its address")
def test_fails(master, dut):
    master.snd_nke(dut.address)
    master.req_ud2(dut.address)
    assert False, "the DUT said something wrong"

def test_passes(master, dut):
    master.req_ud2(dut.address)
"""


@pytest.mark.parametrize("always", [False, True])
def test_trace_and_steps_in_allure_results(pytester, always):
    pytester.makepyfile(FAILING)
    alluredir = pytester.path / "allure"
    args = [f"--alluredir={alluredir}"] + (["--trace-always"] if always else [])
    pytester.runpytest(*args).assert_outcomes(passed=1, failed=1)
    results = _results(alluredir)
    failed, passed = results["test_fails"], results["test_passes"]
    steps = _steps(failed)
    assert steps[0].startswith("SND_NKE A=5 @ 2400 Bd -> E5")
    assert steps[1].startswith("REQ_UD2 A=5") and "-> RSP_UD A=5 CI=72" in steps[1]
    params = {p["name"]: p["value"] for p in failed["steps"][0]["parameters"]}
    assert params["request"] == "10 40 05 45 16" and params["answer"] == "E5"
    names = {a["name"]: a for a in failed["attachments"]}
    assert {"bus trace", "bus trace.json"} <= set(names)
    table = (alluredir / names["bus trace"]["source"]).read_text()
    assert "M>S" in table and "S>M" in table
    trace = json.loads((alluredir / names["bus trace.json"]["source"]).read_text())
    assert {e["direction"] for e in trace} == {"M>S", "S>M"}
    assert all(e["time"] >= 0 for e in trace)
    passed_names = {a["name"] for a in passed.get("attachments", [])}
    assert ("bus trace" in passed_names) is always
    env = (alluredir / "environment.properties").read_text()
    assert "dut.identity=secondary\\=" in env


def test_defect_option_switches_the_defect_on(pytester):
    pytester.makepyfile("""
        def test_identity(rig):
            assert "ignores_fcb" in rig.dut_identity()
    """)
    pytester.runpytest("--defect", "ignores_fcb").assert_outcomes(passed=1)
    result = pytester.runpytest("--defect", "explodes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--defect explodes: unknown defect" in result.stderr.str()


def test_seed_reaches_the_simulation(pytester):
    pytester.makepyfile("""
        def test_seed(rig):
            assert rig.config.bus.seed == 77
    """)
    pytester.runpytest("--seed", "77").assert_outcomes(passed=1)


def test_xdist_two_workers_each_with_its_own_bus(pytester):
    pytester.makepyfile(FIXTURES)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider",
                                           "--junitxml=junit.xml")
    result.assert_outcomes(passed=7)
    root = ET.parse(pytester.path / "junit.xml").getroot()
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["rig"] == "sim" and props["seed"] == "1"  # the controller's LogXML has them


def test_rig_that_cannot_be_built_is_one_clear_error(pytester):
    pytester.makefile(".toml", broken='''
        [[dut]]
        name = "agent"
        kind = "agent"
        url = "http://127.0.0.1:9"
        token_file = "missing.token"
        command = ["true", "{tty}"]
    ''')
    pytester.makepyfile("def test_x(rig):\n    pass\n")
    result = pytester.runpytest("--rig", "broken.toml")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*rig 'broken' (broken.toml) could not be set up: *"
                                 "missing.token*"])
    assert "Traceback" not in result.stdout.str()


def test_hardware_rig_refuses_xdist(pytester):
    rig = ROOT / "rig" / "examples" / "two-pi.toml"
    pytester.makepyfile("def test_x(rig):\n    pass\n")
    result = pytester.runpytest_subprocess("-n", "2", "--rig", str(rig))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "run it without -n" in result.stderr.str()


def test_installed_names_resolve_to_this_project():
    """PyPI has a ``fixtures`` package: the names we import and the entry point must be ours."""
    import importlib.metadata

    import fixtures
    import fixtures.plugin
    import protocol
    import rig

    for module in (fixtures, protocol, rig):
        assert Path(module.__file__).resolve().parent.parent == ROOT, module
    [ep] = [ep for ep in importlib.metadata.entry_points(group="pytest11") if ep.name == "mbus-rig"]
    assert ep.value == "fixtures.plugin"
    assert ep.dist is not None and ep.dist.name == "mbus-rig"
    assert ep.load() is fixtures.plugin
    out = subprocess.run([sys.executable, "-m", "pytest", "--version", "--version"], cwd="/",
                         capture_output=True, text=True, timeout=60)
    assert "mbus-rig" in out.stdout + out.stderr
