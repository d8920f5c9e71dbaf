"""``mbus-rig decode``: JSON lines out, one clear stderr line per failure, exit status."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rig.cli import main

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "libmbus"
ACW = CORPUS / "test-frames" / "ACW_Itron-BM-plus-m.hex"
TOO_MANY_DIFE = CORPUS / "error-frames" / "too_many_dife.hex"

TOP_KEYS = {"frame", "header", "records", "more_records_follow"}
FRAME_KEYS = {"type", "c", "a", "ci"}
HEADER_KEYS = {"id", "manufacturer", "version", "medium", "medium_name", "access_number",
               "status", "signature"}
RECORD_KEYS = {"function", "storage", "tariff", "subunit", "quantity", "unit", "value", "raw"}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], list[str]]:
    code = main(["decode", *args])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


def test_corpus_telegram_gives_one_json_line_of_the_documented_shape(capsys):
    code, out, err = run(capsys, str(ACW))
    assert (code, err, len(out)) == (0, [], 1)
    telegram = json.loads(out[0])
    assert set(telegram) == TOP_KEYS
    assert set(telegram["frame"]) == FRAME_KEYS
    assert set(telegram["header"]) == HEADER_KEYS
    assert all(set(r) == RECORD_KEYS for r in telegram["records"])
    assert telegram["frame"] == {"type": "long", "c": 0x08, "a": 0x08, "ci": 0x72}
    assert telegram["header"]["id"] == "11490378"
    assert telegram["header"]["manufacturer"] == "ACW"
    volume = telegram["records"][1]
    assert (volume["quantity"], volume["unit"], volume["value"], volume["raw"]) == (
        "Volume", "m^3", 54.321, 54321)
    assert telegram["records"][4]["value"] == "2014-03-13T11:11:00"
    assert telegram["records"][-1]["value"] == "00017513"


def test_a_bad_telegram_names_file_check_and_offset_and_the_next_file_still_decodes(
        capsys, tmp_path):
    code, out, err = run(capsys, str(TOO_MANY_DIFE), str(ACW))
    assert code == 1
    assert len(out) == 1 and json.loads(out[0])["header"]["manufacturer"] == "ACW"
    assert len(err) == 1
    assert str(TOO_MANY_DIFE) in err[0]
    assert "too many DIFEs" in err[0] and "at byte 40" in err[0]
    assert "Traceback" not in err[0]


def test_frame_errors_are_reported_with_their_check(capsys, tmp_path):
    bad = tmp_path / "bad_checksum.hex"
    bad.write_text("68 03 03 68 08 01 70 00 16")  # CS should be 79
    code, out, err = run(capsys, str(bad))
    assert (code, out) == (1, [])
    assert err == [f"mbus-rig decode: {bad}: frame 1 (file byte 0): checksum: CS is 00, "
                   f"sum of C..data is 79 (at byte 7)"]


def test_unreadable_and_non_hex_files_give_clear_messages(capsys, tmp_path):
    missing = tmp_path / "missing.hex"
    text = tmp_path / "text.hex"
    text.write_text("hello world")
    empty = tmp_path / "empty.hex"
    empty.write_text("")
    code, out, err = run(capsys, str(missing), str(text), str(tmp_path), str(empty), str(ACW))
    assert code == 1
    assert len(out) == 1  # ACW still decoded
    assert err[0] == f"mbus-rig decode: {missing}: cannot read: No such file or directory"
    assert err[1].startswith(f"mbus-rig decode: {text}: not hex bytes: ")
    assert err[2].startswith(f"mbus-rig decode: {tmp_path}: cannot read: ")
    assert err[3] == f"mbus-rig decode: {empty}: no bytes"


def test_several_frames_in_one_file_and_standard_input(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "stdin", io.StringIO("E5 10 5B 01 5C 16\n68 04 04 68 08 01 71 02 7C 16"))
    code, out, err = run(capsys, "-")
    assert (code, err) == (0, [])
    kinds = [json.loads(line)["frame"]["type"] for line in out]
    assert kinds == ["ack", "short", "long"]
    alarm = json.loads(out[2])["records"]
    assert [(r["quantity"], r["value"]) for r in alarm] == [("Alarm", 2)]


def test_a_cut_frame_after_good_ones_is_reported_at_its_file_offset(capsys, tmp_path):
    path = tmp_path / "two.hex"
    path.write_text("E5 68 04 04 68 08 01 71")
    code, out, err = run(capsys, str(path))
    assert code == 1 and len(out) == 1
    assert err[0].startswith(f"mbus-rig decode: {path}: frame 2 (file byte 1): truncated: ")


def test_the_installed_command_runs(tmp_path):
    exe = Path(sys.executable).with_name("mbus-rig")
    result = subprocess.run([str(exe), "decode", str(ACW), str(tmp_path / "nope")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert json.loads(result.stdout)["header"]["id"] == "11490378"
    assert "Traceback" not in result.stderr and "nope: cannot read" in result.stderr


def test_no_file_reads_standard_input(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(ACW.read_text()))
    code, out, err = run(capsys)
    assert (code, err) == (0, [])
    assert json.loads(out[0])["header"]["id"] == "11490378"


def test_table_prints_the_telegram_readably(capsys, monkeypatch):
    code, out, err = run(capsys, "--table", str(ACW))
    assert (code, err) == (0, [])
    assert out[0] == (f"{ACW}, frame 1: 11490378 ACW v14 Cold water, access 10, status 00, "
                      "CI 72, A 8")
    header = out[1].split()
    assert header == ["#", "function", "storage", "tariff", "subunit", "quantity", "value",
                      "unit"]
    volume = next(line for line in out if line.startswith("1 "))
    assert "Volume" in volume and "54.321" in volume and "m^3" in volume
    assert out[-1] == "manufacturer data: 00 01 75 13"
    monkeypatch.setattr(sys, "stdin", io.StringIO("E5 10 5B 01 5C 16 68 04 04 68 08 01 71 02 7C 16"))
    code, out, err = run(capsys, "--table")
    assert (code, err) == (0, [])
    assert out == ["<stdin>, frame 1: E5", "<stdin>, frame 2: REQ_UD2 A=1 FCB=0",
                   "<stdin>, frame 3: CI 71, A 1, no records", "alarm 02"]


@pytest.mark.parametrize("blob", [bytes(range(256)), b"\x7fELF\x02\x01\x01" + b"\x00" * 40,
                                  b"68 04 04 68\x00\x01", "68 é".encode()])
def test_binary_input_is_refused_in_one_line_and_never_printed(capsys, monkeypatch, tmp_path,
                                                               blob):
    path = tmp_path / "capture.bin"
    path.write_bytes(blob)
    for args, stdin in (([str(path)], None), ([], blob)):
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        code = main(["decode", *args])
        captured = capsys.readouterr()
        assert code == 1 and captured.out == ""
        lines = captured.err.splitlines()
        assert len(lines) == 1 and "binary data" in lines[0] and "xxd -p" in lines[0]
        assert lines[0].isascii() and "\x00" not in lines[0] and "ELF" not in lines[0]
