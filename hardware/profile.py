"""Meter profiles from TOML files (the file side of protocol/meter.py's profile_from_dict).

A profile file holds the fields of a MeterProfile at the top level, an optional ``[link]``
table and ``[[pages]]`` with ``[[pages.records]]`` (see hardware/profiles/heat-meter.toml). Every
problem is a ConfigError naming the file: unreadable, not TOML (with the line), or a field
that profile_from_dict rejects (with the field path and the allowed values).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from protocol.errors import ConfigError
from protocol.meter import MeterProfile, profile_from_dict

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
"""The profiles shipped with the project (heat-meter.toml, multi-telegram.toml)."""


def load_profile(path: str | Path) -> MeterProfile:
    """Read and validate one profile file. Raises ConfigError naming the file."""
    file = Path(path)
    try:
        text = file.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the profile: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from None
    return profile_from_dict(data, str(file))


def shipped_profile(name: str) -> Path:
    """Path of a shipped profile by name ("heat-meter"); ConfigError listing the names."""
    candidate = PROFILE_DIR / f"{name}.toml"
    if not candidate.is_file():
        names = ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))) or "none"
        raise ConfigError(f"no shipped profile {name!r} (shipped: {names})")
    return candidate
