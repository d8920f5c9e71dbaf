"""FCB/FCV: a toggled FCB fetches the next telegram, a repeated one repeats the last, and
SND_NKE starts over (docs/mbus-facts.md "Link-layer behaviour")."""

from __future__ import annotations

from protocol.app import decode_telegram
from protocol.frames import encode
from tests_hil import _wire as w
from tests_hil._scenario import scenario

AREA = "fcb"

MAX_PAGES = 64
"""A readout longer than this is taken as endless (a slave that never advances)."""


def _more_follow(frame) -> bool:
    """DIF 1F: more records follow in the next telegram."""
    return bool(decode_telegram(frame).more_records_follow)


def _read_pages(master, address: int) -> list[bytes]:
    """SND_NKE, then REQ_UD2 with FCB 1, 0, 1, ... until a telegram without DIF 1F."""
    w.expect_ack(master, w.snd_nke(address), "SND_NKE before the readout")
    pages: list[bytes] = []
    fcb = True
    while True:
        frame = w.expect_answer(master, w.req_ud2(address, fcb=fcb),
                                f"REQ_UD2 for telegram {len(pages) + 1} (FCB {int(fcb)})")
        pages.append(w.page_records(frame))
        if not _more_follow(frame):
            return pages
        assert len(pages) < MAX_PAGES, f"the readout did not end after {MAX_PAGES} telegrams"
        fcb = not fcb


@scenario(AREA, "link.fcb", needs=("fcb", "multi_telegram"), severity="critical",
          fails_when="a telegram is repeated or skipped on a toggled FCB, the readout never "
                     "ends, or the master's readout differs from the telegram-by-telegram one")
def test_multi_telegram_readout_collects_every_page_once(master, dut):
    """Toggling FCB walks through every telegram of a multi-telegram readout once: each
    telegram but the last ends with DIF 1F, no telegram comes twice, as many come as the
    DUT's profile has pages (where it is known), and the master's own readout
    (``read_all``) collects the same number."""
    pages = _read_pages(master, dut.address)
    assert len(pages) >= 2, "the DUT claims multi-telegram readout but sent one telegram"
    profile_pages = getattr(getattr(dut, "profile", None), "pages", None)
    if profile_pages is not None:
        assert len(pages) == len(profile_pages), (
            f"{len(pages)} telegrams read, the DUT's profile has {len(profile_pages)}")
    repeated = [i + 1 for i in range(1, len(pages)) if pages[i] == pages[i - 1]]
    assert not repeated, f"telegram(s) {repeated} repeat the one before on a toggled FCB"
    master.snd_nke(dut.address)
    replies = master.read_all(dut.address)
    got = [w.page_records(r.frame) for r in replies]
    assert len(got) == len(pages), f"read_all collected {len(got)} telegrams, expected {len(pages)}"


@scenario(AREA, "link.fcb", needs=("fcb",), severity="critical",
          fails_when="a REQ_UD2 with the FCB of the previous one brings a different telegram")
def test_repeated_fcb_repeats_the_telegram(master, dut):
    """A REQ_UD2 repeated with the same FCB (as after a lost answer) is answered with the
    very same telegram, byte for byte; with multi-telegram readout, the next toggle then
    brings the next telegram."""
    w.expect_ack(master, w.snd_nke(dut.address), "SND_NKE")
    first = w.expect_answer(master, w.req_ud2(dut.address, fcb=True), "REQ_UD2 FCB 1")
    again = w.expect_answer(master, w.req_ud2(dut.address, fcb=True), "REQ_UD2 FCB 1 repeated")
    assert encode(again) == encode(first), (
        f"the repeated FCB brought another telegram:\n  {encode(first).hex(' ')}\n"
        f"  {encode(again).hex(' ')}")
    if "multi_telegram" in dut.capabilities and _more_follow(first):
        nxt = w.expect_answer(master, w.req_ud2(dut.address, fcb=False), "REQ_UD2 FCB 0")
        assert w.page_records(nxt) != w.page_records(first), (
            "the toggled FCB brought the same telegram again")


@scenario(AREA, "link.fcb", needs=("fcb", "multi_telegram"), severity="normal",
          fails_when="after SND_NKE, REQ_UD2 with FCB 1 does not bring the first telegram of "
                     "a readout (another record layout, identity or DIF 1F than the first "
                     "telegram had)")
def test_snd_nke_resets_fcb(master, dut):
    """SND_NKE resets the FCB expectation: after reading two telegrams (FCB 1, then 0),
    SND_NKE and REQ_UD2 with FCB 1 bring the first telegram of a readout again, not the
    third. Compared is the telegram's position in the readout (its header identity, record
    layout and DIF 1F), not its values: a fresh readout's counters may have moved."""
    w.expect_ack(master, w.snd_nke(dut.address), "SND_NKE")
    first = w.expect_answer(master, w.req_ud2(dut.address, fcb=True), "REQ_UD2 FCB 1")
    assert _more_follow(first), "the DUT claims multi-telegram readout but sent one telegram"
    w.expect_answer(master, w.req_ud2(dut.address, fcb=False), "REQ_UD2 FCB 0")
    w.expect_ack(master, w.snd_nke(dut.address), "the second SND_NKE")
    restart = w.expect_answer(master, w.req_ud2(dut.address, fcb=True), "REQ_UD2 FCB 1 after it")
    w.expect_same_shape(restart, first, "after SND_NKE, REQ_UD2 FCB 1 (the readout must start "
                                        "again at its first telegram)")
