"""The CI workflow (.github/workflows/conformance.yml) is a workflow GitHub can run: its jobs,
the farm job's always-run safe state, and only mbus-rig commands and options that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml  # PyYAML: with labgrid (the farm extra, scripts/setup.sh)

from rig.cli import build_parser

WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "conformance.yml"


def _workflow() -> dict[Any, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict)
    return data


def test_the_workflow_has_its_triggers_and_jobs() -> None:
    data = _workflow()
    triggers = data[True]  # YAML 1.1 reads the key "on" as a boolean
    assert set(triggers) == {"push", "pull_request", "workflow_dispatch", "schedule"}
    assert triggers["workflow_dispatch"]["inputs"]["hardware"]["type"] == "boolean"
    assert list(data["jobs"]) == ["sim", "hardware", "report"]
    assert data["jobs"]["report"]["needs"] == ["sim", "hardware"]


def test_the_farm_job_runs_safe_state_always_after_the_suite() -> None:
    steps = _workflow()["jobs"]["hardware"]["steps"]
    runs = [str(step.get("run", "")) for step in steps]
    suite = next(i for i, run in enumerate(runs) if "mbus-rig run --rig" in run)
    safe = next(i for i, run in enumerate(runs) if "mbus-rig safe-state" in run)
    assert suite < safe and steps[safe]["if"] == "always()"
    assert '--rig "$RIG_FILE"' in runs[safe]
    assert "LG_USERNAME" in _workflow()["jobs"]["hardware"]["env"]  # safe-state finds its place


def test_every_mbus_rig_command_in_the_workflow_parses() -> None:
    parser = build_parser()
    commands = re.findall(r"\.venv/bin/mbus-rig ([^|\n]+?)(?:\s*\|\||\n|$)", WORKFLOW.read_text())
    assert len(commands) >= 5
    for command in commands:
        args = [arg if not arg.startswith("$") else "x" for arg in shlex.split(command)]
        parser.parse_args(args)  # an unknown command or option exits 2
