"""``mbus-rig run``: allure results, JUnit XML and the single-file HTML report, rendered in
headless Chromium (skipped, with the reason, only when chromium or the Allure CLI is missing)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest

from rig import cli
from rig.commands import run as run_command
from rig.report import find_allure

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT_TIMEOUT_S = 120

SUITE = '''
import pytest

@pytest.mark.clause("EN 13757-2 link layer, A field", "answers at its primary address")
@pytest.mark.area("addressing")
@pytest.mark.severity("critical")
def test_primary(master, dut, measure):
    """A slave answers REQ_UD2 at its primary address."""
    reply = master.req_ud2(dut.address)
    measure("response delay", reply.exchange.response_delay, "s", 0.0046, 0.1875)

@pytest.mark.clause("EN 13757-2 link layer, SND_NKE", "SND_NKE is acknowledged")
@pytest.mark.area("addressing")
def test_wrong_expectation(master, dut):
    """A deliberately failing scenario, to show a trace in the report."""
    master.snd_nke(dut.address)
    assert master.req_ud2(dut.address).telegram is None, "expected no telegram"

@pytest.mark.area("collisions")
@pytest.mark.needs("collision_injector")
def test_skipped_on_this_rig(master):
    pass
'''

BARE_RIG = """
name = "bare"
[[dut]]
name = "meter"
address = 5
"""


@pytest.fixture
def suite(tmp_path, monkeypatch):
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "test_demo.py").write_text(SUITE)
    monkeypatch.setattr(run_command, "suite_path", lambda: folder)
    return folder


def _run(tmp_path: Path, *args: str) -> tuple[int, Path]:
    rig = tmp_path / "bare.toml"
    rig.write_text(BARE_RIG)
    report = tmp_path / "report"
    status = cli.main(["run", "--rig", str(rig), "--report", str(report), *args])
    return status, report


def test_run_writes_allure_results_and_junit(tmp_path, suite, capsys):
    status, report = _run(tmp_path, "--no-html", "--", "-p", "no:cacheprovider")
    assert status == 1  # one scenario fails on purpose
    results = [json.loads(p.read_text()) for p in (report / "allure-results").glob("*-result.json")]
    assert sorted(r["status"] for r in results) == ["failed", "passed", "skipped"]
    assert (report / "allure-results" / "environment.properties").exists()
    assert (report / "allure-results" / "categories.json").exists()
    root = ET.parse(report / "junit.xml").getroot()
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["rig"] == "bare" and props["mode"] == "sim"
    assert "measurement.response delay" in props
    out = capsys.readouterr().out
    assert "JUnit XML:" in out and "report.html" not in out


def test_run_without_allure_still_succeeds_and_says_how(tmp_path, suite, monkeypatch, capsys):
    monkeypatch.setattr(run_command, "find_allure", lambda: None)
    status, report = _run(tmp_path, "--", "-p", "no:cacheprovider", "-k", "primary")
    assert status == 0
    assert not (report / "report.html").exists()
    err = capsys.readouterr().err
    assert "HTML report skipped" in err and "scripts/setup.sh" in err


def test_run_rejects_a_bad_rig_file_before_pytest(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[master]\nretries = 99\n")
    assert cli.main(["run", "--rig", str(bad), "--report", str(tmp_path / "r")]) == 2
    assert "master.retries: 99 is out of range" in capsys.readouterr().err


def _png_size_and_colours(png: bytes) -> tuple[int, int, int]:
    """Width, height and the number of distinct byte values in the image data."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    pixels = zlib.decompress(idat)
    return width, height, len(set(pixels))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/setup.sh)")
@pytest.mark.skipif(find_allure() is None, reason="the Allure 3 CLI is not installed "
                                                  "(scripts/setup.sh puts it in .tools/)")
def test_html_report_renders_in_headless_chromium(tmp_path, suite):
    status, report = _run(tmp_path, "--", "-p", "no:cacheprovider")
    assert status == 1
    html = report / "report.html"
    assert html.exists()
    text = html.read_text(errors="replace")
    assert "<html" in text.lower() and len(text) > 100_000  # one file with everything inline
    assert not (report / "data").exists()  # nothing next to it
    shot = tmp_path / "shot.png"
    assert CHROMIUM is not None
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900",
         "--virtual-time-budget=5000", f"--screenshot={shot}", html.as_uri()],
        capture_output=True, text=True, timeout=SCREENSHOT_TIMEOUT_S)
    assert shot.exists(), done.stderr[-2000:]
    width, height, colours = _png_size_and_colours(shot.read_bytes())
    assert (width, height) == (1280, 900)
    assert colours > 20, "the screenshot is blank"
    results = {r["name"]: r for r in _embedded_results(text)}
    failed = results["test_wrong_expectation"]
    assert [c["name"] for c in failed["categories"]] == ["Protocol violation"]  # our categories
    assert results["test_skipped_on_this_rig"]["status"] == "skipped"


def _embedded_results(html: str) -> list[dict]:
    """The test results Allure 3.18's single-file report embeds (base64 JSON per result)."""
    pattern = r'"data/test-results/[0-9a-f]+\.json","([A-Za-z0-9+/=]+)"'
    return [json.loads(base64.b64decode(m.group(1))) for m in re.finditer(pattern, html)]


def test_run_with_plugin_autoload_disabled(tmp_path, suite, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    status, report = _run(tmp_path, "--no-html", "--", "-p", "no:cacheprovider", "-k", "primary")
    assert status == 0
    assert list((report / "allure-results").glob("*-result.json"))  # allure-pytest was loaded
