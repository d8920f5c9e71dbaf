"""EN 13757-2 link layer: slave and master engines, selection masks, secondary search.

All sans-I/O (docs/design.md): engines take received characters and the time, and return what to
send and what happened.
"""

from .master import (
    Ack,
    Answer,
    Attempt,
    Collision,
    Garbled,
    LateAnswer,
    MasterEvent,
    MasterLink,
    NoAnswer,
    Outcome,
    Request,
    Retrying,
    Send,
    WrongAddress,
    answer_address,
    raw_request,
    req_ud1,
    req_ud2,
    snd_nke,
    snd_ud,
)
from .search import FoundSlave, Probe, ReadProbe, SearchResult, SecondarySearch, SelectProbe
from .selection import ALL, SelectionMask
from .slave import (
    CI56_DESELECT,
    CI56_MODES,
    CI56_SELECT,
    DEFECTS,
    MeterApplication,
    RspUd,
    SetBaud,
    SlaveAction,
    SlaveLink,
    SlaveSettings,
    Transmit,
)

__all__ = [
    "Ack", "Answer", "Attempt", "Collision", "FoundSlave", "Garbled", "LateAnswer",
    "MasterEvent", "MasterLink", "NoAnswer",
    "Outcome", "Probe", "ReadProbe", "Request", "Retrying", "SearchResult", "SecondarySearch",
    "SelectProbe", "Send", "WrongAddress", "answer_address", "raw_request", "req_ud1", "req_ud2", "snd_nke", "snd_ud",
    "ALL", "CI56_DESELECT", "CI56_MODES", "CI56_SELECT", "DEFECTS", "MeterApplication", "RspUd",
    "SelectionMask", "SetBaud", "SlaveAction", "SlaveLink", "SlaveSettings", "Transmit",
]
