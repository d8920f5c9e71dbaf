"""Addressing: primary addresses, broadcasts, set address, secondary selection and search."""

from __future__ import annotations

import pytest

from protocol import fields
from protocol.app import vif
from protocol.identity import SecondaryAddress
from protocol.link.selection import SelectionMask
from tests_hil import _wire as w
from tests_hil._population import other_byte
from tests_hil._scenario import recommended, scenario

AREA = "addressing"


def _other_addresses(own: int, used: set[int]) -> list[int]:
    """Addresses the DUT must ignore: neighbours, the ends of the range, reserved ones, and
    253 while nothing is selected."""
    sample = {0, 1, 2, own - 1, own + 1, 100, 249, 250, 251, 252, fields.ADDRESS_SELECTED}
    return sorted(a for a in sample if 0 <= a <= 253 and a != own and a not in used)


@scenario(AREA, "link.snd_nke", needs=("primary",), severity="critical",
          fails_when="anything but a single E5 comes back")
def test_snd_nke_at_primary_address_is_acknowledged(master, dut, baud):
    """SND_NKE to the DUT's primary address is acknowledged with the single character E5."""
    w.expect_ack(master, w.snd_nke(dut.address), "SND_NKE at the primary address")


@scenario(AREA, "link.primary", needs=("primary",), severity="critical",
          fails_when="no answer, a garbled answer, or an RSP_UD with another A field")
def test_req_ud2_at_primary_address_is_answered(master, dut, baud):
    """REQ_UD2 to the primary address is answered by an RSP_UD carrying that address."""
    w.expect_ack(master, w.snd_nke(dut.address), "SND_NKE before the readout")
    w.expect_answer(master, w.req_ud2(dut.address, fcb=True), "REQ_UD2 at the primary address",
                    address=dut.address)


@scenario(AREA, "link.primary", needs=("primary",), severity="critical",
          fails_when="any answer to SND_NKE or REQ_UD2 at an address that is not the DUT's")
def test_other_addresses_are_not_answered(master, dut, rig):
    """SND_NKE and REQ_UD2 to other primary addresses (neighbours, 0, 1, 250, reserved 251
    and 252, and 253 with nothing selected) get no answer at all."""
    w.deselect_all(master, rig)
    used = w.bus_addresses(rig) - {dut.address}
    for address in _other_addresses(dut.address, used):
        w.expect_silence(master, w.snd_nke(address), f"SND_NKE at {address}")
        w.expect_silence(master, w.req_ud2(address), f"REQ_UD2 at {address}")
    w.expect_answer(master, w.req_ud2(dut.address), "REQ_UD2 at the DUT's own address afterwards")


@scenario(AREA, "link.broadcast", needs=("primary",), severity="critical",
          fails_when="any character comes back to a request at address 255")
def test_broadcast_255_is_not_answered(master, dut, baud):
    """Requests broadcast to 255 are carried out but never answered: SND_NKE, REQ_UD2 and
    REQ_UD1 at 255 get no answer, and the DUT still answers at its own address."""
    w.expect_silence(master, w.snd_nke(fields.BROADCAST_NO_ANSWER), "SND_NKE at 255")
    w.expect_silence(master, w.req_ud2(fields.BROADCAST_NO_ANSWER), "REQ_UD2 at 255")
    w.expect_silence(master, w.req_ud1(fields.BROADCAST_NO_ANSWER), "REQ_UD1 at 255")
    w.expect_answer(master, w.req_ud2(dut.address), "REQ_UD2 at the DUT's address afterwards")


@scenario(AREA, "link.broadcast", needs=("primary",), severity="normal",
          fails_when="no answer, or not an E5 / RSP_UD, to a request at 254")
def test_broadcast_254_is_answered(master, dut, rig, baud):
    """With the DUT alone on the bus, SND_NKE at 254 is acknowledged with E5 and REQ_UD2 at
    254 is answered with an RSP_UD (every slave answers 254)."""
    if len(rig.duts) > 1:
        pytest.skip("254 is answered by every slave: needs the DUT alone on the bus")
    w.expect_ack(master, w.snd_nke(fields.BROADCAST_ANSWER), "SND_NKE at 254")
    w.expect_answer(master, w.req_ud2(fields.BROADCAST_ANSWER), "REQ_UD2 at 254")


@scenario(AREA, "link.address0", needs=("primary", "set_address"), severity="normal",
          fails_when="the DUT moved to address 0 does not answer there, or still answers at "
                     "its old address")
