"""``mbus-rig run`` as the whole front end: every option and the rig itself are checked
before pytest starts; a problem is one line and exit 2, with no scenario run and no report
written (issue 12 point 3; issue 10 "Rig faults are not DUT failures")."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig import cli, defects
from rig.commands import run as run_command
from rig.config import load_config
from rig.selection import ScenarioSelection

pytest_plugins = ["pytester"]


def call(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def no_pytest(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run must end before pytest would start."""

    def refuse(cmd: list[str]) -> int:
        raise AssertionError(f"pytest was started: {cmd}")

    monkeypatch.setattr(run_command, "_run_pytest", refuse)


@pytest.fixture(autouse=True)
def lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MBUS_RIG_LOCK_DIR", str(tmp_path / "locks"))
    (tmp_path / "locks").mkdir()


def assert_refused(code: int, out: str, err: str, *words: str) -> None:
    """Exit 2, one line on stderr naming the problem, nothing claimed on stdout."""
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert "junit" not in (out + err).lower()


# --- options checked before pytest ----------------------------------------------------------


@pytest.mark.parametrize("argv, words", [
    (["--baud", "1234"], ["--baud 1234", "not an M-Bus baud rate", "300"]),
    (["--defect", "nope"], ["--defect nope", "unknown defect", "ignores_fcb"]),
    (["--dut", "nobody"], ["no DUT named 'nobody'", "meter"]),
    (["--area", "nowhere"], ["--area 'nowhere'", "addressing", "timing"]),
    (["--severity", "huge"], ["--severity 'huge'", "critical"]),
    (["--severity", "critical,huge"], ["--severity 'huge'"]),
    (["--clause", "no such clause"], ["--clause 'no such clause'", "--list-scenarios"]),
    (["-k", "fcb and"], ["-k 'fcb and'", "not a keyword expression"]),
    (["--seed", "-1"], ["--seed", "out of range"]),
    (["--seed", "x"], ["--seed", "not a seed"]),
    (["--bogus"], ["--bogus", "pytest options go after --"]),
    (["stray"], ["'stray'", "pytest options go after --"]),
])
def test_a_wrong_option_is_one_line_and_exit_2_before_pytest(
        capsys, no_pytest, tmp_path, argv, words):
    report = tmp_path / "report"
    code, out, err = call(capsys, "run", "--report", str(report), *argv)
    assert_refused(code, out, err, *words)
    assert not report.exists()


def test_a_report_path_that_is_a_file_is_refused_before_pytest(capsys, no_pytest, tmp_path):
    taken = tmp_path / "report"
    taken.write_text("not a folder")
    code, out, err = call(capsys, "run", "--report", str(taken))
    assert_refused(code, out, err, f"--report {taken}: is a file, not a folder")


@pytest.mark.parametrize("text, words", [
    ("", ["no [[dut]]"]),
    ("   \n# only a comment\n", ["no [[dut]]"]),
    ("[master\nport = 1", ["invalid TOML", "line 1"]),
    ("[master]\nbaud = 1234\n", ["master.baud: 1234 is not an M-Bus baud rate"]),
])
def test_an_empty_or_broken_rig_file_is_one_line_and_exit_2(capsys, no_pytest, tmp_path,
                                                            text, words):
    rig = tmp_path / "rig.toml"
    rig.write_text(text)
    code, out, err = call(capsys, "run", "--rig", str(rig), "--report", str(tmp_path / "r"))
    assert_refused(code, out, err, str(rig), *words)


def test_defect_on_a_rig_without_an_emulated_dut(capsys, no_pytest, tmp_path):
    rig = tmp_path / "rig.toml"
    rig.write_text(program_rig(["no-such-program-mbus-rig", "{tty}"]))
    code, out, err = call(capsys, "run", "--rig", str(rig), "--defect", "ignores_fcb")
    assert_refused(code, out, err, "--defect needs an emulated DUT")


