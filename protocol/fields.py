"""C field, CI field and address values as named constants (EN 13757-2 5.x, EN 13757-3 6).

C field bits: 6 = PRM (1 from master), 5 = FCB (master) / ACD (slave),
4 = FCV (master) / DFC (slave), 3-0 = function.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

# --- C field -------------------------------------------------------------------------------

PRM = 0x40
FCB = 0x20
FCV = 0x10
ACD = 0x20
DFC = 0x10
FUNCTION_MASK = 0x0F


class Function(IntEnum):
    """Link-layer functions as full C-field values with FCB=0 (docs/mbus-facts.md "Frames")."""

    SND_NKE = 0x40
    SND_UD = 0x53  # FCV=1; 0x73 with FCB=1
    SND_UD_NOFCV = 0x43  # some slaves also take 43/63
    REQ_UD2 = 0x5B  # 0x7B with FCB=1
    REQ_UD1 = 0x5A  # 0x7A with FCB=1
    RSP_UD = 0x08  # 0x18/0x28/0x38 with DFC/ACD
    ACK = 0xE5  # the single character, not a C field; listed for event naming


@dataclass(frozen=True, slots=True)
class CField:
    """A decoded C field."""

    raw: int

    @property
    def from_master(self) -> bool:
        return bool(self.raw & PRM)

    @property
    def fcb(self) -> bool:
        """Frame count bit (master) -- also ACD in slave frames."""
        return bool(self.raw & FCB)

    @property
    def fcv(self) -> bool:
        """Frame count valid (master) -- also DFC in slave frames."""
        return bool(self.raw & FCV)

    @property
    def acd(self) -> bool:
        return bool(self.raw & ACD)

    @property
    def dfc(self) -> bool:
        return bool(self.raw & DFC)

    @property
    def function(self) -> int:
        return self.raw & FUNCTION_MASK

    def is_snd_nke(self) -> bool:
        return self.raw == Function.SND_NKE

    def is_snd_ud(self, *, allow_no_fcv: bool = False) -> bool:
        base = self.raw & ~FCB
        return base == Function.SND_UD or (allow_no_fcv and base == Function.SND_UD_NOFCV)

    def is_req_ud2(self) -> bool:
        return self.raw & ~FCB == Function.REQ_UD2

    def is_req_ud1(self) -> bool:
        return self.raw & ~FCB == Function.REQ_UD1

    def is_rsp_ud(self) -> bool:
        return self.raw & ~(ACD | DFC) == Function.RSP_UD


def c_field(function: int, *, fcb: bool = False) -> int:
    """Build a master C field: ``function`` (a Function value) with FCB set if asked.

    SND_NKE never carries FCB/FCV.
    """
    if function == Function.SND_NKE:
        return int(Function.SND_NKE)
    return int(function) | (FCB if fcb else 0)


# --- CI field (EN 13757-3 table 2, docs/mbus-facts.md) ------------------------------------------------


class CI(IntEnum):
    APPLICATION_RESET = 0x50
    SET_ADDRESS = 0x51  # data 01 7A <new>
    SELECTION = 0x52
    SELECTION_56 = 0x56  # "select, MSB-first mask" (libmbus) or "deselect" (ABB, jMBus): a setting
    APPLICATION_ERROR = 0x70
    ALARM = 0x71
    RSP_VARIABLE = 0x72  # 12-byte fixed header, LSB first
    RSP_FIXED = 0x73
    RSP_VARIABLE_MSB = 0x76
    RSP_FIXED_MSB = 0x77
    RSP_SHORT_HEADER = 0x7A
    BAUD_300 = 0xB8
    BAUD_600 = 0xB9
    BAUD_1200 = 0xBA
    BAUD_2400 = 0xBB
    BAUD_4800 = 0xBC
    BAUD_9600 = 0xBD
    BAUD_19200 = 0xBE
    BAUD_38400 = 0xBF


BAUD_BY_CI: dict[int, int] = {
    0xB8: 300, 0xB9: 600, 0xBA: 1200, 0xBB: 2400,
    0xBC: 4800, 0xBD: 9600, 0xBE: 19200, 0xBF: 38400,
}
CI_BY_BAUD: dict[int, int] = {baud: ci for ci, baud in BAUD_BY_CI.items()}

# --- addresses (docs/mbus-facts.md "Frames") ----------------------------------------------------------

ADDRESS_UNCONFIGURED = 0
PRIMARY_MIN = 1
PRIMARY_MAX = 250
ADDRESS_SELECTED = 253  # the slave selected by secondary address
BROADCAST_ANSWER = 254  # every slave answers (a collision when there is more than one)
BROADCAST_NO_ANSWER = 255  # nobody answers


def is_primary(address: int) -> bool:
    """0 (unconfigured) and 1..250 are addresses a slave can own."""
    return 0 <= address <= PRIMARY_MAX
