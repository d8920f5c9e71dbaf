"""The place's guardian (rig/farm/guardian.py) without labgrid: what it does after a holder
that said ``released``, and after one that died (its run stopped, its lines made safe)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from hardware.gpio import SimGpio
from rig.config import SIM_LINES
from rig.farm.guardian import Watch, main, stop_run
from rig.farm.lines import LineService, open_line_server

TOKEN = "guardian-token-0123456789"
CHILD_S = 20.0


def _child(code: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", code + "\nprint('up', flush=True)\n"
                             "import time\ntime.sleep(60)"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "up\n"
    return proc


@pytest.mark.parametrize("code, ended", [
    ("", "ended"),
    ("import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)", "killed"),
])
def test_stop_run_terminates_then_kills_after_the_bound(code: str, ended: str) -> None:
    proc = _child(code)
    try:
        assert stop_run(proc.pid, bound=0.5) == ended
        assert proc.wait(CHILD_S) == (-15 if ended == "ended" else -9)
    finally:
        proc.kill()
        proc.wait()
    assert stop_run(proc.pid) == "already gone"


@pytest.fixture
def line_server(tmp_path: Path) -> Iterator[tuple[str, Path, LineService]]:
    service = LineService(SimGpio(), SIM_LINES)
    server = open_line_server(service, ("127.0.0.1", 0), TOKEN)
    token_file = tmp_path / "lines.token"
    token_file.write_text(TOKEN + "\n")
    try:
        yield server.url, token_file, service
    finally:
        server.shutdown()
        server.server_close()
        service.close()


def _guard(watch: Watch, *messages: str) -> tuple[int, str]:
    """The guardian on what a holder wrote before its end of input; status and answer."""
    stdout = io.StringIO()
    status = main(io.StringIO("\n".join([json.dumps(asdict(watch)), *messages, ""])), stdout)
    return status, stdout.getvalue()


def test_after_released_the_guardian_does_nothing(line_server, tmp_path, capsys) -> None:
    url, token_file, service = line_server
    service.drive(17, True)  # bus power cut on: the holder left it, but said it is done
    watch = Watch("127.0.0.1:9", 1.0, "host/someone", str(token_file), str(tmp_path / "log"))
    status, out = _guard(watch, "reservation abc", "place mbus-1", f"lines {url}", "released")
    assert (status, out) == (0, "ready\n")
    assert capsys.readouterr().err == "" and not (tmp_path / "log").exists()
    assert [line["role"] for line in service.describe()["lines"] if line["asserted"]] == [
        "bus_power_cut"]


def test_after_the_holder_died_its_run_is_stopped_and_its_lines_made_safe(
        line_server, tmp_path, capsys) -> None:
    url, token_file, service = line_server
    service.drive(17, True)
    run = _child("")
    try:
        watch = Watch("127.0.0.1:9", 1.0, "host/dead", str(token_file), str(tmp_path / "log"))
        status, out = _guard(watch, f"lines {url}", f"run {run.pid}", "what is this")
        assert run.wait(CHILD_S) == -15
    finally:
        run.kill()
        run.wait()
    assert (status, out) == (0, "ready\n")
    err = capsys.readouterr().err
    assert err == (tmp_path / "log").read_text()
    said = [line.removeprefix("mbus-rig guardian: ") for line in err.splitlines()]
    assert said[0] == "message: guardian: unknown message from the holder: 'what is this'"
    assert said[1] == "holder host/dead is gone without releasing; cleaning up"
    assert said[2] == f"pytest run {run.pid}: ended"
    assert said[3] == f"line server {url}: safe state: 5 fault line(s) released"
    assert [line for line in service.describe()["lines"] if line["asserted"]] == []


def test_a_bad_watch_line_is_one_line_and_status_2(capsys) -> None:
    assert main(io.StringIO("{not json\n"), io.StringIO()) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mbus-rig guardian: bad watch line")
