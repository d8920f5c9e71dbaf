"""Report plumbing: allure ``environment.properties`` and ``categories.json``, rig
properties for JUnit, and the single-file HTML report built with Allure 3.

The pytest plugin (fixtures/plugin.py) writes the allure results; ``mbus-rig run`` turns them
into ``report.html`` with the pinned Allure 3 CLI (npm ``allure``; scripts/setup.sh installs it
into ``.tools/node_modules/.bin/allure``), using the Awesome plugin's ``singleFile`` option.
The report never contacts the internet when opened: Allure 3.18 always writes a Google
Analytics tag into it, which is taken out, and a report that would still load anything from
outside is refused. The run's history is kept next to the report (``history.jsonl``), so a
report folder used again shows each test's history and the trend.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol.errors import HardwareError
from protocol.names import describe_bytes, describe_frame

from .config import DutConfig, RigConfig

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ALLURE_VERSION = "3.18.0"
ALLURE_ENV = "MBUS_RIG_ALLURE"
ALLURE_HINT = (f"install Node.js and run scripts/setup.sh (it installs allure@{ALLURE_VERSION} "
               f"into .tools/), or `npm install --prefix .tools allure@{ALLURE_VERSION}`, or set "
               f"{ALLURE_ENV} to an Allure 3 executable")
ALLURE_TIMEOUT_S = 300.0
HISTORY_FILE = "history.jsonl"
"""Allure 3's history, next to report.html: one line per run."""
HISTORY_LIMIT = 100
"""Runs kept in the history."""

#: A script element loading from the network (Allure 3.18 puts Google Analytics' in every report).
_REMOTE_SCRIPT = re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^>]*>\s*</script>",
                            re.IGNORECASE)
#: The inline script that feeds it (it starts by setting up gtag's dataLayer).
_ANALYTICS_SCRIPT = re.compile(r"<script>\s*window\.dataLayer\s*=[\s\S]*?</script>")
#: Anything in the page that a browser would fetch from outside when opening it.
_REMOTE_REFERENCE = re.compile(
    r"""<(?:script|link|img|iframe|source|embed|object|audio|video)\b[^>]*?"""
    r"""\b(?:src|href|data|srcset)\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""", re.IGNORECASE)

RECOMMENDED_NOT_MET = "recommended, not met"
"""How a failing ``recommended`` case is reported (the message's start, the JUnit property
``mbus.verdict``): what the standard only recommends, apart from conformance failures."""
VERDICT_PROPERTY = "mbus.verdict"
"""The test-case property (JUnit, pytest's ``user_properties``) that marks a recommendation
not met."""
RECOMMENDED_JUNIT_TYPE = "mbus.recommended"
"""The ``type`` of a failing recommended case's JUnit ``<skipped>`` element."""

#: allure categories (first match wins): recommendations not met (not conformance failures),
#: the rig's own faults, timing, protocol violations.
#: The patterns avoid inline flags so they work in Java (Allure 2, categories.json) and in
#: JavaScript (Allure 3, the report's config) alike; ``[\s\S]`` is "any character".
CATEGORIES: list[dict[str, object]] = [
    {
        "name": "Recommended, not met (not a conformance failure)",
        "description": "What EN 13757 only recommends or does not clearly demand; reported "
                       "apart, never failing the run",
        "matchedStatuses": ["skipped"],
        "messageRegex": r"[\s\S]*" + RECOMMENDED_NOT_MET + r"[\s\S]*",
    },
    {
        "name": "Rig fault",
        "description": "The rig, not the DUT: hardware, configuration, time-outs of the rig itself",
        "matchedStatuses": ["broken", "failed"],
        "traceRegex": r"[\s\S]*(HardwareError|RigTimeoutError|ConfigError|RigBusyError|"
                      r"AgentError|OSError|SerialException)[\s\S]*",
    },
    {
        "name": "Timing",
        "description": "Response delay, response window, inter-frame idle or other timing limits",
        "matchedStatuses": ["failed", "broken"],
        "messageRegex": r"[\s\S]*([Tt]iming|[Rr]esponse.delay|[Rr]esponse.window|"
                        r"too (early|late)|[Ii]dle)[\s\S]*",
    },
    {
        "name": "Protocol violation",
        "description": "The DUT broke EN 13757-2/-3: wrong, missing or malformed answers",
        "matchedStatuses": ["failed", "broken"],
        "messageRegex": r"[\s\S]*",
    },
]