def test_address_0_is_a_primary_address(master, dut, rig):
    """Address 0 (the factory default) is an ordinary primary address: the DUT moved to 0
    answers SND_NKE and REQ_UD2 at 0 (A field 0) and no longer at its old address. The old
    address is restored afterwards."""
    if dut.address == 0:
        w.fresh_answer(master, 0, "readout at address 0")
        return
    if 0 in w.bus_addresses(rig):
        pytest.skip("another slave on the bus uses address 0")
    with w.primary_address(master, dut, 0):
        w.fresh_answer(master, 0, "readout at address 0")
        w.expect_silence(master, w.snd_nke(dut.address), "SND_NKE at the old address")
        w.expect_silence(master, w.req_ud2(dut.address), "REQ_UD2 at the old address")


@scenario(AREA, "app.set_address", needs=("primary", "set_address"), severity="critical",
          fails_when="no E5 at the old address, the old address still answers, or the new "
                     "one does not")
def test_set_primary_address(master, dut, rig, baud):
    """SND_UD CI 51 (01 7A new) is acknowledged at the old address; afterwards the old
    address is silent and the new one answers with the new A field. Restored afterwards."""
    new = w.free_address(rig)
    with w.primary_address(master, dut, new):
        w.expect_silence(master, w.snd_nke(dut.address), "SND_NKE at the old address")
        w.expect_silence(master, w.req_ud2(dut.address), "REQ_UD2 at the old address")
        w.fresh_answer(master, new, "readout at the new address")
    w.fresh_answer(master, dut.address, "readout at the restored address")


@scenario(AREA, "net.secondary", needs=("secondary",), severity="critical",
          fails_when="no E5 to the selection, or the selected DUT does not answer at 253 with "
                     "its own identity")
def test_secondary_selection_exact(master, dut, rig, baud):
    """Selection (CI 52) with the DUT's exact secondary address is acknowledged; the DUT then
    answers REQ_UD2 at 253 with an RSP_UD whose header carries that secondary address."""
    sec = w.dut_secondary(master, dut)
    w.deselect_all(master, rig)
    try:
        w.expect_ack(master, w.selection(w.exact(sec)), f"selection of {sec}")
        frame = w.expect_answer(master, w.req_ud2(fields.ADDRESS_SELECTED),
                                "REQ_UD2 at 253 after the selection")
        assert frame.data[:8] == sec.to_bytes(), (
            f"the selected slave answers with header {frame.data[:8].hex(' ')}, "
            f"expected {sec.to_bytes().hex(' ')}")
    finally:
        w.deselect_all(master, rig)


def _digit_changed(digits: str, index: int) -> str:
    return digits[:index] + str((int(digits[index]) + 1) % 10) + digits[index + 1:]


def _mask_case(sec: SecondaryAddress, case: str) -> SelectionMask:
    """Selection bytes for one row of the wildcard match table."""
    digits = f"{sec.id:08d}"
    man, ver, med = sec.manufacturer, sec.version, sec.medium
    other_man = man ^ 0x0421  # another manufacturer code: the low bit of each letter flipped
    kind, _, arg = case.partition(":")
    if kind == "id_nibble":
        i = int(arg)
        return w.mask(digits[:i] + "F" + digits[i + 1:], man, ver, med)
    table = {
        "id_all": ("FFFFFFFF", man, ver, med),
        "manufacturer": (digits, 0xFFFF, ver, med),
        "version": (digits, man, 0xFF, med),
        "medium": (digits, man, ver, 0xFF),
        "all": ("FFFFFFFF", 0xFFFF, 0xFF, 0xFF),
        "id_prefix": (digits[:4] + "FFFF", 0xFFFF, 0xFF, 0xFF),
        "wrong_last_digit": (_digit_changed(digits, 7), man, ver, med),
        "wrong_digit_rest_wild": ("FFFFFFF" + _digit_changed(digits, 7)[7], 0xFFFF, 0xFF, 0xFF),
        "wrong_first_digit_rest_wild": (_digit_changed(digits, 0)[0] + "FFFFFFF", 0xFFFF, 0xFF,
                                        0xFF),
        "wrong_manufacturer": (digits, other_man, ver, med),
        "wrong_manufacturer_rest_wild": ("FFFFFFFF", other_man, 0xFF, 0xFF),
        "wrong_version": (digits, man, other_byte(ver, 1), med),
        "wrong_version_rest_wild": ("FFFFFFFF", 0xFFFF, other_byte(ver, 1), 0xFF),
        "wrong_medium": (digits, man, ver, other_byte(med, 1)),
        "wrong_medium_rest_wild": ("FFFFFFFF", 0xFFFF, 0xFF, other_byte(med, 1)),
    }
    return w.mask(*table[kind])


