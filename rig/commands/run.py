"""``mbus-rig run [--rig sim|FILE] [--report DIR] [-- PYTEST ARGS]``: run the conformance
suite (the installed ``tests_hil`` package) and write the reports.

DIR/allure-results (allure-pytest), DIR/junit.xml (with the rig's properties) and
DIR/report.html (one self-contained file, built with Allure 3; skipped with a hint when the
Allure CLI is missing). The exit status is pytest's: 0 all passed, 1 some failed, 2
interrupted, 5 nothing collected.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from protocol.errors import HardwareError
from rig.config import load_config
from rig.report import ALLURE_HINT, find_allure, generate_html

#: How long pytest gets to wind down (safe state, reports) after we pass a signal on.
CHILD_STOP_BOUND_S = 6.0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "run", help="run the conformance suite; write allure results, JUnit XML, report.html",
        description="Run the M-Bus conformance suite against a rig and write DIR/allure-results, "
                    "DIR/junit.xml and DIR/report.html. Arguments after -- go to pytest "
                    "(e.g. -- -k addressing -n 2).")
    parser.add_argument("--rig", default="sim", metavar="sim|FILE",
                        help="the rig: 'sim' (built-in simulated rig, default) or a rig file")
    parser.add_argument("--report", default="mbus-report", metavar="DIR", type=Path,
                        help="where the reports go (default: ./mbus-report)")
    parser.add_argument("--baud", default="dut", metavar="B[,B...]|all|dut",
                        help="rates for the baud-dependent scenarios: one, a comma list, 'all', "
                             "or 'dut' (default: every rate the DUT supports)")
    parser.add_argument("--no-html", action="store_true",
                        help="skip the HTML report (allure results and JUnit XML only)")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER, metavar="-- PYTEST ARGS",
                        help="passed to pytest")
    parser.set_defaults(handler=run)


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


def pytest_command(rig: str, report: Path, extra: list[str], baud: str = "dut") -> list[str]:
    report = report.resolve()
    return [sys.executable, "-m", "pytest", str(suite_path()), "--rig", rig, "--baud", baud,
            f"--alluredir={report / 'allure-results'}", "--clean-alluredir",
            f"--junitxml={report / 'junit.xml'}", *_plugin_args(), *extra]


def run(args: argparse.Namespace) -> int:
    rig = str(args.rig)
    if rig != "sim":
        rig = str(Path(rig).resolve())
    load_config(rig)  # a wrong rig file is a usage error before pytest starts
    extra = list(args.pytest_args)
    if extra and extra[0] == "--":
        extra = extra[1:]
    report: Path = args.report
    try:
        report.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HardwareError(f"--report {report}: cannot create it ({exc.strerror})") from None
    status = _run_pytest(pytest_command(rig, report, extra, args.baud))
    results = report / "allure-results"
    print(f"mbus-rig run: JUnit XML: {report / 'junit.xml'}")
    print(f"mbus-rig run: allure results: {results}")
    if args.no_html:
        return status
    allure = find_allure()
    if allure is None:
        print(f"mbus-rig run: HTML report skipped: the Allure 3 CLI was not found; "
              f"{ALLURE_HINT}", file=sys.stderr)
        return status
    if not results.is_dir() or not any(results.iterdir()):
        print("mbus-rig run: HTML report skipped: no allure results were written",
              file=sys.stderr)
        return status
    try:
        html = generate_html(results, report / "report.html", allure=allure)
    except HardwareError as exc:
        print(f"mbus-rig run: HTML report failed: {exc}", file=sys.stderr)
        return status
    print(f"mbus-rig run: HTML report: {html}")
    return status


def _run_pytest(cmd: list[str]) -> int:
    """Run pytest; a SIGTERM/SIGINT to us is passed on, and pytest gets a bounded time to
    put the rig in safe state before it is killed."""
    proc = subprocess.Popen(cmd)
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
                proc.wait(CHILD_STOP_BOUND_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