def git_revision(root: Path = PROJECT_ROOT) -> str:
    """The checked-out commit (short hash, ``+dirty`` with local changes), or "unknown"."""
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{rev}+dirty" if dirty else rev


def dut_identity(dut: DutConfig) -> str:
    """The DUT as the rig file describes it: name, kind, address, secondary address."""
    parts = [f"{dut.name} ({dut.kind})"]
    if dut.address is not None:
        parts.append(f"primary {dut.address}")
    if dut.secondary is not None:
        parts.append(f"secondary {dut.secondary} ({dut.secondary.manufacturer_letters})")
    return ", ".join(parts)


def rig_properties(cfg: RigConfig, dut: DutConfig, *, bauds: list[int],
                   identity: str | None = None) -> dict[str, str]:
    """What a report says about the rig: rig, file, mode, DUT identity, git revision, seed."""
    props = {
        "rig": cfg.name,
        "rig.file": cfg.source,
        "mode": cfg.mode,
        "master.port": cfg.master.port,
        "dut": dut_identity(dut),
        "dut.capabilities": " ".join(sorted(cfg.capabilities(dut))),
        "baud": ",".join(str(b) for b in bauds),
        "seed": str(cfg.bus.seed),
        "git.revision": git_revision(),
    }
    if identity:
        props["dut.identity"] = identity
    if dut.defects:
        props["dut.defects"] = " ".join(sorted(dut.defects))
    return props


def _escape(text: str) -> str:
    """Java properties escaping for a key or value (allure reads environment.properties so)."""
    out = text.replace("\\", "\\\\").replace("\n", "\\n")
    for ch in "=:#!":
        out = out.replace(ch, "\\" + ch)
    return out