def test_defects_come_from_the_role_registry(monkeypatch):
    """A new kind of DUT adds its defects with one register call (the master suite)."""
    monkeypatch.setattr(defects, "_CATALOGUES", dict(defects._CATALOGUES))
    defects.register("master", lambda: {"ignores_e5": "does not wait for the E5"})
    assert defects.defects_for("master") == {"ignores_e5": "does not wait for the E5"}
    assert "ignores_fcb" in defects.defects_for(defects.SLAVE)
    assert defects.defects_for("nobody") == {}
    config = load_config("sim")
    monkeypatch.setattr(defects, "dut_role", lambda dut: "master")
    defects.check_defects(config, None, ["ignores_e5"])
    with pytest.raises(Exception, match="unknown defect of a master DUT"):
        defects.check_defects(config, None, ["ignores_fcb"])


def test_list_defects_lists_every_defect_of_the_registry(capsys, no_pytest):
    code, out, err = call(capsys, "run", "--list-defects")
    assert (code, err) == (0, "")
    for name, what in defects.defects_for(defects.SLAVE).items():
        assert name in out and what[:40] in out


def test_list_scenarios_shows_what_the_selection_chooses(capsys, no_pytest):
    code, out, err = call(capsys, "run", "--list-scenarios", "--area", "timing",
                          "--severity", "critical")
    assert (code, err) == (0, "")
    rows = [line for line in out.splitlines() if "::" in line]
    assert rows and all(" timing " in row and " critical " in row for row in rows)
    assert out.strip().splitlines()[-1].startswith(f"{len(rows)} of ")
    code, out, _ = call(capsys, "run", "--list-scenarios", "-k", "fcb and not nke",
                        "--clause", "FCB/FCV")
    rows = [line for line in out.splitlines() if "::" in line]
    assert rows and all("fcb" in row.split()[0].lower() and "nke" not in row for row in rows)


def test_selection_matches_markers():
    chosen = ScenarioSelection.from_options(["addressing,timing"], ["critical"], ["fcb"])
    assert chosen.matches("timing", "critical", ["EN 13757-2 link layer, FCB/FCV repeat"])
    assert not chosen.matches("fcb", "critical", ["EN 13757-2 link layer, FCB/FCV"])
    assert not chosen.matches("timing", "normal", ["EN 13757-2 FCB"])
    assert not chosen.matches("timing", "critical", ["EN 13757-2 link layer, timing"])
    assert ScenarioSelection().matches(None, None, [])
    assert not ScenarioSelection()


def test_a_scenario_is_listed_for_the_severity_and_clause_of_any_of_its_cases():
    from rig.suite import SuiteScenario

    gap = SuiteScenario("test_frame_errors.py::test_gap", "frame errors", "critical",
                        "EN 13757-2 FT1.2, frame checks", "discarded", (),
                        (("recommended", "IEC 60870-5-1 FT1.2 transmission rules idle"),))
    assert gap.severities == ["critical", "recommended"]
    for severities, clauses, chosen in [(["recommended"], [], True), (["critical"], [], True),
                                        (["minor"], [], False),
                                        (["recommended"], ["transmission rules"], True),
                                        (["critical"], ["transmission rules"], False)]:
        selection = ScenarioSelection.from_options([], severities, clauses)
        assert gap.selected(selection) is chosen, (severities, clauses)


# --- the run passes its options to pytest and names only what it wrote --------------------

SUITE = '''
import pytest

@pytest.mark.clause("EN 13757-2 link layer, A field", "answers at its primary address")
@pytest.mark.area("addressing")
@pytest.mark.severity("critical")
def test_primary(master, dut):
    """REQ_UD2 at the primary address is answered."""
    master.req_ud2(dut.address)

@pytest.mark.clause("EN 13757-2 link layer, timing", "answer window")
@pytest.mark.area("timing")
@pytest.mark.severity("normal")
def test_timing(master, dut):
    """An answer comes."""
    master.snd_nke(dut.address)

@pytest.mark.clause("EN 13757-2 link layer, FCB/FCV", "repeat")
@pytest.mark.area("fcb")
@pytest.mark.severity("critical")
def test_fcb(rig):
    """The seed and defect reach the rig."""
    assert rig.config.bus.seed == 7
    assert "ignores_fcb" in rig.dut.control.identity()["defects"]
'''


