"""``mbus-rig scan``: find the slaves on a bus.

Primary scan (default): SND_NKE to every address of ``--range``; an E5 is confirmed with
REQ_UD2, which names the slave. Two slaves at one address ack with E5s that can merge into
one clean E5, but their RSP_UDs differ, so the confirmation shows a collision: it is reported
as a collision, never as one device (libmbus's ``mbus-serial-scan`` reports one device).
Waiting uses the standard's response window (330 bit times + 50 ms), not a fixed timeout.

Secondary scan (``--secondary``): the link layer's SecondarySearch under ``--mask``: every
slave is found, including those whose E5s merge cleanly, those that differ only in hex
positions of manufacturer, version or medium, and collisions at the last position. On a
terminal, the progress line shows the probes made and the slaves found so far.

Interrupted (Ctrl-C), a scan prints what it found so far, says where it stopped, and exits
with status 130.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from protocol.app import decode_telegram
from protocol.errors import ConfigError, MBusRigError
from protocol.fields import PRIMARY_MAX
from protocol.link import master as link
from protocol.link.master import Outcome
from protocol.link.search import SearchResult
from rig.tools import options
from rig.tools.bus import (
    BusSession,
    add_command,
    identity_of_secondary,
    identity_row,
    run_on_bus,
)
from rig.tools.output import hex_bytes, note, print_json, print_table, progress

EXIT_INTERRUPTED = 130


def _address_range(text: str) -> range:
    allowed = f"A or A-B with 0 <= A <= B <= {PRIMARY_MAX}"
    parts = text.split("-")
    try:
        low, high = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else (-1, -1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a range (allowed: {allowed})") from None
    if not 0 <= low <= high <= PRIMARY_MAX:
        raise argparse.ArgumentTypeError(f"{text!r} is not a range (allowed: {allowed})")
    return range(low, high + 1)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers, "scan", scan, target=False, raw_description=True,
        help="find slaves by primary address, or by secondary address (--secondary)",
        description=__doc__,
        examples=("mbus-rig scan -d /dev/ttyUSB0 -b 2400",
                  "mbus-rig scan -d /dev/ttyUSB0 --secondary --mask 1234FFFFFFFFFFFF",
                  "mbus-rig scan -d sim:5 --range 1-10 --json"))
    parser.add_argument("--secondary", action="store_true",
                        help="search by secondary address instead of primary address")
    parser.add_argument("-m", "--mask", type=options.mask, default="F" * 16, metavar="MASK",
                        help=f"--secondary only: search under this mask ({options.MASK_HELP}; "
                        "default: all F)")
    parser.add_argument("--range", type=_address_range, default=range(0, PRIMARY_MAX + 1),
                        metavar="A-B", help=f"primary scan only: addresses to try (default: 0-{PRIMARY_MAX})")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Check the scan's options before opening the bus."""
    if args.secondary and args.range != range(0, PRIMARY_MAX + 1):
        raise ConfigError("--range applies to the primary scan only")
    if not args.secondary and args.mask != "F" * 16:
        raise ConfigError("--mask applies to the secondary scan (--secondary) only")
    return run_on_bus(scan, args)


def scan(bus: BusSession, args: argparse.Namespace) -> int:
    return scan_secondary(bus, args) if args.secondary else scan_primary(bus, args)


# --- primary ---------------------------------------------------------------------------------


@dataclass
class PrimaryFinding:
    address: int
    status: str  # "ok", "collision", "no RSP_UD", "bad answer"
    slave: dict[str, Any] | None = None
    detail: str = ""
    response_delay_ms: float | None = None


@dataclass
class PrimaryScan:
    findings: list[PrimaryFinding] = field(default_factory=list)
    bus_time_s: float = 0.0
    requests: int = 0
    interrupted_at: int | None = None  # the address being probed when Ctrl-C came


def probe_primary(bus: BusSession, address: int) -> PrimaryFinding | None:
    """SND_NKE, then REQ_UD2 to confirm: None when nothing answered at ``address``.

    Two slaves at one address: their E5s can merge into one clean E5, but their RSP_UDs
    differ, so the confirmation comes back garbled, the same way on every attempt (or with
    parity/framing errors when they are not bit-aligned). Noise garbles differently each
    time, and a retry usually gets through.
    """
    from rig.master import Reply

    ack = bus.master.run(link.snd_nke(address))
    if ack.outcome is Outcome.NONE:
        return None
    if ack.outcome is not Outcome.ACK:
        status = "collision" if ack.several_answered else "bad answer"
        return PrimaryFinding(address, status, detail=f"SND_NKE answered {hex_bytes(ack.raw)}")
    delay = bus.delay_ms(ack)
    answer = bus.master.run(link.req_ud2(address))
    if answer.outcome is Outcome.NONE:
        return PrimaryFinding(address, "no RSP_UD", response_delay_ms=delay,
                              detail="acknowledges SND_NKE, does not answer REQ_UD2")
    if answer.outcome is Outcome.FRAME:
        try:
            reply = Reply(answer, decode_telegram(answer.frame))
        except (MBusRigError, TypeError) as exc:
            return PrimaryFinding(address, "bad answer", response_delay_ms=delay, detail=str(exc))
        return PrimaryFinding(address, "ok", slave=identity_row(reply), response_delay_ms=delay)
    if answer.outcome is Outcome.WRONG_ADDRESS:
        return PrimaryFinding(address, "bad answer", response_delay_ms=delay,
                              detail=f"the RSP_UD names address {answer.received_address}: "
                              f"{hex_bytes(answer.raw)}")
    if answer.several_answered:
        return PrimaryFinding(address, "collision", response_delay_ms=delay,
                              detail=f"E5, then garbled RSP_UDs on every attempt: "
                              f"{hex_bytes(answer.raw)}")
    return PrimaryFinding(address, "bad answer", response_delay_ms=delay,
                          detail=f"{answer.error}: {hex_bytes(answer.raw)}")




