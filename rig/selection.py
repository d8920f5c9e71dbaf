"""Which cases a run covers: the baud rates (``--baud``) and the scenarios chosen by their
markers (``--area``, ``--severity``, ``--clause``).

Pure and shared: ``mbus-rig run`` checks the options with it before pytest starts, and the
pytest plugin uses the same code to parametrise and to deselect, so both agree on what a
value means and on the one-line error for a wrong one (:class:`ConfigError`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from protocol.errors import ConfigError
from protocol.timing import BAUD_RATES

BAUD_SPEC_HELP = "one rate, a comma list, 'all' (every M-Bus rate) or 'dut' (every rate the DUT supports)"


def parse_bauds(text: str | None, default: int, dut_bauds: Sequence[int] = ()) -> list[int]:
    """``--baud``: None -> [default]; "all" -> every M-Bus rate; "dut" -> ``dut_bauds`` (the
    DUT's supported rates; [default] when unknown); "2400,9600" -> those, in order, once."""
    if text is None:
        return [default]
    spec = text.strip().lower()
    if spec == "all":
        return list(BAUD_RATES)
    if spec == "dut":
        return sorted(dut_bauds) or [default]
    bauds: list[int] = []
    for part in text.split(","):
        try:
            value = int(part.strip())
        except ValueError:
            value = -1
        if value not in BAUD_RATES:
            raise ConfigError(f"--baud {text}: {part.strip()!r} is not an M-Bus baud rate "
                              f"(allowed: {', '.join(map(str, BAUD_RATES))}, 'all' or 'dut')")
        if value not in bauds:
            bauds.append(value)
    return bauds


def _split(values: Iterable[str]) -> tuple[str, ...]:
    """Repeated options and comma lists, as one tuple of stripped non-empty values."""
    return tuple(v.strip() for value in values for v in value.split(",") if v.strip())


@dataclass(frozen=True, slots=True)
class ScenarioSelection:
    """Scenarios chosen by marker: any of ``areas`` (exact names), any of ``severities``,
    and any of ``clauses`` (text found in the clause reference or its text, case ignored).
    An empty field selects everything; the fields combine with AND."""

    areas: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    clauses: tuple[str, ...] = ()

    @classmethod
    def from_options(cls, areas: Iterable[str] = (), severities: Iterable[str] = (),
                     clauses: Iterable[str] = ()) -> ScenarioSelection:
        """From repeated options; areas and severities may also be comma lists."""
        return cls(_split(areas), _split(severities),
                   tuple(c.strip() for c in clauses if c.strip()))

    def __bool__(self) -> bool:
        return bool(self.areas or self.severities or self.clauses)

    def matches(self, area: str | None, severity: str | None, clauses: Iterable[str]) -> bool:
        """Does a scenario with these markers belong to the selection? ``clauses``: each
        clause marker's reference and text, as one string each."""
        if self.areas and area not in self.areas:
            return False
        if self.severities and severity not in self.severities:
            return False
        if self.clauses:
            texts = [c.lower() for c in clauses]
            return any(want.lower() in text for want in self.clauses for text in texts)
        return True

    def check(self, *, severities: Sequence[str], areas: Iterable[str] | None = None,
              clauses: Iterable[str] | None = None) -> None:
        """ConfigError for a value that can select nothing: a severity that is not a level,
        and -- when the suite's ``areas`` and ``clauses`` (each scenario's clause reference
        and text) are given -- an area no scenario has or a clause text in no clause."""
        if areas is not None:
            known_areas = sorted(set(areas))
            for area in self.areas:
                if area not in known_areas:
                    raise ConfigError(f"--area {area!r}: no scenario has this area "
                                      f"(areas: {', '.join(known_areas) or 'none'})")
        for severity in self.severities:
            if severity not in severities:
                raise ConfigError(f"--severity {severity!r}: not a severity "
                                  f"(allowed: {', '.join(severities)})")
        if clauses is None:
            return
        texts = [c.lower() for c in clauses]
        for want in self.clauses:
            if not any(want.lower() in text for text in texts):
                raise ConfigError(f"--clause {want!r}: in no scenario's clause (mbus-rig run "
                                  "--list-scenarios lists them)")
