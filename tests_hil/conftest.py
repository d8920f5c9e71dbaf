"""Collection rules of the conformance suite (no fixtures: those come from the rig plugin)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop baud-switch cases whose target rate is the rate they start from: they are no
    switch at all (deselected, not skipped, so they are not counted anywhere)."""
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "to_baud" in params and params.get("baud") == params["to_baud"]:
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
