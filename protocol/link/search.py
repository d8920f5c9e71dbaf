"""Secondary-address search (sans-I/O): find every slave on the bus (docs/mbus-facts.md "Link-layer",
"What peers get wrong").

The search yields probes and takes each probe's outcome:

* ``SelectProbe(mask)``: SND_UD to 253, CI 52 with ``mask``; report the outcome
  (NONE, ACK, or GARBLED / COLLISION).
* ``ReadProbe()``: REQ_UD2 to 253 after a clean E5; report the outcome and, for a clean
  RSP_UD with a fixed header, the secondary address and the access number in it.

Algorithm (a depth-first split of the address space):

1. Probe the mask. Nobody: prune. A clean E5 is confirmed with a REQ_UD2 to 253: one clean
   RSP_UD whose address matches the mask means exactly one slave, and its full address is
   known at once (no further digits needed). Two slaves whose E5s overlapped cleanly answer
   the REQ_UD2 garbled: descend. A garbled or colliding selection: descend.
   Bit-aligned slaves (the same response delay to the bit) AND their RSP_UDs on the wire, and
   the AND can be a valid frame: the slave whose bits are a subset of the others'. So a clean
   read of X under a mask that still has wildcards is verified by the access number, which a
   slave increments with every RSP_UD (EN 13757-3): select X exactly and read it (only X
   answers, its access number moves one ahead of the others under the mask), then select
   the mask again and read. Alone, X answers with its next telegram (access number = the
   last + 1). With another slave of access number n under the mask, X's is n + 2 and the AND
   of n + 1 and n + 2 is never n + 2 (or the frame garbles): descend. Four probes more per
   slave found under a wildcard.
2. Descend on the ID digits first, least significant digit first (serial numbers on one bus
   are usually consecutive, so they differ in the last digits: one level splits them), with
   values 0-9. When digits 0..8 of a level found nobody, digit 9 must hold every slave of
   the (probed, colliding) parent: it is entered without being probed.
3. A collision that survives a fully fixed ID: the fabrication number by enhanced selection
   (``0C 78`` + 8 digits with F wildcards, EN 13757-3), which resolves slaves that take only
   the standard whole-field wildcards for manufacturer, version and medium. Every level is
   probed before any digit is split further, so a level where no digit answers (no
   enhanced selection) or every digit answers (the fabrication number is ignored) is seen
   at once and the search moves on to
   the medium, version and manufacturer nibbles with values 0-E (for slaves that take
   F-nibble wildcards there, as libmbus's masks assume; F is the wildcard itself, so after
   0-E the level is passed once more with F kept, for slaves whose nibble is F).
4. What is still colliding then is reported in ``unresolved``.

Known limits: a slave whose RSP_UD has no fixed header (CI 7A, 73) cannot tell its address,
so it ends in ``unresolved``. The access-number check assumes that the slaves under one mask
have answered the same reads (the search only reads a mask after reading its parents, so
slaves that came up with equal access numbers stay equal) and that every slave increments
its access number: bit-aligned slaves that do not (or whose access numbers started
apart so that another's bits cover X's next one, or that wrap 255 -> 0 at that moment) can
still hide behind the subset slave.

libmbus by contrast probes 0-9 at each of the 16 mask positions from the most significant
digit, never tries A-F in the hex fields, and drops collisions at the last position.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

from ..identity import SecondaryAddress
from .master import Outcome
from .selection import ALL, ID_DIGITS, WILDCARD, SelectionMask

_ID_VALUES = tuple(range(10))
_HEX_VALUES = tuple(range(15))  # F is the wildcard
_HEX_POSITIONS = (15, 14, 13, 12, 11, 10, 9, 8)  # medium, version, manufacturer; low nibble first


@dataclass(frozen=True, slots=True)
class SelectProbe:
    mask: SelectionMask


@dataclass(frozen=True, slots=True)
class ReadProbe:
    """REQ_UD2 to 253 (the slave(s) the last selection selected)."""


Probe = SelectProbe | ReadProbe


@dataclass(frozen=True, slots=True)
class FoundSlave:
    """A slave the search found: its secondary address and, where the search needed it to
    tell slaves with the same address apart, the fabrication-number mask (8 digits, F =
    wildcard, EN 13757-3 enhanced selection) that selects it alone."""

    address: SecondaryAddress
    fabrication: str | None = None

    @property
    def mask(self) -> SelectionMask:
        """The selection that selects this slave alone."""
        return SelectionMask(str(self.address), self.fabrication)

    def __str__(self) -> str:
        return str(self.mask)


@dataclass(frozen=True, slots=True)
class SearchResult:
    slaves: tuple[FoundSlave, ...]
    selects: int
    reads: int
    unresolved: tuple[SelectionMask, ...]
    duration: float | None = None  # bus time, filled in by the driver
    verifications: int = 0  # probes spent on the access-number check (in selects / reads)

    @property
    def found(self) -> tuple[SecondaryAddress, ...]:
        """The slaves' secondary addresses (twins told apart by fabrication number appear
        once each)."""
        return tuple(s.address for s in self.slaves)

    @property
    def probes(self) -> int:
        return self.selects + self.reads


@dataclass(frozen=True, slots=True)
class _Axis:
    kind: str  # "id", "hex", "fab"
    position: int

    @property
    def values(self) -> tuple[int, ...]:
        return _HEX_VALUES if self.kind == "hex" else _ID_VALUES

    def child(self, mask: SelectionMask, value: int) -> SelectionMask:
        if self.kind == "fab":
            return mask.with_fabrication_digit(self.position, value)
        return mask.with_digit(self.position, value)


_Reply = tuple[Outcome, SecondaryAddress | None, int | None]


class SecondarySearch:
    """Sans-I/O search: ``next_probe()`` / ``report(outcome, address)`` until ``None``."""

    def __init__(self, mask: SelectionMask = ALL) -> None:
        self.mask = mask
        self._found: dict[FoundSlave, None] = {}
        self._unresolved: list[SelectionMask] = []
        self._selects = 0
        self._reads = 0
        self._verifications = 0
        self._axes = self._plan(mask)
        self._gen = self._run(mask)
        self._probe: Probe | None = next(self._gen)

    # --- driving --------------------------------------------------------------------------

    def next_probe(self) -> Probe | None:
        """The probe to make now (the same one until it is reported), None when done."""
        return self._probe

    def report(self, outcome: Outcome, address: SecondaryAddress | None = None,
               access_number: int | None = None) -> None:
        """The outcome of the current probe (and a read's decoded secondary address and
        access number)."""
        if self._probe is None:
            raise RuntimeError("the search is finished; nothing to report")
        if isinstance(self._probe, SelectProbe):
            self._selects += 1
        else:
            self._reads += 1
        try:
            self._probe = self._gen.send((outcome, address, access_number))
        except StopIteration:
            self._probe = None

    @property
    def done(self) -> bool:
        return self._probe is None

    @property
    def result(self) -> SearchResult:
        return SearchResult(tuple(self._found), self._selects, self._reads,
                            tuple(self._unresolved), verifications=self._verifications)

    # --- the algorithm ------------------------------------------------------------------------

    @staticmethod
    def _plan(mask: SelectionMask) -> list[_Axis]:
        axes = [_Axis("id", p) for p in range(ID_DIGITS - 1, -1, -1) if mask.is_wildcard(p)]
        fab = mask.fabrication or "F" * ID_DIGITS
        axes += [_Axis("fab", p) for p in range(ID_DIGITS - 1, -1, -1) if fab[p] == "F"]
        axes += [_Axis("hex", p) for p in _HEX_POSITIONS if mask.is_wildcard(p)]
        return axes

    def _run(self, mask: SelectionMask) -> Generator[Probe, _Reply, None]:
        if (yield from self._try(mask)) == "many":
            yield from self._descend(mask, 0, probed=True)

    def _try(self, mask: SelectionMask) -> Generator[Probe, _Reply, str]:
        """Select ``mask``: "none", "found" (one slave, its address read) or "many"."""
        outcome, _, _ = yield SelectProbe(mask)
        if outcome is Outcome.NONE:
            return "none"
        if outcome is Outcome.ACK:
            read, address, access = yield ReadProbe()
            # the fabrication number is not in the RSP_UD header: check the 16 digits
            if (read is Outcome.FRAME and address is not None
                    and SelectionMask(mask.digits).matches(address, nibble_wildcards=True)
                    and (WILDCARD not in mask.digits
                         or (yield from self._alone(mask, address)))):
                self._found.setdefault(FoundSlave(address, mask.fabrication))
                return "found"
        return "many"

    def _alone(self, mask: SelectionMask, address: SecondaryAddress
               ) -> Generator[Probe, _Reply, bool]:
        """Is ``address`` the only slave under ``mask``? (the access-number check, see the
        module docstring; 4 probes)."""
        exact = SelectionMask(str(address), mask.fabrication)
        before = self._selects + self._reads
        try:
            outcome, _, _ = yield SelectProbe(exact)
            if outcome is not Outcome.ACK:
                return False
            read, again, first = yield ReadProbe()
            if read is not Outcome.FRAME or again != address or first is None:
                return False
            outcome, _, _ = yield SelectProbe(mask)
            if outcome is not Outcome.ACK:
                return False
            read, again, second = yield ReadProbe()
            return read is Outcome.FRAME and again == address and second == (first + 1) % 256
        finally:
            self._verifications += self._selects + self._reads - before

    def _descend(self, mask: SelectionMask, level: int, *,
                 probed: bool) -> Generator[Probe, _Reply, None]:
        """Split ``mask`` (several slaves match it) on axis ``level``: probe every digit,
        then split the digits that still hold several slaves. Only a ``probed`` parent's
        collision is taken as proof that its last ID digit holds every slave when all
        others were empty (no chain of guesses after noise; not for the fabrication number,
        which slaves without enhanced selection never match)."""
        if level >= len(self._axes):
            self._unresolved.append(mask)
            return
        axis = self._axes[level]
        results: list[tuple[SelectionMask, str, bool]] = []  # (child, state, was probed)
        for i, value in enumerate(axis.values):
            child = axis.child(mask, value)
            if (i == len(axis.values) - 1 and probed and axis.kind == "id"
                    and all(state == "none" for _, state, _ in results)):
                results.append((child, "many", False))
                break
            results.append((child, (yield from self._try(child)), True))
        answered = sum(state != "none" for _, state, _ in results)
        if axis.kind == "fab" and answered in (0, len(axis.values)):
            # no digit answers (no enhanced selection) or every digit does (the fabrication
            # number is ignored): this axis cannot split them, the hex nibbles may
            yield from self._descend(mask, self._first_hex, probed=False)
            return
        for child, state, was_probed in results:
            if state == "many":
                yield from self._descend(child, level + 1, probed=was_probed)
        if axis.kind == "hex":
            # slaves with F here match only the wildcard: carry on with F kept (re-finding
            # the others costs probes, missing one would cost a slave)
            yield from self._descend(mask, level + 1, probed=False)
        elif answered == 0:
            self._unresolved.append(mask)  # the parent's collision was not reproducible

    @property
    def _first_hex(self) -> int:
        return next((i for i, a in enumerate(self._axes) if a.kind == "hex"), len(self._axes))