def run_primary_scan(bus: BusSession, addresses: range) -> PrimaryScan:
    """Probe ``addresses`` in turn; Ctrl-C ends the scan with what it found so far."""
    result = PrimaryScan()
    start = bus.clock.now()
    with progress(f"primary scan at {bus.baud} baud", len(addresses)) as tick:
        for address in addresses:
            try:
                finding = probe_primary(bus, address)
            except KeyboardInterrupt:
                result.interrupted_at = address
                break
            if finding is not None:
                result.findings.append(finding)
            tick(description=f"address {address}: {len(result.findings)} found")
    result.bus_time_s = bus.clock.now() - start
    return result


def _interrupted(where: str) -> int:
    note(f"interrupted {where}: the results above are what was found until then")
    return EXIT_INTERRUPTED


def scan_primary(bus: BusSession, args: argparse.Namespace) -> int:
    scan = run_primary_scan(bus, args.range)
    last = args.range.stop - 1 if scan.interrupted_at is None else scan.interrupted_at - 1
    stopped = f"at address {scan.interrupted_at}"
    if args.json:
        print_json({
            "device": bus.device, "baud": bus.baud, "scan": "primary",
            "addresses": [args.range.start, last],
            "found": [_finding_json(f) for f in scan.findings],
            "bus_time_s": round(scan.bus_time_s, 6),
            "interrupted": scan.interrupted_at is not None,
        })
        return 0 if scan.interrupted_at is None else _interrupted(stopped)
    if not scan.findings:
        note(f"no slave answered at addresses {args.range.start}-{last} "
             f"({bus.baud} baud, {bus.retries} retries)")
        return 0 if scan.interrupted_at is None else _interrupted(stopped)
    part = ("" if scan.interrupted_at is None
            else f", addresses {args.range.start}-{last} (interrupted)")
    rows = []
    for f in scan.findings:
        s = f.slave or {}
        rows.append((f.address, f.status, s.get("secondary", ""), s.get("manufacturer", ""),
                     s.get("version", ""), s.get("medium", ""),
                     "" if f.response_delay_ms is None else f"{f.response_delay_ms:.1f}", f.detail))
    print_table(("address", "status", "secondary", "manufacturer", "version", "medium",
                 "delay ms", "detail"), rows,
                title=f"primary scan, {bus.device}, {bus.baud} baud{part}: "
                f"{len(scan.findings)} found")
    return 0 if scan.interrupted_at is None else _interrupted(stopped)


def _finding_json(f: PrimaryFinding) -> dict[str, Any]:
    return {"address": f.address, "status": f.status, "slave": f.slave,
            "response_delay_ms": None if f.response_delay_ms is None else round(f.response_delay_ms, 3),
            "detail": f.detail or None}


# --- secondary -------------------------------------------------------------------------------


def run_secondary_scan(bus: BusSession, mask: str) -> tuple[SearchResult, bool]:
    """The search under ``mask`` with a progress line (probes, slaves found); Ctrl-C ends
    it with what it found so far. (result, interrupted)."""
    title = f"secondary search under {mask} at {bus.baud} baud"
    so_far = SearchResult((), 0, 0, ())
    with progress(title, None) as tick:

        def seen(result: SearchResult) -> None:
            nonlocal so_far
            so_far = result
            tick(0, description=f"{title}: {result.probes} probes, {len(result.slaves)} found")

        try:
            return bus.search_secondary(mask, progress=seen), False
        except KeyboardInterrupt:
            return so_far, True


def scan_secondary(bus: BusSession, args: argparse.Namespace) -> int:
    start = bus.clock.now()
    result, interrupted = run_secondary_scan(bus, args.mask)
    bus_time = bus.clock.now() - start
    # slaves with the same secondary address are told apart by their fabrication number
    # (the fabrication-number mask, F = wildcard, that selected each one alone)
    found = [{**identity_of_secondary(s.address), "fabrication": s.fabrication}
             for s in sorted(result.slaves, key=str)]
    unresolved = [str(m) for m in result.unresolved]
    if args.json:
        print_json({"device": bus.device, "baud": bus.baud, "scan": "secondary", "mask": args.mask,
                    "found": found, "unresolved": unresolved, "probes": result.probes,
                    "selects": result.selects, "reads": result.reads,
                    "bus_time_s": round(bus_time, 6), "interrupted": interrupted})
        return _interrupted(f"after {result.probes} probes") if interrupted else 0
    for mask in unresolved:
        note(f"collision under {mask}: several slaves match it and none of the selections "
             "separated them (same secondary address and fabrication number?)")
    if not found:
        if not unresolved:
            note(f"no slave matched {args.mask} ({bus.baud} baud, {result.probes} probes)")
        return _interrupted(f"after {result.probes} probes") if interrupted else 0
    print_table(("secondary", "id", "manufacturer", "version", "medium", "fabrication"),
                [(f["secondary"], f["id"], f["manufacturer"], f["version"], f["medium"],
                  f["fabrication"] or "-") for f in found],
                title=f"secondary scan, {bus.device}, {bus.baud} baud, mask {args.mask}: "
                f"{len(found)} found, {result.probes} probes")
    return _interrupted(f"after {result.probes} probes") if interrupted else 0
