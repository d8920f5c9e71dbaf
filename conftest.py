"""Root conftest: registers the rig's pytest plugin when pytest did not load it already.

Installed with ``pip install -e .``, pytest loads ``fixtures.plugin`` through the ``mbus-rig``
pytest11 entry point. It is registered from here instead when the entry point is not
installed (a bare checkout) or not loaded (``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` set), unless
``-p mbus-rig`` / ``-p fixtures.plugin`` loaded it already.

``pytest_addhooks`` runs as this conftest is registered (before options are parsed), so the
plugin's options (``--rig``, ``--baud``, ...) exist in every case; a ``pytest_plugins``
list could not tell whether the entry point already registered the same module.
"""

from __future__ import annotations

from typing import Any

PLUGIN_NAMES = ("mbus-rig", "fixtures.plugin")


def pytest_addhooks(pluginmanager: Any) -> None:
    if not any(pluginmanager.has_plugin(name) for name in PLUGIN_NAMES):
        pluginmanager.import_plugin("fixtures.plugin")