@pytest.fixture
def demo_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "test_demo.py").write_text(SUITE)
    monkeypatch.setattr(run_command, "suite_path", lambda: folder)
    from rig.suite import SuiteScenario

    demo = [SuiteScenario("test_demo.py::test_primary", "addressing", "critical",
                          "EN 13757-2 link layer, A field", "answers at its primary address",
                          ("primary",)),
            SuiteScenario("test_demo.py::test_timing", "timing", "normal",
                          "EN 13757-2 link layer, timing", "answer window", (),
                          (("recommended", "IEC 60870-5-1 FT1.2 idle"),)),
            SuiteScenario("test_demo.py::test_fcb", "fcb", "critical",
                          "EN 13757-2 link layer, FCB/FCV", "repeat", ())]
    monkeypatch.setattr(run_command, "suite_scenarios", lambda *_role: demo)
    return folder


def _ran(report: Path) -> set[str]:
    import xml.etree.ElementTree as ET

    root = ET.parse(report / "junit.xml").getroot()
    return {case.get("name", "") for case in root.iter("testcase")
            if case.find("skipped") is None}


@pytest.mark.parametrize("argv, ran", [
    (["--area", "addressing"], {"test_primary"}),
    (["--severity", "critical", "--seed", "7", "--defect", "ignores_fcb"],
     {"test_primary", "test_fcb"}),
    (["--clause", "timing"], {"test_timing"}),
    (["-k", "primary or timing"], {"test_primary", "test_timing"}),
])
def test_run_options_choose_the_scenarios(capsys, tmp_path, demo_suite, argv, ran):
    report = tmp_path / "report"
    code, out, _ = call(capsys, "run", "--report", str(report), "--no-html", *argv,
                        "--", "-p", "no:cacheprovider")
    assert code == 0, out
    assert _ran(report) == ran


def test_a_pytest_usage_error_never_names_a_junit_xml(capsys, tmp_path, demo_suite):
    report = tmp_path / "report"
    report.mkdir()
    (report / "junit.xml").write_text("<testsuites/>")  # an earlier run's
    code, out, err = call(capsys, "run", "--report", str(report), "--no-html",
                          "--", "--no-such-pytest-option")
    assert code == pytest.ExitCode.USAGE_ERROR
    assert "junit" not in out.lower() and not (report / "junit.xml").exists()


# --- the rig check: every rig fault is one line and exit 2, nothing run or written ---------


def program_rig(argv: list[str]) -> str:
    command = ", ".join(f'"{a}"' for a in argv)
    return f"""
name = "program"
[bus]
kind = "sim"
[[dut]]
name = "slave"
kind = "program"
address = 1
features = ["primary"]
command = [{command}]
"""


def real_rig(port: str = "loop://", lines: str = "", backend: str = "rpi",
             dut: str = '[[dut]]\nname = "meter"\nkind = "black-box"\naddress = 1\n') -> str:
    return f"""
name = "bench"
[master]
port = "{port}"
[bus]
kind = "real"
[gpio]
backend = "{backend}"
{lines}
{dut}
"""


POWER_LINE = '[[gpio.lines]]\nrole = "bus_power_cut"\npin = 17\n'


@pytest.fixture
def no_rpi_gpio(monkeypatch: pytest.MonkeyPatch) -> None:
    """RPi.GPIO cannot be imported (as on a PC without it)."""
    monkeypatch.setitem(sys.modules, "RPi", None)
    monkeypatch.setitem(sys.modules, "RPi.GPIO", None)


@pytest.fixture
def silent_agent() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        yield server.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def agent_dut(port: int, tmp_path: Path) -> str:
    (tmp_path / "agent.token").write_text("0123456789abcdef0123\n")
    return (f'[[dut]]\nname = "slave-pi"\nkind = "agent"\naddress = 1\n'
            f'url = "http://127.0.0.1:{port}"\ntoken_file = "agent.token"\n')


RIG_FAULTS = {
    "no GPIO backend": (lambda tmp: real_rig(lines=POWER_LINE),
                        ["GPIO backend 'rpi'", "RPi.GPIO"]),
    "auto finds no GPIO on a real bus": (lambda tmp: real_rig(lines=POWER_LINE, backend="auto"),
                                         ["GPIO backend 'rpi'"]),
    "program exits at once": (lambda tmp: program_rig(
        [sys.executable, "-c", "import sys; print('no meter here'); sys.exit(3)", "{tty}"]),
        ["DUT slave", "exited while starting (status 3)", "no meter here"]),
    "program not found": (lambda tmp: program_rig(["no-such-program-mbus-rig", "{tty}"]),
                          ["DUT slave", "cannot start 'no-such-program-mbus-rig'"]),
    "port does not exist": (lambda tmp: real_rig(port="/dev/ttyNOSUCH-mbus-rig"),
                            ["/dev/ttyNOSUCH-mbus-rig", "no such port"]),
    "agent refuses": (lambda tmp: real_rig(dut=agent_dut(_free_port(), tmp)),
                      ["DUT slave-pi: the agent does not answer", "connection refused"]),
}


