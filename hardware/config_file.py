"""Reading the project's input files (rig files, meter profiles, token files) as text or TOML.

One place turns every file problem into a :class:`ConfigError` naming what the file is and
where it is: ``"<what> <path>: not found"``, ``": cannot be read (<reason>)"``,
``": not UTF-8 text (byte N)"`` and, for TOML, ``": invalid TOML: <problem> (at line L, column C)"``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from protocol.errors import ConfigError


def read_text(path: str | Path, what: str, *, hint: str = "") -> str:
    """The UTF-8 text of ``path``; ``what`` names the file ("rig file"), ``hint`` is added
    to the "not found" message (e.g. " (give a TOML rig file or 'sim')")."""
    file = Path(path)
    try:
        return file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} {file}: not found{hint}") from None
    except OSError as exc:
        raise ConfigError(f"{what} {file}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {file}: not UTF-8 text (byte {exc.start})") from None


def read_toml(path: str | Path, what: str, *, hint: str = "") -> dict[str, Any]:
    """The TOML document in ``path`` as a dict; ConfigError naming the file (and the line)."""
    text = read_text(path, what, hint=hint)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {Path(path)}: invalid TOML: {exc}") from None
