"""The scenario catalogue: docs/scenarios.md, written from the scenarios' own metadata.

    python -m tests_hil._catalog            # rewrite docs/scenarios.md
    python -m tests_hil._catalog --check    # exit 1 if the committed file is out of date

Every scenario in ``tests_hil/test_*.py`` (the slave suite) and ``tests_hil/master/test_*.py``
(the master suite) carries a ``ScenarioMeta`` (see ``_scenario.py``):
area, clause, capabilities, severity, how it fails; its docstring says what it checks. The
parametrisations give the number of cases; the defect table comes from ``_defects.py``.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tests_hil._defects import (
    EXPECTED_FAILURES,
    KNOWN_GAPS,
    MASTER_EXPECTED_FAILURES,
    defect_descriptions,
)
from tests_hil._scenario import CLAUSES, RECOMMENDED, Clause, ScenarioMeta

PACKAGE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = PACKAGE.parent / "docs" / "scenarios.md"


@dataclass(frozen=True, slots=True)
class RecommendedCase:
    """A parametrised case of severity ``recommended``, with the clause it rests on."""

    case: str  # the case's id
    clause: Clause


@dataclass(frozen=True, slots=True)
class Entry:
    """One scenario as the catalogue lists it."""

    module: str  # file name, e.g. test_addressing.py
    name: str  # function name
    meta: ScenarioMeta
    checks: str  # the docstring as one paragraph
    params: tuple[tuple[str, int], ...]  # (argument names, number of values) per parametrize
    per_baud: bool  # uses the ``baud`` fixture: one case per --baud rate
    case_needs: tuple[str, ...] = ()  # capabilities of single cases
    recommended: tuple[RecommendedCase, ...] = ()  # cases that check a recommendation

    @property
    def node(self) -> str:
        return f"{self.module}::{self.name}"

    def cases(self, bauds: int) -> int:
        """Test cases with ``bauds`` rates given to --baud (before capability skips)."""
        n = bauds if self.per_baud else 1
        for _, count in self.params:
            n *= count
        return n


def _paragraph(doc: str | None) -> str:
    return " ".join(inspect.cleandoc(doc or "").split())


def _params(fn: object) -> tuple[tuple[str, int], ...]:
    out = []
    for mark in getattr(fn, "pytestmark", []):
        if mark.name == "parametrize":
            names, values = mark.args[0], mark.args[1]
            out.append((names if isinstance(names, str) else ",".join(names), len(list(values))))
    return tuple(reversed(out))


def _case_needs(fn: object) -> tuple[str, ...]:
    """Capabilities single cases need on top of the scenario's: "parity (case parity)"."""
    out = []
    for mark in getattr(fn, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        for value in mark.args[1]:
            for case_mark in getattr(value, "marks", ()):
                if case_mark.name == "needs":
                    out.append(f"{', '.join(case_mark.args)} (case {value.id})")
    return tuple(out)


def _recommended_cases(fn: object) -> tuple[RecommendedCase, ...]:
    """The cases marked ``recommended`` (tests_hil._scenario.recommended), with their clause
    as CLAUSES has it (its ``basis``: why it is not demanded)."""
    by_ref = {(c.ref, c.text): c for c in CLAUSES.values()}
    out = []
    for mark in getattr(fn, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        for value in mark.args[1]:
            marks = {m.name: m for m in getattr(value, "marks", ())}
            severity, clause = marks.get("severity"), marks.get("clause")
            if severity is None or severity.args[0] != RECOMMENDED:
                continue
            if clause is None or tuple(clause.args[:2]) not in by_ref:
                raise ValueError(f"{getattr(fn, '__name__', fn)}[{value.id}]: a recommended "
                                 "case needs its clause from CLAUSES (use _scenario.recommended)")
            out.append(RecommendedCase(str(value.id), by_ref[tuple(clause.args[:2])]))
    return tuple(out)


MODULE_ORDER = ("test_addressing", "test_collisions", "test_frame_errors", "test_answer_errors",
                "test_fcb", "test_baud_rate", "test_timing", "test_power_and_wiring",
                "test_application")
"""The catalogue's order: from addressing up to the application layer; others follow."""


MASTER_MODULE_ORDER = ("test_request_frames", "test_request_timing", "test_transmission",
                       "test_reported_data", "test_scanning", "test_control",
                       "test_robustness")
"""The master suite's order (tests_hil/master/): from the frames up to robustness."""


def modules(folder: Path = PACKAGE, order: tuple[str, ...] = MODULE_ORDER) -> list[str]:
    """The scenario modules of ``folder``, in catalogue order."""
    found = {p.stem for p in folder.glob("test_*.py")}
    return [m for m in order if m in found] + sorted(found - set(order))


def scenarios() -> list[Entry]:
    """Every scenario of the slave suite, module by module in source order."""
    return _entries("tests_hil", modules())


def master_scenarios() -> list[Entry]:
    """Every scenario of the master suite (tests_hil/master/)."""
    return _entries("tests_hil.master", modules(PACKAGE / "master", MASTER_MODULE_ORDER))


def _entries(package: str, stems: list[str]) -> list[Entry]:
    entries: list[Entry] = []
    for stem in stems:
        module = importlib.import_module(f"{package}.{stem}")
        functions = [fn for name, fn in vars(module).items()
                     if name.startswith("test_") and callable(fn)]
        functions.sort(key=lambda fn: inspect.getsourcelines(fn)[1])
        for fn in functions:
            meta = getattr(fn, "__scenario__", None)
            if meta is None:
                raise ValueError(f"{stem}.{fn.__name__} is not declared with @scenario")
            per_baud = "baud" in inspect.signature(fn).parameters
            entries.append(Entry(f"{stem}.py", fn.__name__, meta, _paragraph(fn.__doc__),
                                 _params(fn), per_baud, _case_needs(fn),
                                 _recommended_cases(fn)))
    return entries


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _case_text(entry: Entry) -> str:
    parts = [f"{count} ({names})" for names, count in entry.params]
    if entry.per_baud:
        parts.append("each --baud")
    return " x ".join(parts) if parts else "1"


def _areas(entries: list[Entry]) -> dict[str, list[Entry]]:
    areas: dict[str, list[Entry]] = {}
    for e in entries:
        areas.setdefault(e.meta.area, []).append(e)
    return areas


def _area_tables(areas: dict[str, list[Entry]]) -> list[str]:
    lines: list[str] = []
    for area, group in areas.items():
        lines += ["", f"## {area}", "",
                  "| scenario | clause | checks | needs | severity | fails when | cases |",
                  "|---|---|---|---|---|---|---|"]
        for e in group:
            needs = ", ".join(e.meta.needs + e.case_needs) or "-"
            severity = e.meta.severity
            if e.recommended:
                severity += f"; {RECOMMENDED}: " + ", ".join(r.case for r in e.recommended)
            lines.append(
                f"| `{e.node}` | {_cell(e.meta.clause.ref)}: {_cell(e.meta.clause.text)} | "
                f"{_cell(e.checks)} | {needs} | {severity} | {_cell(e.meta.fails_when)} "
                f"| {_case_text(e)} |")
    return lines


def render(entries: Iterable[Entry], master: Iterable[Entry] | None = None) -> str:
    """The whole Markdown page: the slave suite, then the master suite (``master``: its
    scenarios, default ``master_scenarios()``)."""
    entries = list(entries)
    areas = _areas(entries)
    lines = [
        "# Conformance scenarios",
        "",
        "<!-- Generated by `python -m tests_hil._catalog` from the scenarios' metadata "
        "(tests_hil/). Do not edit: change the scenario and regenerate. -->",
        "",
        f"{len(entries)} scenarios in {len(areas)} areas; "
        f"{sum(e.cases(1) for e in entries)} test cases at one baud rate, "
        f"{sum(e.cases(8) for e in entries)} with `--baud all` (before capability skips and "
        "before dropping baud switches to the same rate).",
        "",
        "Clause references name the part of EN 13757 and the topic; the facts are those of "
        "docs/mbus-facts.md (section numbers differ between editions and are not given). A scenario whose "
        "capabilities the rig or DUT lack is skipped with the reason, never passed.",
        "",
        "| area | scenarios | cases at one rate |",
        "|---|---|---|",
    ]
    for area, group in areas.items():
        lines.append(f"| [{area}](#{_anchor(area)}) | {len(group)} | "
                     f"{sum(e.cases(1) for e in group)} |")
    lines += _area_tables(areas)
    lines += _recommended_section(entries)
    lines += ["", "## Defect detection", "",
              "Each named defect of the emulated slave, switched on with `--defect NAME`, must "
              "make exactly these scenarios fail and every other one pass "
              "(tests/test_suite_defects.py runs this table, from tests_hil/_defects.py). "
              "Where every answer of the slave is broken, other scenarios may fail too "
              "(collateral), and the listed ones must still pass.", "",
              "| defect | what the slave does wrong | rates | scenarios that catch it | "
              "collateral; must still pass |", "|---|---|---|---|---|"]
    descriptions = defect_descriptions()
    for defect, expected in EXPECTED_FAILURES.items():
        caught = "<br>".join([f"`{p}`" for p in expected.patterns]
                             + [f"{RECOMMENDED}, not met: `{p}`" for p in expected.recommended])
        rates = ", ".join(map(str, expected.bauds))
        rig = "" if expected.rig == "conformant.toml" else f" ({expected.rig})"
        extra = "-"
        if expected.collateral:
            keep = "<br>".join(f"`{p}`" for p in expected.must_pass)
            extra = f"{_cell(expected.collateral)}; must pass: {keep}"
        lines.append(f"| `{defect}` | {_cell(descriptions.get(defect, ''))} | {rates}{rig} | "
                     f"{caught} | {extra} |")
    lines += ["", "## Known gaps of the emulated slave", "",
              "Scenarios the project's own conformant emulated slave fails today. They must "
              "fail in every run (a fix shows up as a failing suite test until the entry is "
              "removed from tests_hil/_defects.py).", "", "| scenario | why |", "|---|---|"]
    for pattern, why in KNOWN_GAPS.items():
        lines.append(f"| `{pattern}` | {_cell(why)} |")
    if not KNOWN_GAPS:
        lines.append("| (none) | |")
    lines += _render_master(list(master) if master is not None else master_scenarios())
    return "\n".join(lines) + "\n"


def _render_master(entries: list[Entry]) -> list[str]:
    """The master suite's part of the page: its scenarios, its recommended scenarios and
    its defect table."""
    areas = _areas(entries)
    lines = [
        "", "# Master suite", "",
        f"{len(entries)} scenarios in {len(areas)} areas; {sum(e.cases(1) for e in entries)} "
        f"test cases at one baud rate, {sum(e.cases(8) for e in entries)} with `--baud all` "
        "(before capability skips and before dropping baud switches to the same rate). They "
        "run when the rig file's DUT has `role = \"master\"` (tests_hil/master/): the rig's "
        "emulated meters judge the master from the wire and from what it reports. `op_NAME` "
        "is an operation the master has a command for, `reports` that its output is read.",
        "", "| area | scenarios | cases at one rate |", "|---|---|---|",
    ]
    for area, group in areas.items():
        lines.append(f"| [{area}](#{_anchor(area)}) | {len(group)} | "
                     f"{sum(e.cases(1) for e in group)} |")
    lines += _area_tables(areas)
    lines += ["", "## Recommended of a master, not demanded", "",
              "Scenarios of severity `recommended` check what the standard only recommends of "
              "a master; not met, they are reported as \"recommended, not met\", apart from "
              "conformance failures, and do not fail the run.", "",
              "| scenario | clause | why it is not a conformance requirement |", "|---|---|---|"]
    for e in entries:
        if e.meta.severity == RECOMMENDED:
            lines.append(f"| `{e.node}` | {_cell(e.meta.clause.ref)}: "
                         f"{_cell(e.meta.clause.text)} | {_cell(e.meta.clause.basis)} |")
    lines += ["", "## Master defect detection", "",
              "Each named defect of the test master (the project's master with one defect "
              "switched on, rig/defective_master.py), run with `--defect NAME` on "
              "tests_hil/rigs/master.toml, must make exactly these scenarios fail (and trip "
              "exactly these recommendations) and every other one pass "
              "(tests/test_master_suite_defects.py runs this table, from "
              "tests_hil/_defects.py; the two largest search populations, `last_digit` and "
              "`mixed`, are left out of these runs to keep them short).", "",
              "| defect | what the master does wrong | rates | scenarios that catch it |",
              "|---|---|---|---|"]
    descriptions = defect_descriptions()
    for defect, expected in MASTER_EXPECTED_FAILURES.items():
        caught = "<br>".join([f"`{p}`" for p in expected.patterns]
                             + [f"{RECOMMENDED}, not met: `{p}`" for p in expected.recommended])
        rates = ", ".join(map(str, expected.bauds))
        lines.append(f"| `{defect}` | {_cell(descriptions.get(defect, ''))} | {rates} | "
                     f"{caught} |")
    return lines


def _recommended_section(entries: list[Entry]) -> list[str]:
    """The cases that check what EN 13757 only recommends or does not clearly demand."""
    lines = ["", "## Recommended, not demanded", "",
             "Cases of severity `recommended` check what the standard only recommends, or what "
             "it does not clearly demand of a slave. A case that fails is reported as "
             "\"recommended, not met\": in the terminal summary, in allure (category "
             "\"Recommended, not met\", tag `recommended`) and in JUnit XML (`<skipped "
             "type=\"mbus.recommended\">`, property `mbus.verdict`), apart from conformance "
             "failures; it does not fail the run.", "",
             "| case | clause | why it is not a conformance requirement |", "|---|---|---|"]
    for e in entries:
        for r in e.recommended:
            lines.append(f"| `{e.node}[{r.case}]` | {_cell(r.clause.ref)}: "
                         f"{_cell(r.clause.text)} | {_cell(r.clause.basis)} |")
    return lines


def _anchor(title: str) -> str:
    keep = "".join(ch for ch in title.lower() if ch.isalnum() or ch in " -")
    return keep.replace(" ", "-")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests_hil._catalog",
                                     description="Write docs/scenarios.md from the scenarios.")
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the file differs from what it would be")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    text = render(scenarios())
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run python -m tests_hil._catalog",
                  file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
