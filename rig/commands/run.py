"""``mbus-rig run``: check the rig, run the conformance suite (the installed ``tests_hil``
package) and write the reports.

Every option is checked before pytest starts (a wrong rig file, DUT, rate, defect, area,
severity, clause or ``-k`` is one line, exit 2), then the rig itself (rig.preflight: GPIO,
DUT programs, master port, agents): a rig fault is one line, exit 2, and nothing is run or
written. Then pytest runs and writes DIR/allure-results and DIR/junit.xml; DIR/report.html
is built with Allure 3 (skipped with a hint when the Allure CLI is missing), next to
DIR/history.jsonl (the runs before, for the report's history). The exit status
is then pytest's: 0 all passed, 1 some failed, 2 interrupted, 5 nothing collected.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from protocol.errors import ConfigError, HardwareError
from rig import suite
from rig.cli import HelpWithExamples, examples
from rig.config import RigConfig, load_config
from rig.defects import check_defects, defects_for, dut_role
from rig.preflight import check_rig
from rig.report import ALLURE_HINT, find_allure, generate_html
from rig.safety import run_stop_bound
from rig.selection import BAUD_SPEC_HELP, ScenarioSelection, parse_bauds
from rig.standard_link import template_problem
from rig.tools.output import print_table

PYTEST_HINT = "pytest options go after --, e.g. mbus-rig run -- -x --maxfail 3"


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a seed (allowed: 0 to 2**63-1)") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"{value} is out of range (allowed: 0 to 2**63-1)")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "run", help="check the rig, run the conformance suite, write the reports",
        formatter_class=HelpWithExamples,
        description="Check the rig (GPIO backend, DUT programs, master port, agents), run the "
                    "M-Bus conformance suite against it and write DIR/allure-results, "
                    "DIR/junit.xml and DIR/report.html. Every option is checked before "
                    "anything starts; a wrong option or a rig fault is one line and exit "
                    "status 2, with no scenario run and no report written. Arguments after "
                    "-- go to pytest.",
        epilog=examples(
            "mbus-rig run                                     # built-in simulated rig",
            "mbus-rig run --rig rig/examples/two-pi.toml --baud 2400,9600 --report out",
            "mbus-rig run --rig tests_hil/rigs/conformant.toml --defect ignores_fcb",
            "mbus-rig run --area addressing --severity critical",
            "mbus-rig run --clause FCB -k 'not noise'",
            "mbus-rig run --list-scenarios --area timing",
            "mbus-rig run --list-defects",
            "mbus-rig run -- -n 2 -x                          # pytest options after --"))
    parser.add_argument("--rig", default="sim", metavar="sim|FILE",
                        help="the rig: 'sim' (built-in simulated rig, default) or a rig file")
    parser.add_argument("--report", default="mbus-report", metavar="DIR", type=Path,
                        help="where the reports go (default: ./mbus-report)")
    parser.add_argument("--dut", default=None, metavar="NAME",
                        help="which DUT of the rig file to test (default: the first)")
    parser.add_argument("--baud", default="dut", metavar="B[,B...]|all|dut",
                        help=f"rates for the baud-dependent scenarios: {BAUD_SPEC_HELP} "
                             "(default: dut)")
    parser.add_argument("--seed", type=_seed, default=None, metavar="N",
                        help="seed of the simulated bus (default: the rig file's, else 1)")
    parser.add_argument("--defect", action="append", default=[], metavar="NAME",
                        help="switch a named defect on in the emulated DUT (repeatable); "
                             "the suite must catch it (--list-defects names them)")
    select = parser.add_argument_group("choosing scenarios (combined with AND)")
    select.add_argument("--area", action="append", default=[], metavar="NAME",
                        help="only this area's scenarios (repeatable, or a comma list)")
    select.add_argument("--severity", action="append", default=[], metavar="LEVEL",
                        help="only scenarios of this severity (repeatable, or a comma list)")
    select.add_argument("--clause", action="append", default=[], metavar="TEXT",
                        help="only scenarios whose clause contains TEXT, e.g. 'EN 13757-3' "
                             "or FCB (repeatable)")
    select.add_argument("-k", dest="keyword", default=None, metavar="EXPR",
                        help="only scenarios whose name matches EXPR (pytest's -k)")
    listing = parser.add_argument_group("listing (nothing is run)")
    listing.add_argument("--list-scenarios", action="store_true",
                         help="list the scenarios the options choose, with area, severity "
                              "and clause")
    listing.add_argument("--list-defects", action="store_true",
                         help="list the defects --defect can switch on in this rig's DUT")
    parser.add_argument("--standard-url", default=None, metavar="URL",
                        help="link each clause in the report to your copy of the standard, "
                             "e.g. file:///srv/std/EN{part}.pdf#page={page} (placeholders "
                             "{part}, {page}, {clause}, {topic}; default: the rig file's "
                             "[report] standard_url)")
    parser.add_argument("--no-html", action="store_true",
                        help="skip the HTML report (allure results and JUnit XML only)")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER, metavar="-- PYTEST ARGS",
                        help="passed to pytest")
    parser.set_defaults(handler=run, unknown_hint=PYTEST_HINT)


def suite_path() -> Path:
    """Where the installed conformance suite (package ``tests_hil``) lives."""
    import tests_hil

    return Path(tests_hil.__file__).resolve().parent


def _plugin_args() -> list[str]:
    """With PYTEST_DISABLE_PLUGIN_AUTOLOAD, load the plugins the run needs by hand."""
    if not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return []
    installed = {ep.name for ep in importlib.metadata.entry_points(group="pytest11")}
    args = ["-p", "mbus-rig" if "mbus-rig" in installed else "fixtures.plugin",
            "-p", "allure_pytest.plugin"]
    if "xdist" in installed:
        args += ["-p", "xdist.plugin"]
    return args


def suite_options(args: argparse.Namespace) -> list[str]:
    """The run's own options as the pytest plugin takes them."""
    out: list[str] = []
    for flag, value in (("--dut", args.dut), ("--seed", args.seed), ("-k", args.keyword),
                        ("--standard-url", args.standard_url)):
        if value is not None:
            out += [flag, str(value)]
    for flag, values in (("--defect", args.defect), ("--area", args.area),
                         ("--severity", args.severity), ("--clause", args.clause)):
        for value in values:
            out += [flag, value]
    return out


