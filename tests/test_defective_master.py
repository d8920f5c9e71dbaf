"""The test master's pieces (rig/defective_master.py): what each layer does to the project's
master, on the simulated bus (the suite-level proof is tests/test_master_suite_defects.py)."""

from __future__ import annotations

import pytest

from hardware.serial_port import SerialBusPort
from hardware.sim import SimBus, Simulation, VirtualClock
from hardware.sim.meter import put_meters
from protocol.chars import RxChar
from protocol.errors import ConfigError
from protocol.frames import LongFrame, encode
from protocol.link.master import Outcome, req_ud2
from protocol.meter import heat_meter_profile
from rig.defective_master import (
    MASTER_DEFECTS,
    DefectivePort,
    TestMaster,
    _ChecksumRepair,
    check_defects,
)

_names = iter(range(1_000_000))


def _master(*defects: str, retries: int = 2):
    sim = Simulation(seed=1)
    name = f"defective-{next(_names)}"
    bus = SimBus(sim, name=name)
    meters = put_meters(bus, heat_meter_profile(), 1, first_address=1)
    clock = VirtualClock(sim)
    port = SerialBusPort(f"mbussim://{name}", clock, baud=2400)
    return TestMaster(port, clock, retries=retries, defects=defects), meters[0], bus


def test_unknown_defects_are_refused_naming_the_allowed():
    with pytest.raises(ConfigError, match="unknown master defect 'slow' \\(allowed: "
                                          "never_toggles_fcb, "):
        check_defects(["slow"])
    assert check_defects(MASTER_DEFECTS) == frozenset(MASTER_DEFECTS)


def test_without_defects_it_is_the_project_master():
    master, meter, _ = _master()
    assert type(master.link).__name__ == "MasterLink" and master.port.__class__ is SerialBusPort
    assert [r.telegram.header.id for r in master.read_all(1)] == [12345678]


def test_checksum_repair_makes_a_bad_frame_valid():
    frame = bytearray(encode(LongFrame(0x08, 1, 0x72, b"\x01\x02\x03")))
    frame[-2] ^= 0xFF
    repair = _ChecksumRepair()
    out = bytes(repair.feed(RxChar(b, 0.0)).value for b in frame)
    assert out == encode(LongFrame(0x08, 1, 0x72, b"\x01\x02\x03"))
    assert repair.feed(RxChar(0xE5, 0.0)).value == 0xE5  # an E5 passes


def test_accepts_bad_checksum():
    master, meter, _ = _master("accepts_bad_checksum")
    meter.core.arm("corrupt_checksum", 5)
    exchange = master.run(req_ud2(1))
    assert exchange.outcome is Outcome.FRAME and exchange.attempts == 1


def test_toggles_fcb_on_retry():
    master, meter, bus = _master("toggles_fcb_on_retry")
    meter.core.arm("corrupt_checksum", 1)
    assert master.run(req_ud2(1)).attempts == 2
    sent = [f.raw for f in bus.trace.frames() if f.direction == "M>S"]
    assert sent == [bytes.fromhex("10 7B 01 7C 16"), bytes.fromhex("10 5B 01 5C 16")]
    assert isinstance(master.port, DefectivePort)


@pytest.mark.parametrize("defect, sends", [("retries_too_few", 2), ("retries_too_many", 4)])
def test_retry_counts(defect, sends):
    master, meter, _ = _master(defect)
    meter.core.arm("silence", 10)
    assert master.run(req_ud2(1)).attempts == sends


def test_never_toggles_fcb():
    master, _meter, _ = _master("never_toggles_fcb")
    master.snd_nke(1)
    c_fields = [master.run(req_ud2(1)).request.data[1] for _ in range(3)]
    assert c_fields == [0x7B, 0x7B, 0x7B]


def test_gives_up_early_listens_half_the_window():
    master, _meter, _ = _master("gives_up_early")
    honest, _m, _b = _master()
    assert master.link.answer_window == pytest.approx(honest.link.answer_window / 2)


def test_reads_first_telegram_only():
    master, _meter, _ = _master("reads_first_telegram_only")
    assert len(master.read_all(1)) == 1


def test_talks_old_rate_after_switch():
    master, meter, _ = _master("talks_old_rate_after_switch")
    master.switch_baud(1, 9600)
    master.set_baud(9600)  # what the tools do next: ignored
    assert master.baud == 2400 and meter.core.baud == 9600
