"""The installed conformance suite (package ``tests_hil``) as the front end sees it before
pytest starts: its scenarios with their markers, the severity levels, and ``-k`` checked and
matched the way pytest will.

``mbus-rig run`` uses it to refuse an option that would select nothing (an unknown area, a
clause text in no scenario, a broken ``-k`` expression) and for ``--list-scenarios``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from protocol.errors import ConfigError

from .selection import ScenarioSelection


@dataclass(frozen=True, slots=True)
class SuiteScenario:
    """One scenario of the suite and its markers. A parametrised case may carry its own
    severity and clause (a ``recommended`` case cites what it rests on): ``cases`` lists
    the (severity, clause) pairs its cases have, the scenario's first."""

    node: str  # file::function
    area: str
    severity: str
    clause: str  # the reference, e.g. "EN 13757-2 link layer, FCB/FCV"
    clause_text: str  # what the clause demands, in a few words
    needs: tuple[str, ...]
    own_cases: tuple[tuple[str, str], ...] = ()  # (severity, "reference text") of such cases

    @property
    def cases(self) -> tuple[tuple[str, str], ...]:
        """(severity, clause reference and text) of each kind of case the scenario has: the
        string is what the plugin matches ``--clause`` against."""
        return ((self.severity, f"{self.clause} {self.clause_text}"), *self.own_cases)

    @property
    def severities(self) -> list[str]:
        return list(dict.fromkeys(severity for severity, _ in self.cases))

    def selected(self, selection: ScenarioSelection, keyword: str | None = None) -> bool:
        """Would any of its cases run with these options?"""
        return (any(selection.matches(self.area, severity, [clause])
                    for severity, clause in self.cases)
                and (keyword is None or keyword_matches(keyword, self.node)))


def scenarios(role: str = "slave") -> list[SuiteScenario]:
    """Every scenario of the installed suite that judges a DUT of ``role`` (the master suite
    for a master, tests_hil/master/), from its catalogue, without running pytest."""
    from tests_hil._catalog import master_scenarios
    from tests_hil._catalog import scenarios as catalogue
    from tests_hil._scenario import RECOMMENDED

    entries = master_scenarios() if role == "master" else catalogue()
    return [SuiteScenario(e.node, e.meta.area, e.meta.severity, e.meta.clause.ref,
                          e.meta.clause.text, e.meta.needs,
                          tuple((RECOMMENDED, f"{r.clause.ref} {r.clause.text}")
                                for r in e.recommended))
            for e in entries]


def severities() -> tuple[str, ...]:
    """The severity levels a scenario can have."""
    from tests_hil._scenario import SEVERITIES

    return tuple(SEVERITIES)


def _compile(expression: str) -> Any:
    """pytest's own ``-k`` expression compiler; None where this pytest does not expose it.
    A malformed expression is a ConfigError with pytest's reason and column."""
    try:
        from _pytest.mark.expression import Expression
    except ImportError:
        return None
    try:
        return Expression.compile(expression)
    except Exception as exc:  # SyntaxError (pytest 9), ParseError (pytest 8)
        reason = getattr(exc, "msg", None) or getattr(exc, "message", None) or str(exc)
        column = getattr(exc, "offset", None) or getattr(exc, "column", None)
        at = f" at column {column}" if column else ""
        raise ConfigError(f"-k {expression!r}: not a keyword expression ({reason}{at})") from None


def keyword_matches(expression: str, node: str) -> bool:
    """Does ``-k expression`` select the scenario ``node`` (file::function)? As pytest
    does: each name is a case-insensitive substring of the node's names."""
    compiled = _compile(expression)
    if compiled is None:
        return True
    names = [part.lower() for part in node.replace(".py", "").split("::")]

    def matcher(name: str, /, **kwargs: Any) -> bool:
        return any(name.lower() in n for n in names)

    return bool(compiled.evaluate(matcher))


def check_options(selection: ScenarioSelection, keyword: str | None,
                  suite: Sequence[SuiteScenario]) -> None:
    """ConfigError for ``--area``/``--severity``/``--clause``/``-k`` values that are wrong
    for ``suite`` (an unknown area, a level that is not one, a clause no scenario cites,
    a ``-k`` that does not parse)."""
    selection.check(severities=severities(), areas=[s.area for s in suite],
                    clauses=[clause for s in suite for _, clause in s.cases])
    if keyword is not None:
        _compile(keyword)