def _write_atomic(path: Path, text: str) -> None:
    """Write ``path`` in one rename, so parallel xdist workers never leave half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def write_environment(results_dir: str | Path, props: Mapping[str, str]) -> Path:
    path = Path(results_dir) / "environment.properties"
    _write_atomic(path, "".join(f"{_escape(k).replace(' ', '_')}={_escape(v)}\n"
                                for k, v in props.items()))
    return path


def write_categories(results_dir: str | Path) -> Path:
    path = Path(results_dir) / "categories.json"
    _write_atomic(path, json.dumps(CATEGORIES, indent=2) + "\n")
    return path


# --- HTML report (Allure 3) -----------------------------------------------------------------


def find_allure() -> str | None:
    """The Allure 3 CLI: $MBUS_RIG_ALLURE, the project's .tools/ copy, or ``allure`` on PATH
    when it is version 3 (Allure 2 has no single-file Awesome report)."""
    explicit = os.environ.get(ALLURE_ENV)
    if explicit:
        return explicit if Path(explicit).exists() or shutil.which(explicit) else None
    local = PROJECT_ROOT / ".tools" / "node_modules" / ".bin" / "allure"
    if local.exists():
        return str(local)
    on_path = shutil.which("allure")
    if on_path and _allure_major(on_path) == 3:
        return on_path
    return None


def _allure_major(exe: str) -> int | None:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout.strip()
    return int(text.split(".")[0]) if text[:1].isdigit() else None


def remote_references(html: str) -> list[str]:
    """The URLs a browser would fetch from outside when opening ``html``."""
    return sorted({m.group(1) for m in _REMOTE_REFERENCE.finditer(html)})


def without_analytics(html: str) -> str:
    """``html`` without remote scripts and the analytics script that feeds them; raises
    HardwareError if it would still fetch anything from outside."""
    html = _ANALYTICS_SCRIPT.sub("", _REMOTE_SCRIPT.sub("", html))
    remote = remote_references(html)
    if remote:
        raise HardwareError(f"the HTML report would load {remote[0]} from the internet "
                            f"when opened (Allure {ALLURE_VERSION} expected)")
    return html


def generate_html(results_dir: Path, out_html: Path, *, allure: str,
                  name: str = "M-Bus conformance", timeout: float = ALLURE_TIMEOUT_S,
                  history: bool = True) -> Path:
    """Build the single-file HTML report ``out_html`` from ``results_dir``.

    Allure 3's Awesome plugin with ``singleFile: true`` writes one self-contained
    ``index.html``; it is generated in a scratch folder, cleared of analytics and moved to
    ``out_html``. With ``history``, the run is added to ``history.jsonl`` next to
    ``out_html`` and the report shows the runs before it. Raises HardwareError (naming the
    cause) when allure fails.
    """
    results_dir, out_html = Path(results_dir).resolve(), Path(out_html).resolve()
    with tempfile.TemporaryDirectory(prefix="mbus-rig-allure-") as scratch:
        work = Path(scratch)
        config: dict[str, object] = {
            "name": name,
            "output": str(work / "out"),
            "plugins": {"awesome": {"options": {"singleFile": True, "reportName": name,
                                                "groupBy": ["epic", "feature", "story"]}}},
            "categories": CATEGORIES,
        }
        if history:
            out_html.parent.mkdir(parents=True, exist_ok=True)
            config["historyPath"] = str(out_html.parent / HISTORY_FILE)
            config["historyLimit"] = HISTORY_LIMIT
        (work / "allurerc.json").write_text(json.dumps(config), encoding="utf-8")
        cmd = [allure, "generate", "--config", str(work / "allurerc.json"), str(results_dir)]
        try:
            done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=timeout,
                                  env={**os.environ, "NO_COLOR": "1", "CI": "1"})
        except subprocess.TimeoutExpired:
            raise HardwareError(f"allure generate: no result after {timeout:g} s") from None
        except OSError as exc:
            raise HardwareError(f"allure generate: cannot run {allure} ({exc.strerror})") from None
        index = work / "out" / "index.html"
        if done.returncode != 0 or not index.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise HardwareError(f"allure generate failed (exit {done.returncode}): "
                                + " | ".join(tail))
        html = without_analytics(index.read_text(encoding="utf-8"))
        out_html.parent.mkdir(parents=True, exist_ok=True)
        out_html.write_text(html, encoding="utf-8")
    return out_html


# --- one bus transaction, for a report step ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StepText:
    """One allure step: its title, its parameters, and why it failed (None: it did not)."""

    title: str
    details: dict[str, str]
    failure: str | None = None


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def describe_exchange(exchange: Any) -> tuple[str, dict[str, str]]:
    """(step title, details as name -> text) of a master ``Exchange``."""
    step = describe_step(exchange)
    return step.title, step.details


def describe_step(item: Any) -> StepText:
    """The report step of what the master brought: an ``Exchange`` (failed when it did not
    bring what its request asked for, ``Exchange.failed``) or a ``LateAnswer``."""
    if not hasattr(item, "outcome"):
        return _late_step(item)
    exchange = item
    raw = bytes(exchange.request.data)
    request = describe_bytes(raw)
    outcome = getattr(exchange.outcome, "name", str(exchange.outcome))
    answer = outcome
    if exchange.frame is not None:
        answer = describe_frame(exchange.frame)
    elif exchange.error is not None:
        answer = f"{outcome} ({exchange.error})"
    title = f"{request} @ {exchange.baud} Bd -> {answer}"
    if exchange.response_delay is not None:
        title += f", {_ms(exchange.response_delay)}"
    if exchange.attempts > 1:
        title += f", {exchange.attempts} attempts"
    details = {
        "request": raw.hex(" ").upper(),
        "answer": bytes(ch.value for ch in exchange.chars).hex(" ").upper() or "-",
        "outcome": f"{outcome} (expected {exchange.expect})",
        "attempts": str(exchange.attempts),
        "response delay": ("-" if exchange.response_delay is None
                           else f"{exchange.response_delay * 1000:.3f} ms"),
    }
    if exchange.error is not None:
        details["error"] = str(exchange.error)
    late = tuple(getattr(exchange, "late_answers", ()))
    for n, earlier in enumerate(late, 1):
        details[f"late answer {n}" if len(late) > 1 else "late answer"] = earlier.describe()
    if late:
        title += f"; before it, a late answer ({_ms(late[0].after_window)} after its window)"
    failure = None
    if getattr(exchange, "failed", False):
        failure = (f"{request}: expected {exchange.expect}, got {answer}"
                   + (f" after {_ms(exchange.response_delay)}"
                      if exchange.response_delay is not None else "")
                   + f" ({exchange.attempts} attempt{'s' * (exchange.attempts != 1)})")
    return StepText(title, details, failure)


def _late_step(late: Any) -> StepText:
    """A late answer the master listened for after an exchange that got none."""
    text = late.describe("the")
    return StepText(text[0].upper() + text[1:], {
        "answer": late.raw.hex(" ").upper(),
        "delay after the request": f"{late.delay * 1000:.3f} ms",
        "after the answer window": f"{late.after_window * 1000:.3f} ms"})