WILDCARD_TABLE: list[tuple[str, bool]] = (
    [(f"id_nibble:{i}", True) for i in range(8)]
    + [("id_all", True), ("manufacturer", True), ("version", True), ("medium", True),
       ("all", True), ("id_prefix", True),
       ("wrong_last_digit", False), ("wrong_digit_rest_wild", False),
       ("wrong_first_digit_rest_wild", False), ("wrong_manufacturer", False),
       ("wrong_manufacturer_rest_wild", False), ("wrong_version", False),
       ("wrong_version_rest_wild", False), ("wrong_medium", False),
       ("wrong_medium_rest_wild", False)]
)
"""(case, matches): F in each ID nibble, whole-field wildcards, and masks that differ from
the DUT in exactly one field while the rest is exact or wildcarded."""


@pytest.mark.parametrize(("case", "matches"), WILDCARD_TABLE,
                         ids=[c.replace(":", "") for c, _ in WILDCARD_TABLE])
@scenario(AREA, "net.wildcards", needs=("secondary", "wildcard_selection"), severity="critical",
          fails_when="a matching mask is not acknowledged or does not select, or a mask that "
                     "differs in one field is acknowledged or selects")
def test_wildcard_selection_table(master, dut, rig, case, matches):
    """The wildcard match table: a mask with F in any ID nibble, FFFF manufacturer, FF
    version or FF medium selects the DUT (E5, then an answer at 253); a mask that differs in
    one ID digit, the manufacturer, the version or the medium does neither, whether the
    other fields are exact or wildcards."""
    sec = w.dut_secondary(master, dut)
    mask = _mask_case(sec, case)
    w.deselect_all(master, rig)
    try:
        if matches:
            w.expect_ack(master, w.selection(mask), f"matching selection {mask}")
            w.expect_answer(master, w.req_ud2(fields.ADDRESS_SELECTED),
                            f"REQ_UD2 at 253 after matching selection {mask}")
        else:
            w.expect_silence(master, w.selection(mask), f"non-matching selection {mask}")
            w.expect_silence(master, w.req_ud2(fields.ADDRESS_SELECTED),
                             f"REQ_UD2 at 253 after non-matching selection {mask}")
    finally:
        w.deselect_all(master, rig)


@scenario(AREA, "net.secondary", needs=("secondary",), severity="critical",
          fails_when="the non-matching selection is answered, or the DUT still answers at 253")
def test_non_matching_selection_deselects(master, dut, rig):
    """A selected DUT that receives a selection for another secondary address stays silent
    and is no longer selected: REQ_UD2 at 253 gets no answer."""
    sec = w.dut_secondary(master, dut)
    other = SecondaryAddress((sec.id + 1) % 100_000_000, sec.manufacturer, sec.version,
                             sec.medium)
    w.deselect_all(master, rig)
    w.expect_ack(master, w.selection(w.exact(sec)), f"selection of {sec}")
    w.expect_silence(master, w.selection(w.exact(other)), f"selection of {other}")
    w.expect_silence(master, w.req_ud2(fields.ADDRESS_SELECTED),
                     "REQ_UD2 at 253 after a non-matching selection")


@pytest.mark.parametrize("target", [
    "253", recommended("primary", id="primary", clause="net.snd_nke_primary")])
@scenario(AREA, "link.snd_nke", needs=("secondary",), severity="critical",
          fails_when="the DUT still answers at 253 after SND_NKE")
def test_snd_nke_deselects(master, dut, rig, target):
    """SND_NKE resets the link layer and deselects: after a selection, SND_NKE at 253 is
    acknowledged and REQ_UD2 at 253 is no longer answered. The same with SND_NKE at the DUT's
    primary address is a recommended case: the standard does not clearly demand it."""
    sec = w.dut_secondary(master, dut)
    address = fields.ADDRESS_SELECTED if target == "253" else dut.address
    w.deselect_all(master, rig)
    try:
        w.expect_ack(master, w.selection(w.exact(sec)), f"selection of {sec}")
        w.expect_ack(master, w.snd_nke(address), f"SND_NKE at {address}")
        w.expect_silence(master, w.req_ud2(fields.ADDRESS_SELECTED), "REQ_UD2 at 253 after SND_NKE")
    finally:
        w.deselect_all(master, rig)


def _fabrication_number(dut) -> int:
    """The DUT's fabrication number as declared (rig file ``fabrication``, or its profile)."""
    fab = getattr(dut, "fabrication", None)
    if fab is None:
        pytest.skip("the DUT's fabrication number is not declared (rig file [[dut]] "
                    "fabrication = N)")
    return int(fab)


