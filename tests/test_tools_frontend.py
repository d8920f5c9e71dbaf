"""The master tools as a user meets them: ping --json when nothing answers, shipped profile
names for --profile, the simulated meters' rates, the secondary scan's progress, and a scan
interrupted with Ctrl-C (issue 12 point 3)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from rig.cli import main
from rig.commands import scan as scan_command
from rig.tools import bus as toolbus


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def interrupt_after(monkeypatch: pytest.MonkeyPatch, requests: int) -> None:
    """Ctrl-C arrives while the master makes request number ``requests + 1``."""
    original = toolbus.open_sim

    def open_sim(*args: Any, **kwargs: Any) -> toolbus.BusSession:
        session = original(*args, **kwargs)
        real_run = session.master.run
        made = 0

        def run_or_interrupt(request: Any) -> Any:
            nonlocal made
            made += 1
            if made > requests:
                raise KeyboardInterrupt
            return real_run(request)

        session.master.run = run_or_interrupt
        return session

    monkeypatch.setattr(toolbus, "open_sim", open_sim)


def test_ping_json_when_nothing_answers(capsys):
    code, out, err = run(capsys, "ping", "-d", "sim", "-a", "7", "-r", "1", "--json")
    assert code == 1
    data = json.loads(out)
    assert data["answer"] is None and data["response_delay_ms"] is None
    assert data["attempts"] == 2 and data["target"] == "address 7" and data["baud"] == 2400
    assert data["error"].startswith("nothing answered at address 7 (2400 baud, 2 attempts)")
    assert err.strip() == f"mbus-rig ping: {data['error']}"
    code, out, _ = run(capsys, "ping", "-d", "sim", "-a", "1", "--json")
    assert code == 0 and json.loads(out)["error"] is None


def test_read_takes_a_shipped_profile_name_as_virtual_meter_does(capsys):
    code, out, err = run(capsys, "read", "-d", "sim", "--profile", "multi-telegram", "-a", "1",
                         "--all-telegrams", "--json")
    assert code == 0, err
    telegrams = [json.loads(line) for line in out.splitlines()]
    assert len(telegrams) > 1 and telegrams[0]["header"]["manufacturer"] == "WTR"
    code, _, err = run(capsys, "read", "-d", "sim", "--profile", "no-such-profile", "-a", "1")
    assert code == 2
    assert err.strip() == ("mbus-rig read: --profile no-such-profile: no such file, nor a "
                           "shipped profile (shipped: heat-meter, multi-telegram)")


@pytest.mark.parametrize("rate, found", [(38400, False), (9600, True), (300, True)])
def test_sim_meters_listen_only_at_their_profiles_rates(capsys, rate, found):
    """The built-in heat meter supports 300, 2400 and 9600 Bd only."""
    code, out, err = run(capsys, "scan", "-d", "sim", "-b", str(rate), "--range", "0-3",
                         "--json")
    assert code == 0
    assert bool(json.loads(out)["found"]) is found
    note = f"sim: profile heat-meter does not support {rate} baud"
    assert (note in err) is not found


def test_secondary_scan_progress_shows_probes_and_slaves_found(capsys, monkeypatch):
    shown: list[str] = []

    @contextmanager
    def progress(description: str, total: int | None) -> Iterator[Callable[..., None]]:
        shown.append(description)

        def tick(advance: int = 1, *, description: str | None = None) -> None:
            if description is not None:
                shown.append(description)

        yield tick

    monkeypatch.setattr(scan_command, "progress", progress)
    code, out, _ = run(capsys, "scan", "-d", "sim:3", "--secondary", "--json")
    assert code == 0
    data = json.loads(out)
    assert len(shown) == data["probes"] + 1  # the title, then one line per probe
    assert shown[1].endswith(": 1 probes, 0 found")
    assert shown[-1].endswith(f": {data['probes']} probes, 3 found")
    founds = [int(s.rsplit(", ", 1)[1].split()[0]) for s in shown[1:]]
    assert founds == sorted(founds) and "?" not in "".join(shown)


def test_interrupted_primary_scan_prints_what_it_found(capsys, monkeypatch):
    # address 0: SND_NKE; 1 and 2: SND_NKE + REQ_UD2; Ctrl-C during address 3's SND_NKE
    interrupt_after(monkeypatch, 5)
    code, out, err = run(capsys, "scan", "-d", "sim:3", "--range", "0-10")
    assert code == 130
    assert out.splitlines()[0] == "primary scan, sim:3, 2400 baud, addresses 0-2 (interrupted): 2 found"
    assert [line.split()[0] for line in out.splitlines()[3:]] == ["1", "2"]
    assert err.strip() == ("interrupted at address 3: the results above are what was found "
                           "until then")
    code, out, _ = run(capsys, "scan", "-d", "sim:3", "--range", "0-10", "--json")
    data = json.loads(out)
    assert code == 130 and data["interrupted"] and data["addresses"] == [0, 2]
    assert [f["address"] for f in data["found"]] == [1, 2]


def test_interrupted_secondary_scan_prints_what_it_found(capsys, monkeypatch):
    complete = run(capsys, "scan", "-d", "sim:3", "--secondary", "--json")[1]
    everyone = {f["secondary"] for f in json.loads(complete)["found"]}
    interrupt_after(monkeypatch, 20)
    code, out, err = run(capsys, "scan", "-d", "sim:3", "--secondary", "--json")
    assert code == 130
    data = json.loads(out)
    assert data["interrupted"] and data["probes"] == 20
    found = {f["secondary"] for f in data["found"]}
    assert found and found < everyone
    assert err.strip() == ("interrupted after 20 probes: the results above are what was "
                           "found until then")
