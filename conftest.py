"""Root conftest: registers the rig's pytest plugin when it is not installed as an entry point.

Installed with ``pip install -e .``, pytest loads ``fixtures.plugin`` through the ``mbus-rig``
pytest11 entry point; running from a bare checkout it is loaded from here instead.
"""

from __future__ import annotations

import importlib.metadata


def _plugin_installed() -> bool:
    return any(ep.name == "mbus-rig" for ep in importlib.metadata.entry_points(group="pytest11"))


if not _plugin_installed():
    pytest_plugins = ["fixtures.plugin"]