def pytest_command(rig: str, report: Path, extra: list[str], baud: str = "dut") -> list[str]:
    report = report.resolve()
    return [sys.executable, "-m", "pytest", str(suite_path()), "--rig", rig, "--baud", baud,
            f"--alluredir={report / 'allure-results'}", "--clean-alluredir",
            f"--junitxml={report / 'junit.xml'}", *_plugin_args(), *extra]


def _pytest_args(args: argparse.Namespace) -> list[str]:
    """What follows ``--``; anything else left over is a usage error with the hint."""
    extra = list(args.pytest_args)
    if extra and extra[0] != "--":
        raise ConfigError(f"unexpected argument {extra[0]!r}; {PYTEST_HINT}")
    return extra[1:]


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What the checked options say: the rig (``sim`` or the rig file's absolute path, as
    pytest gets it), its config with --seed and --defect applied, the rates covered."""

    rig: str
    config: RigConfig
    bauds: tuple[int, ...]


def check_options(args: argparse.Namespace) -> RunPlan:
    """Every option against the rig file and the suite, before anything starts."""
    rig = str(args.rig) if str(args.rig) == "sim" else str(Path(args.rig).resolve())
    config = _configured(rig, args)
    dut = config.dut(args.dut)
    bauds = parse_bauds(args.baud, config.master.baud, dut.supported_bauds)
    check_defects(config, args.dut, args.defect)
    if args.standard_url is not None and template_problem(args.standard_url):
        raise ConfigError(f"--standard-url: {template_problem(args.standard_url)}")
    suite.check_options(_selection(args), args.keyword, suite_scenarios(dut_role(dut)))
    report: Path = args.report
    if report.exists() and not report.is_dir():
        raise ConfigError(f"--report {report}: is a file, not a folder (give a folder for "
                          "the reports)")
    return RunPlan(rig, config, tuple(bauds))


def _configured(rig: str, args: argparse.Namespace) -> RigConfig:
    """The rig's config with --seed and --defect applied."""
    return load_config(rig).with_overrides(seed=args.seed, defects=frozenset(args.defect))


def suite_scenarios(role: str = "slave") -> list[suite.SuiteScenario]:
    """The scenarios of the suite that runs for a DUT of ``role`` (tests may point both at
    another suite)."""
    return suite.scenarios(role)


def _selection(args: argparse.Namespace) -> ScenarioSelection:
    return ScenarioSelection.from_options(args.area, args.severity, args.clause)


