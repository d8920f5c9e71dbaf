"""Meter profiles from TOML files (the file side of protocol/meter.py's profile_from_dict).

A profile file holds the fields of a MeterProfile at the top level, an optional ``[link]``
table and ``[[pages]]`` with ``[[pages.records]]`` (see hardware/profiles/heat-meter.toml). Every
problem is a ConfigError naming the file: unreadable, not TOML (with the line), or a field
that profile_from_dict rejects (with the field path and the allowed values).
:func:`read_profile` also takes a shipped profile's name (what ``--profile`` and a rig
file's ``profile =`` accept).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from hardware.config_file import read_toml
from protocol.errors import ConfigError
from protocol.meter import MeterProfile, heat_meter_profile, profile_from_dict

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
"""The profiles shipped with the project (heat-meter.toml, multi-telegram.toml)."""


def load_profile(path: str | Path) -> MeterProfile:
    """Read and validate one profile file. Raises ConfigError naming the file."""
    return profile_from_dict(read_toml(path, "profile"), str(Path(path)))


def shipped_profile(name: str) -> Path:
    """Path of a shipped profile by name ("heat-meter"); ConfigError listing the names."""
    candidate = PROFILE_DIR / f"{name}.toml"
    if not candidate.is_file():
        raise ConfigError(f"no shipped profile {name!r} (shipped: {shipped_names()})")
    return candidate


def shipped_names() -> str:
    """The shipped profiles' names, comma-separated ("heat-meter, multi-telegram")."""
    return ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))) or "none"


def read_profile(spec: str | None, source: str = "profile") -> MeterProfile:
    """A meter profile from a file path or a shipped profile name; None: the built-in heat
    meter. ``source`` names where ``spec`` came from in the error ("--profile", "profile")."""
    if spec is None:
        return heat_meter_profile()
    path = Path(spec)
    if path.exists():
        return load_profile(path)
    if "/" not in spec and not spec.endswith(".toml"):
        with contextlib.suppress(ConfigError):
            return load_profile(shipped_profile(spec))
    raise ConfigError(f"{source} {spec}: no such file, nor a shipped profile "
                      f"(shipped: {shipped_names()})")


def require_baud(profile: MeterProfile, baud: int, source: str = "baud") -> None:
    """ConfigError unless ``baud`` is one of ``profile``'s rates; ``source`` names where the
    rate came from ("--baud", "baud")."""
    if baud not in profile.bauds:
        raise ConfigError(f"{source} {baud}: not a rate of profile {profile.name} "
                          f"(allowed: {', '.join(map(str, profile.bauds))})")