def _sent_fabrication_numbers(master, dut) -> list[int]:
    """The values of the VIF 78 (fabrication number) records of a full readout."""
    master.snd_nke(dut.address)
    return [int(record.raw) for reply in master.read_all(dut.address)
            for record in reply.telegram.records
            if record.vif & 0x7F == vif.FABRICATION_NUMBER and not record.vifes]


@scenario(AREA, "net.enhanced", needs=("secondary", "enhanced_selection"), severity="normal",
          fails_when="the selection with the declared fabrication number is not acknowledged, "
                     "one with another fabrication number is, or a DUT declared to send its "
                     "fabrication number (sends_fabrication) sends none or another one")
def test_enhanced_selection(master, dut, rig):
    """Enhanced selection (the 8 mask bytes plus 0C 78 and the fabrication number, BCD)
    selects the DUT with its own fabrication number, as the rig file declares it
    (``fabrication``), and does not with another one. Only where the DUT declares that its
    RSP_UD carries the number (``sends_fabrication``) is a VIF 78 record with it required:
    EN 13757-3 does not make the record mandatory."""
    sec = w.dut_secondary(master, dut)
    fab = _fabrication_number(dut)
    wrong = (fab + 1) % 100_000_000
    w.deselect_all(master, rig)
    try:
        w.expect_silence(master, w.selection(w.exact(sec, wrong)),
                         f"enhanced selection with fabrication number {wrong}")
        w.expect_silence(master, w.req_ud2(fields.ADDRESS_SELECTED),
                         "REQ_UD2 at 253 after the wrong enhanced selection")
        w.expect_ack(master, w.selection(w.exact(sec, fab)),
                     f"enhanced selection with fabrication number {fab}")
        w.expect_answer(master, w.req_ud2(fields.ADDRESS_SELECTED),
                        "REQ_UD2 at 253 after the enhanced selection")
    finally:
        w.deselect_all(master, rig)
    if getattr(dut, "sends_fabrication", False):
        sent = _sent_fabrication_numbers(master, dut)
        assert fab in sent, (
            f"the DUT is declared to send its fabrication number {fab:08d}, but its readout "
            + (f"carries {', '.join(f'{n:08d}' for n in sent)}" if sent
               else "carries no fabrication number record (VIF 78)"))


def _ci56_reading(dut) -> str:
    profile = getattr(dut, "profile", None)
    link = getattr(profile, "link", None)
    reading = getattr(link, "ci56", None)
    if reading is None:
        pytest.skip("the DUT's CI 56 reading is not configured (profile [link] ci56)")
    return str(reading)


@scenario(AREA, "net.ci56", needs=("secondary",), severity="minor",
          fails_when="CI 56 does not select (reading \"select\") or does not deselect (reading "
                     "\"deselect\")")
def test_ci56_per_configured_reading(master, dut, rig):
    """CI 56 as the DUT's profile reads it. "select": a CI 56 selection with the mask sent
    MSB first is acknowledged and selects. "deselect": a CI 56 frame with the DUT's mask
    sent to 253 deselects a selected DUT."""
    reading = _ci56_reading(dut)
    sec = w.dut_secondary(master, dut)
    mask = w.exact(sec)
    w.deselect_all(master, rig)
    try:
        if reading.startswith("select"):
            w.expect_ack(master, w.selection(mask, ci=fields.CI.SELECTION_56),
                         "CI 56 selection (mask MSB first)")
            w.expect_answer(master, w.req_ud2(fields.ADDRESS_SELECTED),
                            "REQ_UD2 at 253 after the CI 56 selection")
        else:
            w.expect_ack(master, w.selection(mask), "CI 52 selection")
            w.ask(master, w.snd_ud(fields.ADDRESS_SELECTED, fields.CI.SELECTION_56))
            w.expect_silence(master, w.req_ud2(fields.ADDRESS_SELECTED),
                             "REQ_UD2 at 253 after CI 56 (deselect)")
    finally:
        w.deselect_all(master, rig)


@scenario(AREA, "net.search", needs=("secondary", "wildcard_selection"), severity="critical",
          fails_when="a slave on the bus is missing from the search result, or the result "
                     "names a slave that is not there")
def test_secondary_search_finds_every_slave(master, dut, rig):
    """A wildcard secondary search finds every slave on the bus (the DUT among them) and
    nothing else."""
    w.deselect_all(master, rig)
    result = master.search_secondary()
    found = set(result.found)
    expected = set(w.bus_secondaries(rig)) | {w.dut_secondary(master, dut)}
    assert expected <= found, f"the search missed {', '.join(sorted(map(str, expected - found)))}"
    assert found <= expected, f"the search reports slaves not on the bus: " \
                              f"{', '.join(sorted(map(str, found - expected)))}"
