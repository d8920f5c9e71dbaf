"""``mbus-rig agent`` argument errors: one line, the right exit status, no traceback."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from protocol.errors import ConfigError
from rig.cli import main
from rig.commands.agent import parse_listen


@pytest.fixture
def token(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("cli-test-token-0123456789\n")
    path.chmod(0o600)
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["agent", *args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("listen", "why"), [
    ("8750", "give HOST:PORT"), (":8750", "give HOST:PORT"), ("h:x", "not a number"),
    ("h:70000", "out of range"),
])
def test_bad_listen(listen: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        parse_listen(listen)


def test_listen_forms() -> None:
    assert parse_listen("0.0.0.0:8750") == ("0.0.0.0", 8750)
    assert parse_listen("[::1]:0") == ("::1", 0)


def test_missing_token_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = run(capsys, "--port", "loop://", "--token-file", str(tmp_path / "none"))
    assert code == 2 and "token file" in err and "Traceback" not in err


def test_no_such_serial_port(capsys: pytest.CaptureFixture[str], token: Path) -> None:
    code, err = run(capsys, "--port", "/dev/ttyNOSUCH9", "--token-file", str(token),
                    "--listen", "127.0.0.1:0")
    assert code == 1 and "serial port /dev/ttyNOSUCH9: no such port" in err


def test_baud_not_in_profile(capsys: pytest.CaptureFixture[str], token: Path) -> None:
    code, err = run(capsys, "--port", "loop://", "--token-file", str(token), "--baud", "600")
    assert code == 2 and "--baud 600: not a rate of profile" in err


def test_listen_address_in_use(capsys: pytest.CaptureFixture[str], token: Path) -> None:
    master, slave = os.openpty()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        try:
            code, err = run(capsys, "--port", os.ttyname(slave), "--token-file", str(token),
                            "--listen", f"127.0.0.1:{port}")
        finally:
            os.close(master)
            os.close(slave)
    assert code == 2 and "cannot listen there" in err


def test_world_readable_token_warns(capsys: pytest.CaptureFixture[str], token: Path) -> None:
    token.chmod(0o644)
    code, err = run(capsys, "--port", "/dev/ttyNOSUCH9", "--token-file", str(token))
    assert "readable by every user" in err and code == 1


def test_pf_pin_on_simulated_gpio_reads_healthy(tmp_path: Path) -> None:
    from tests.test_agent_hostile import TOKEN, request, start_agent

    running, master, slave = start_agent(tmp_path, "--gpio", "sim", "--pf-pin", "16")
    try:
        status, _, body = request(running, "GET", "/power-fail")
        assert status == 200 and body == {"wired": True, "asserted": False, "pin": 16,
                                          "active_high": False}
        assert request(running, "GET", "/status")[2]["powered"] is True
    finally:
        running.proc.terminate()
        _out, err = running.proc.communicate(timeout=10)
        os.close(master)
        os.close(slave)
    assert "simulated GPIO" in err and TOKEN not in err
