"""The master tools' argument layer: a bad argument exits 2 naming it and the allowed values."""

from __future__ import annotations

import pytest

from protocol.identity import SecondaryAddress, manufacturer_code
from rig.cli import main
from rig.tools import options


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "argument", "allowed"),
    [
        (["read", "-d", "sim", "--address", "251"], "--address", "0-250"),
        (["read", "-d", "sim", "--address", "-1"], "--address", "0-250"),
        (["read", "-d", "sim", "--address", "five"], "--address", "0-250"),
        (["ping", "-d", "sim", "--address", "1", "--baud", "2401"], "--baud", "300, 600"),
        (["ping", "-d", "sim", "--address", "1", "--baud", "115200"], "--baud", "38400"),
        (["ping", "-d", "sim", "--address", "1", "--retries", "10"], "--retries", "0-9"),
        (["ping", "-d", "sim", "--address", "1", "--timeout", "0"], "--timeout", "more than 0"),
        (["scan", "-d", "sim", "--secondary", "--mask", "12345"], "--mask", "16 hex digits"),
        (["scan", "-d", "sim", "--secondary", "--mask", "1234567G2D2C0104"], "--mask", "hex digit"),
        (["scan", "-d", "sim", "--secondary", "--mask", "1234567A2D2C0104"], "--mask", "0-9"),
        (["select", "-d", "sim", "--mask", "FFFF"], "--mask", "16 hex digits"),
        (["read", "-d", "sim", "--secondary", "1234FFFF2D2C0104"], "--secondary", "wildcard"),
        (["set-address", "-d", "sim", "--address", "1", "--new", "251"], "--new", "0-250"),
        (["switch-baud", "-d", "sim", "--address", "1", "--to", "1000"], "--to", "2400"),
        (["scan", "-d", "sim", "--range", "10-5"], "--range", "A-B"),
        (["reset", "-d", "sim", "--address", "1", "--subcode", "1FF"], "--subcode", "00-FF"),
    ],
)
def test_bad_argument_exits_2_naming_argument_and_allowed_values(
    capsys: pytest.CaptureFixture[str], argv: list[str], argument: str, allowed: str
) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert out == ""
    assert argument in err
    assert allowed in err
    assert "Traceback" not in err


def test_target_is_required_and_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "read", "-d", "sim")
    assert code == 2 and "--address" in err and "--secondary" in err
    code, _, err = run_cli(capsys, "read", "-d", "sim", "--address", "1",
                           "--secondary", "123456782D2C0104")
    assert code == 2 and "not allowed with" in err


def test_device_required_without_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(options.DEVICE_ENV, raising=False)
    code, _, err = run_cli(capsys, "ping", "--address", "1")
    assert code == 2 and "--device" in err


@pytest.mark.parametrize("device", ["sim:0", "sim:251", "sim:x"])
def test_bad_sim_device_exits_2(capsys: pytest.CaptureFixture[str], device: str) -> None:
    code, out, err = run_cli(capsys, "ping", "-d", device, "--address", "1")
    assert code == 2
    assert "--device" in err and "1 <= N <= 250" in err
    assert out == ""


def test_profile_only_on_sim(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "ping", "-d", "/dev/null-nothing", "--address", "1",
                           "--profile", "x.toml")
    assert code == 2 and "--profile" in err


def test_value_parsers_accept_good_values() -> None:
    assert options.address("253") == 253
    assert options.address("0x10") == 16
    assert options.baud("9600") == 9600
    assert options.mask(" 1234ffff 2d2c ff ff ") == "1234FFFF2D2CFFFF"
    kam = SecondaryAddress(12345678, manufacturer_code("KAM"), 1, 4)
    assert options.secondary(str(kam)) == kam
    assert options.timeout("0.5") == 0.5
