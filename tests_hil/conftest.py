"""Collection rules of the conformance suite (no fixtures: those come from the rig plugin)."""

from __future__ import annotations

from pathlib import Path

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


MASTER_SUITE = Path(__file__).resolve().parent / "master"
"""The master suite (a master as the DUT); the modules beside it judge a slave."""


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """One suite per run, chosen by the DUT's role: the master suite (tests_hil/master/)
    when the rig's DUT is a master, the slave suite otherwise. A path given on the command
    line is always collected (its scenarios then skip with the reason)."""
    from fixtures.plugin import STATE

    state = config.stash.get(STATE, None)
    if state is None:
        return None
    path = collection_path.resolve()
    if path in {Path(str(arg).split("::")[0]).resolve() for arg in config.args}:
        return None
    in_master = path == MASTER_SUITE or MASTER_SUITE in path.parents
    if state.dut_config.is_master:
        slave_module = (path.parent == MASTER_SUITE.parent and path.suffix == ".py"
                        and path.name.startswith("test_"))
        return True if slave_module else None
    return True if in_master else None
