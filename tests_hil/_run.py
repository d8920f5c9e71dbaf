"""Run the conformance suite in a subprocess and read back every test case's outcome.

Used by tests/test_suite_*.py (the suite is itself tested) and handy by hand::

    python -m tests_hil._run --rig tests_hil/rigs/conformant.toml --baud all --defect ignores_fcb

prints one line per failing case and a count per outcome. Outcomes come from the JUnit XML
pytest writes, keyed by ``file::test[params]`` (the node id without its directory).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rig.report import RECOMMENDED_JUNIT_TYPE

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent
CONFORMANT_RIG = PACKAGE / "rigs" / "conformant.toml"
"""A simulated rig whose emulated meter supports every rate, two telegrams, every feature."""
TIMEOUT_S = 1800.0
WORKERS = int(os.environ.get("MBUS_SUITE_WORKERS", "2"))
"""pytest-xdist workers inside each suite run the suite's own tests start (the suite is
CPU-bound simulation; 0 runs it in one process)."""


PYTHON_REPR = re.compile(
    r"<[^<>\n]* at 0x[0-9a-fA-F]+>"      # <function outcome at 0x7f...>, <X object at 0x...>
    r"|(?<![\w'\"])b'|(?<![\w'\"])b\""   # bytes literals: b'h##h(...'
    r"|\b[A-Z]\w*\(\w+="                  # dataclass reprs: RxChar(value=..., Exchange(request=
    r"|[\[{(]['\"]"                      # reprs of str containers: ['1234...'], {'a': ...}
)
"""What a failure text a user reads must not contain: Python's reprs (issue 10)."""


def python_reprs(text: str) -> list[str]:
    """The Python reprs in ``text``, each with a little context."""
    return [text[max(0, m.start() - 30):m.end() + 30] for m in PYTHON_REPR.finditer(text)]


@dataclass
class SuiteRun:
    """The outcome of every case of one suite run."""

    args: list[str]
    returncode: int
    outcomes: dict[str, str]  # test id -> passed, failed, skipped, error, recommended
    messages: dict[str, str] = field(default_factory=dict)  # test id -> failure / skip text
    output: str = ""

    def having(self, outcome: str) -> list[str]:
        return sorted(t for t, o in self.outcomes.items() if o == outcome)

    @property
    def failed(self) -> list[str]:
        """Failed and erroring cases (an error in a fixture fails the scenario too)."""
        return sorted(t for t, o in self.outcomes.items() if o in ("failed", "error"))

    def python_reprs(self) -> dict[str, list[str]]:
        """Failure texts that show Python reprs: test id -> the reprs found."""
        found = {t: python_reprs(m) for t, m in self.messages.items()
                 if self.outcomes.get(t) in ("failed", "error")}
        return {t: hits for t, hits in found.items() if hits}

    def counts(self) -> Counter[str]:
        return Counter(self.outcomes.values())

    def summary(self) -> str:
        counts = ", ".join(f"{n} {o}" for o, n in sorted(self.counts().items()))
        return f"pytest {' '.join(self.args)}: {counts or 'nothing ran'} (exit {self.returncode})"


def _test_id(case: ET.Element) -> str:
    module = case.get("classname", "").split(".")[-1]
    return f"{module}.py::{case.get('name', '')}"


def parse_junit(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(outcomes, messages) from a JUnit XML file; a recommendation not met (a ``<skipped>``
    of type ``mbus.recommended``) is the outcome "recommended"."""
    outcomes: dict[str, str] = {}
    messages: dict[str, str] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        test = _test_id(case)
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                if child.tag == "skipped" and child.get("type") == RECOMMENDED_JUNIT_TYPE:
                    outcome = "recommended"
                messages[test] = (child.get("message") or child.text or "").strip()
                if child.tag != "skipped":
                    break
        if outcomes.get(test) in ("failed", "error"):
            continue  # a teardown error after a failure: keep the failure
        outcomes[test] = outcome
    return outcomes, messages


def run_suite(*options: str, workers: int = 0, timeout: float = TIMEOUT_S,
              select: str = "tests_hil") -> SuiteRun:
    """``pytest tests_hil OPTIONS`` in a subprocess (``workers`` > 0: pytest-xdist)."""
    with tempfile.TemporaryDirectory(prefix="mbus-suite-") as tmp:
        junit = Path(tmp) / "junit.xml"
        args = [select, *options, "-p", "no:cacheprovider", "-q", "--junitxml", str(junit)]
        if workers > 0:
            args += ["-n", str(workers)]
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        try:
            proc = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"pytest {' '.join(args)} did not finish in {timeout:.0f} s"
                                 ) from exc
        output = proc.stdout + proc.stderr
        if not junit.exists():
            raise AssertionError(f"pytest {' '.join(args)} wrote no report (exit "
                                 f"{proc.returncode}):\n{output[-4000:]}")
        outcomes, messages = parse_junit(junit)
    return SuiteRun(args, proc.returncode, outcomes, messages, output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests_hil._run",
                                     description="Run the suite; list failures and counts.")
    parser.add_argument("--rig", default=str(CONFORMANT_RIG))
    parser.add_argument("--baud", default=None)
    parser.add_argument("--seed", default=None)
    parser.add_argument("--defect", action="append", default=[])
    parser.add_argument("-n", "--workers", type=int, default=0)
    args = parser.parse_args(argv)
    options = ["--rig", args.rig]
    if args.baud:
        options += ["--baud", args.baud]
    if args.seed:
        options += ["--seed", args.seed]
    for defect in args.defect:
        options += ["--defect", defect]
    try:
        run = run_suite(*options, workers=args.workers)
    except AssertionError as exc:  # no report: pytest refused the options, or timed out
        print(f"python -m tests_hil._run: {exc}", file=sys.stderr)
        return 2
    for test in run.failed:
        first_line = (run.messages.get(test) or "").partition("\n")[0]
        print(f"FAILED {test}: {first_line[:200]}")
    for test in run.having("recommended"):
        first_line = (run.messages.get(test) or "").partition("\n")[0]
        print(f"RECOMMENDED {test}: {first_line[:200]}")
    print(run.summary())
    return 0 if not run.failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