def list_scenarios(args: argparse.Namespace, role: str = "slave") -> int:
    every = suite_scenarios(role)
    chosen = [s for s in every if s.selected(_selection(args), args.keyword)]
    print_table(("scenario", "area", "severity", "clause", "needs"),
                [(s.node, s.area, ", ".join(s.severities), s.clause, ", ".join(s.needs) or "-")
                 for s in chosen])
    print(f"{len(chosen)} of {len(every)} scenarios (each runs once per rate where it "
          "depends on the rate)")
    return 0


def list_defects(config: RigConfig, dut_name: str | None) -> int:
    dut = config.dut(dut_name)
    role = dut_role(dut)
    catalogue = defects_for(role)
    print_table(("defect", "what the defective DUT does"), sorted(catalogue.items()),
                title=f"defects of an emulated {role} (mbus-rig run --defect NAME)")
    if not any(d.kind == "emulated" for d in config.duts):
        print(f"note: rig {config.name!r} has no emulated DUT to switch them on in "
              "(e.g. --rig sim)")
    return 0


def run(args: argparse.Namespace) -> int:
    extra = _pytest_args(args)
    plan = check_options(args)
    if args.list_scenarios:
        return list_scenarios(args, dut_role(plan.config.dut(args.dut)))
    if args.list_defects:
        return list_defects(plan.config, args.dut)
    report: Path = args.report
    if plan.config.labgrid is not None:
        _report_folder(report)  # the rig file resolved for the place is written there
    from rig.farm.hold import farm_rig  # a [labgrid] rig: its place is held around pytest

    with farm_rig(plan.config, plan.rig, report, _say) as suite_rig:
        # the rig check runs on the rig pytest gets: for a farm place, the resolved file
        config = (plan.config if suite_rig.rig == plan.rig
                  else _configured(suite_rig.rig, args))
        checked = check_rig(config, args.dut)
        print(f"mbus-rig run: rig check passed ({len(checked)} checks; mbus-rig rig check "
              "lists them)")
        _report_folder(report)
        status = _run_pytest(pytest_command(suite_rig.rig, report,
                                            suite_options(args) + extra, args.baud),
                             suite_rig.run_started)
    return _report(report, status, html=not args.no_html)


def _report_folder(report: Path) -> None:
    """``--report`` made (an earlier run's JUnit file removed); a usage error if it cannot."""
    try:
        report.mkdir(parents=True, exist_ok=True)
        (report / "junit.xml").unlink(missing_ok=True)  # never name an earlier run's file
    except OSError as exc:
        raise ConfigError(f"--report {report}: cannot write there ({exc.strerror})") from None


def _say(text: str) -> None:
    print(f"mbus-rig run: {text}", flush=True)


def _report(report: Path, status: int, *, html: bool) -> int:
    """Name what this run wrote; build the HTML report from the allure results."""
    junit = report / "junit.xml"
    results = report / "allure-results"
    wrote_results = results.is_dir() and any(results.glob("*-result.json"))
    if junit.exists():
        print(f"mbus-rig run: JUnit XML: {junit}")
    if wrote_results:
        print(f"mbus-rig run: allure results: {results}")
    if not html:
        return status
    if not wrote_results:
        print("mbus-rig run: HTML report skipped: no scenario results were written",
              file=sys.stderr)
        return status
    allure = find_allure()
    if allure is None:
        print(f"mbus-rig run: HTML report skipped: the Allure 3 CLI was not found; "
              f"{ALLURE_HINT}", file=sys.stderr)
        return status
    try:
        page = generate_html(results, report / "report.html", allure=allure)
    except HardwareError as exc:
        print(f"mbus-rig run: HTML report failed: {exc}", file=sys.stderr)
        return status
    print(f"mbus-rig run: HTML report: {page}")
    return status


def _run_pytest(cmd: list[str], started: Callable[[int], None]) -> int:
    """Run pytest (``started`` is told its pid); a SIGTERM/SIGINT to us is passed on, and
    pytest gets a bounded time to put the rig in safe state before it is killed."""
    proc = subprocess.Popen(cmd)
    try:
        started(proc.pid)
    except BaseException:
        proc.terminate()
        proc.wait(run_stop_bound())
        raise
    previous: dict[signal.Signals, Any] = {}

    def forward(signum: int, frame: FrameType | None) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, forward)
    try:
        return proc.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if proc.poll() is None:
            try:
                proc.wait(run_stop_bound())
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
