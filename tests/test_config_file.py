"""hardware/config_file.py: every file problem is one ConfigError naming what and where."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardware.config_file import read_text, read_toml
from protocol.errors import ConfigError


def test_reads_text_and_toml(tmp_path: Path) -> None:
    file = tmp_path / "a.toml"
    file.write_text('name = "bench"\n[master]\nbaud = 2400\n', encoding="utf-8")
    assert read_text(file, "rig file").startswith('name = "bench"')
    assert read_toml(str(file), "rig file") == {"name": "bench", "master": {"baud": 2400}}


def test_missing_file_names_what_and_path_with_the_hint(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        read_toml(missing, "rig file", hint=" (give a TOML rig file or 'sim')")
    assert str(info.value) == f"rig file {missing}: not found (give a TOML rig file or 'sim')"


def test_unreadable_and_not_utf8(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^token file .*: cannot be read \(Is a directory\)$"):
        read_text(tmp_path, "token file")
    binary = tmp_path / "t"
    binary.write_bytes(b"ab\xff")
    with pytest.raises(ConfigError, match=r"^token file .*t: not UTF-8 text \(byte 2\)$"):
        read_text(binary, "token file")


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('id = 1\nmanufacturer = "ABC\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^profile .*bad\.toml: invalid TOML: .*line 2"):
        read_toml(bad, "profile")