@pytest.mark.parametrize("fault", list(RIG_FAULTS))
def test_a_rig_fault_stops_the_run_before_pytest(capsys, no_pytest, no_rpi_gpio, tmp_path,
                                                 fault):
    make, words = RIG_FAULTS[fault]
    rig = tmp_path / "rig.toml"
    rig.write_text(make(tmp_path))
    report = tmp_path / "report"
    code, out, err = call(capsys, "run", "--rig", str(rig), "--report", str(report))
    assert_refused(code, out, err, *words)
    assert not report.exists()  # no junit.xml, no allure results claiming failed clauses
    code, out, err = call(capsys, "rig", "check", str(rig))
    assert_refused(code, out, err, *words)


def test_an_agent_that_never_answers_is_a_rig_fault_within_its_timeout(
        capsys, no_pytest, tmp_path, silent_agent):
    rig = tmp_path / "rig.toml"
    rig.write_text(real_rig(dut=agent_dut(silent_agent, tmp_path)))
    code, out, err = call(capsys, "rig", "check", str(rig))
    assert_refused(code, out, err, "the agent does not answer", "no reply within")


def test_a_rig_without_fault_lines_needs_no_gpio_backend(capsys, no_rpi_gpio, tmp_path):
    rig = tmp_path / "rig.toml"
    rig.write_text(real_rig())  # backend "rpi", but no line to drive
    code, out, err = call(capsys, "rig", "check", str(rig))
    assert (code, err) == (0, "")
    assert "GPIO: no fault lines" in out and "master port: loop:// opened" in out
    assert out.strip().splitlines()[-1] == f"rig check passed: {rig}"


def test_safe_state_of_a_rig_without_fault_lines_needs_no_gpio_backend(capsys, no_rpi_gpio,
                                                                        tmp_path):
    rig = tmp_path / "rig.toml"
    rig.write_text(real_rig())
    code, out, err = call(capsys, "safe-state", "--rig", str(rig))
    assert (code, err) == (0, "")
    assert "no lines" in out


def test_rig_check_says_what_it_checked(capsys, tmp_path):
    rig = tmp_path / "rig.toml"
    rig.write_text(program_rig([sys.executable, "-c",
                                "import time, sys; time.sleep(30)", "{tty}"]))
    code, out, err = call(capsys, "rig", "check", str(rig))
    assert (code, err) == (0, "")
    assert "GPIO: no fault lines" in out
    assert "DUT slave: program started" in out and "still running after" in out
    assert "master port: mbussim://sim opened at 2400 Bd" in out
    code, out, err = call(capsys, "rig", "check", "sim")
    assert code == 0 and "GPIO: backend 'sim' opened for 5 fault lines" in out
    assert "DUT meter: emulated meter" in out


# --- --version, help ----------------------------------------------------------------------


def _parsers() -> Iterator[tuple[list[str], object]]:
    def walk(path: list[str], parser) -> Iterator[tuple[list[str], object]]:
        yield path, parser
        for name, sub in cli.subcommand_parsers(parser).items():
            yield from walk([*path, name], sub)

    yield from walk([], cli.build_parser())


def test_version_on_mbus_rig_and_every_subcommand(capsys):
    seen = 0
    for path, _parser in _parsers():
        code, out, err = call(capsys, *path, "--version")
        assert (code, err) == (0, ""), path
        assert out.strip() == cli.version() and out.startswith("mbus-rig "), path
        seen += 1
    assert seen >= 15  # mbus-rig, its commands, rig check


def test_help_is_plain_text_with_examples():
    for path, parser in _parsers():
        text = parser.format_help()  # type: ignore[attr-defined]
        assert "``" not in text and ":class:`" not in text, path
        if not cli.subcommand_parsers(parser) or not path:
            assert "examples:\n  mbus-rig" in text, path
