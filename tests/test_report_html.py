"""``mbus-rig run``: allure results, JUnit XML and the single-file HTML report: rendered in
headless Chromium with the network blocked (the charts visible, nothing fetched), free of
analytics, keeping its history when the folder is used again (skipped, with the reason, only
when chromium or the Allure CLI is missing)."""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from offline_browser import chromium_offline, needs_chromium, png_pixels

from fixtures.reporting.charts import REQUEST_FILL, WINDOW_FILL
from fixtures.reporting.page import OUTCOME_STYLE
from rig import cli
from rig.commands import run as run_command
from rig.report import find_allure, remote_references

SUITE = '''
import pytest

from protocol.timing import response_window

@pytest.mark.clause("EN 13757-2 link layer, A field", "answers at its primary address")
@pytest.mark.area("addressing")
@pytest.mark.severity("critical")
def test_primary(master, dut, measure):
    """A slave answers REQ_UD2 at its primary address, with its own A field in the answer,
    inside the response window."""
    reply = master.req_ud2(dut.address)
    measure("response delay", reply.exchange.response_delay, "s", *response_window(2400))

@pytest.mark.clause("EN 13757-2 link layer, transmission procedure", "a lost answer is repeated")
@pytest.mark.area("addressing")
def test_wrong_expectation(master, dut, measure):
    """A deliberately failing scenario, to show a failing exchange in the report: the DUT's
    first answer is lost, and the scenario demands that one attempt was enough."""
    master.snd_nke(dut.address)
    dut.control.arm("silence", 1)
    reply = master.req_ud2(dut.address)
    measure("response delay", reply.exchange.response_delay, "s", *response_window(2400))
    assert reply.exchange.attempts == 1, "expected one attempt"

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


def _embedded_results(html: str) -> list[dict]:
    """The test results Allure 3.18's single-file report embeds (base64 JSON per result)."""
    pattern = r'"data/test-results/([0-9a-f]+)\.json","([A-Za-z0-9+/=]+)"'
    return [{**json.loads(base64.b64decode(m.group(2))), "report_id": m.group(1)}
            for m in re.finditer(pattern, html)]


def _embedded(html: str, name: str) -> dict | None:
    """One JSON file the single-file report embeds (e.g. widgets/globals.json)."""
    match = re.search(rf'"{re.escape(name)}","([A-Za-z0-9+/=]+)"', html)
    return json.loads(base64.b64decode(match.group(1))) if match else None


needs_allure = pytest.mark.skipif(find_allure() is None, reason="the Allure 3 CLI is not "
                                  "installed (scripts/setup.sh puts it in .tools/)")


@pytest.fixture(scope="module")
def two_reports(tmp_path_factory) -> tuple[Path, str, str]:
    """The demo suite run twice into one report folder: (folder, first HTML, second HTML)."""
    folder = tmp_path_factory.mktemp("report-twice")
    (folder / "suite").mkdir()
    (folder / "suite" / "test_demo.py").write_text(SUITE)
    texts = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_command, "suite_path", lambda: folder / "suite")
        for _ in range(2):
            status, report = _run(folder, "--", "-p", "no:cacheprovider")
            assert status == 1  # one scenario fails on purpose
            texts.append((report / "report.html").read_text(encoding="utf-8"))
    return report, texts[0], texts[1]


@needs_chromium
@needs_allure
def test_html_report_charts_are_visible_in_headlesschromium_offline(two_reports, tmp_path):
    report, _first, text = two_reports
    assert "<html" in text.lower() and len(text) > 100_000  # one file with everything inline
    assert not (report / "data").exists()  # nothing next to it
    results = {r["name"]: r for r in _embedded_results(text)}
    failed = results["test_wrong_expectation"]
    assert [c["name"] for c in failed["categories"]] == ["Protocol violation"]  # our categories
    assert results["test_skipped_on_this_rig"]["status"] == "skipped"
    shot, requests = chromium_offline(f"{(report / 'report.html').as_uri()}#/"
                                       f"{failed['report_id']}", tmp_path, height=2000)
    assert requests == []  # nothing asked of the network
    width, height, colours = png_pixels(shot.read_bytes())
    assert (width, height) == (1280, 2000)
    assert len(colours) > 20, "the screenshot is blank"
    # the charts' own colours: response windows (answer delays, limits, timing diagram) and
    # the requests of the failing exchange's timing diagram; the measurement table's PASS cell
    assert colours[bytes.fromhex(WINDOW_FILL[1:])] > 3000
    assert colours[bytes.fromhex(REQUEST_FILL[1:])] > 200
    pass_cell = re.search(r"background:#([0-9a-f]{6})", OUTCOME_STYLE["pass"])
    assert pass_cell and colours[bytes.fromhex(pass_cell.group(1))] > 500
    assert ">response delay</td>" in failed["descriptionHtml"]
    assert ">ms</td>" in failed["descriptionHtml"]


@needs_chromium
def test_offline_check_sees_a_page_that_calls_out(tmp_path):
    """The check above can fail: a page with an analytics tag asks the network."""
    page = tmp_path / "calls-out.html"
    page.write_text('<html><body><p>x</p><script async src="https://www.googletagmanager.com/'
                    'gtag/js?id=G-X"></script><img src="http://example.com/a.png"></body></html>')
    _shot, requests = chromium_offline(page.as_uri(), tmp_path / "chromium", height=300)
    assert any("googletagmanager.com" in r for r in requests)
    assert "http://example.com/a.png" in requests


@needs_allure
def test_html_report_has_no_analytics_or_external_urls(two_reports):
    _report, first, second = two_reports
    for text in (first, second):
        assert not re.search(r"googletagmanager|google-analytics|gtag\(|dataLayer", text)
        assert remote_references(text) == []
        assert not re.search(r"<(script|link|img|iframe)\b[^>]*(src|href)=[\"']?(https?:)?//",
                             text, re.IGNORECASE)


@needs_allure
def test_report_folder_used_again_keeps_the_history(two_reports):
    report, first, second = two_reports
    runs = [json.loads(line) for line in (report / "history.jsonl").read_text().splitlines()]
    assert len(runs) == 2
    assert not re.search(r'"data/history/', first)  # the first run had nothing before it
    assert re.findall(r'"data/history/([0-9a-f-]+)\.json"', second) == [runs[0]["uuid"]]
    charts = _embedded(second, "widgets/charts.json")
    assert charts is not None
    trend = [c for c in charts["general"].values() if c["type"] == "statusDynamics"]
    assert [len(c["data"]) for c in trend] == [2]  # the trend: the run before and this one
    story = [lab["value"] for r in _embedded_results(second) if r["name"] == "test_primary"
             for lab in r["labels"] if lab["name"] == "story"]
    assert story == ["A slave answers REQ_UD2 at its primary address, with its own A field in "
                     "the answer, inside the response window."]  # the whole first paragraph


@needs_allure
def test_run_chart_is_a_global_attachment(two_reports):
    _report, _first, second = two_reports
    globals_ = _embedded(second, "widgets/globals.json")
    assert globals_ is not None
    assert [a["name"] for a in globals_["attachments"]] == ["answer delays per baud rate.svg"]


def test_run_with_plugin_autoload_disabled(tmp_path, suite, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    status, report = _run(tmp_path, "--no-html", "--", "-p", "no:cacheprovider", "-k", "primary")
    assert status == 0
    assert list((report / "allure-results").glob("*-result.json"))  # allure-pytest was loaded
