"""A scenario's page (fixtures/reporting/page.py) and clause links to the user's copy of the
standard (rig/standard_link.py, the rig file's [report] table, --standard-url)."""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET

import pytest

from fixtures.measurements import Measurement
from fixtures.reporting.page import margin, measurements_html, paragraphs, scenario_page
from protocol.errors import ConfigError
from rig import cli
from rig.config import config_from_dict
from rig.standard_link import clause_link, standard_part, template_problem

pytest_plugins = ["pytester"]


def test_paragraphs_join_lines_of_a_docstring():
    doc = """First sentence that runs
        over two lines.

        Second paragraph."""
    assert paragraphs(doc) == ["First sentence that runs over two lines.", "Second paragraph."]
    assert paragraphs(None) == []


def _cells(html: str) -> list[list[str]]:
    table = ET.fromstring(html)
    return [[(cell.text or "") for cell in row] for row in table.iter("tr")]


def test_measurements_table_is_in_milliseconds_with_limits_outcome_and_margin():
    rows = _cells(measurements_html([
        Measurement("response_delay_max", 0.0458333, "s", 0.0045833, 0.1875),
        Measurement("power_up_time", 6.2, "s", None, 5.0),
        Measurement("search_probes_3", 42, "probes"),
        Measurement("response_delay_min", None, "s", 0.0045833, 0.1875),
    ]))
    assert rows[0] == ["measurement", "value", "low limit", "high limit", "unit", "outcome",
                       "margin"]
    assert rows[1] == ["response_delay_max", "45.83", "4.583", "187.5", "ms", "PASS",
                       "41.25 ms to the low limit"]
    assert rows[2] == ["power_up_time", "6200", "", "5000", "ms", "FAIL",
                       "1200 ms beyond the high limit"]
    assert rows[3] == ["search_probes_3", "42", "", "", "probes", "PASS", ""]
    assert rows[4][1] == "no value" and rows[4][5] == "FAIL"


def test_margin_without_unit_or_value():
    assert margin(Measurement("ratio", 0.95, "ratio", 0.0, 1.0)) == "0.05 ratio to the high limit"
    assert margin(Measurement("x", None, "", 0, 1)) == ""


def test_page_escapes_text_links_the_clause_and_embeds_charts_as_images():
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><rect width="1" height="1" fill="#fff"/></svg>'
    html = scenario_page(
        doc="Checks <that> & more.\n\nSecond.",
        clauses=[("EN 13757-2 link layer, timing", "window", "file:///std/EN13757-2.pdf#page=4"),
                 ("EN 13757-3 CI 56", "", None)],
        measurements=[Measurement("d", 0.05, "s", 0.0, 0.1)],
        recommended="no E5 <within> 50 ms",
        charts=[("answer delays", svg)])
    assert "<p>Checks &lt;that&gt; &amp; more.</p>" in html and "<p>Second.</p>" in html
    assert ("<b>Clause:</b> EN 13757-2 link layer, timing: window<br/>In your copy of the "
            'standard: <a href="file:///std/EN13757-2.pdf#page=4">'
            "file:///std/EN13757-2.pdf#page=4</a></p>") in html  # the URL shown, to copy
    assert "<b>Clause:</b> EN 13757-3 CI 56</p>" in html
    assert "<h4>Recommended, not demanded</h4>" in html
    assert "<b>Not met:</b> no E5 &lt;within&gt; 50 ms" in html
    images = re.findall(r'<img alt="answer delays"[^>]*src="data:image/svg\+xml;base64,([^"]+)"',
                        html)
    assert [base64.b64decode(i).decode() for i in images] == [svg]
    assert "<svg" not in html  # Allure 3 would strip inline SVG


def test_page_of_a_conformance_case_has_no_recommended_section_and_a_met_one_says_so():
    assert "Recommended" not in scenario_page(doc="x", measurements=[Measurement("d", 1.0)])
    met = scenario_page(doc="x", recommended="")
    assert "<h4>Recommended, not demanded</h4>" in met and "<p>Met.</p>" in met


RECOMMENDED_CASE = """
import pytest

@pytest.mark.clause("EN 13757-2 link layer, timing", "answers soon")
@pytest.mark.severity("recommended")
def test_soon(measure):
    '''The DUT answers within 50 ms (recommended).'''
    measure("response delay", 0.09, "s", None, 0.05)
"""


def test_a_recommended_case_not_met_says_so_on_its_page(pytester):
    pytester.makepyfile(RECOMMENDED_CASE)
    alluredir = pytester.path / "a"
    pytester.runpytest(f"--alluredir={alluredir}", "-p", "no:cacheprovider")
    result = _result(alluredir)
    assert result["status"] == "skipped"  # apart from failures (fixtures/plugin.py)
    page = result["descriptionHtml"]
    assert "<b>Not met:</b> response delay = 0.09 s, limits [-inf, 0.05] s: FAIL" in page
    assert ">90</td>" in page  # the table, in ms


# --- clause links -----------------------------------------------------------------------------


@pytest.mark.parametrize("template, problem", [
    ("file:///std/EN{part}.pdf#page={page}", None),
    ("https://intranet/std?q={clause}&t={topic}", None),
    ("EN13757.pdf", "is not a file:// or http(s):// URL"),
    ("https://www.google.com/search?q={chapter}", "unknown placeholder {chapter}"),
    ("file:///{page:03d}", "unknown placeholder {page}"),
    ("file:///{", "literal braces"),
])
def test_link_template_problems(template, problem):
    found = template_problem(template)
    assert (found is None) if problem is None else (problem in str(found))


def test_clause_link_fills_the_placeholders():
    ref = "EN 13757-2 link layer, timing"
    assert standard_part(ref) == "EN 13757-2"
    link = clause_link("file:///s/EN{part}.pdf#page={page}&{topic}|{clause}", ref, {ref: 21})
    assert link == ("file:///s/EN13757-2.pdf#page=21&link%20layer%2C%20timing|"
                    "EN%2013757-2%20link%20layer%2C%20timing")
    assert clause_link("file:///s/{part}.pdf#page={page}",
                       "EN 13757-2 / IEC 60870-5-2 FT1.2, frame checks") == \
        "file:///s/13757-2.pdf#page=1"  # no page given: the first


def test_rig_file_report_table():
    cfg = config_from_dict({"report": {"standard_url": "file:///s/EN{part}.pdf#page={page}",
                                       "pages": {"EN 13757-3 CI 56": 40}}}, "bench.toml")
    assert cfg.report.standard_url == "file:///s/EN{part}.pdf#page={page}"
    assert cfg.report.pages == {"EN 13757-3 CI 56": 40}
    assert config_from_dict({}, "bench.toml").report.standard_url is None
    for report, words in [
        ({"standard_url": "EN.pdf"}, "bench.toml: report.standard_url: 'EN.pdf' is not a"),
        ({"standard_url": 5}, "report.standard_url: must be a string"),
        ({"pages": {"EN 13757-3 CI 56": 0}}, "report.pages.'EN 13757-3 CI 56': must be a page"),
        ({"colour": "red"}, "report.colour: unknown key (allowed: standard_url, pages)"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(words)):
            config_from_dict({"report": report}, "bench.toml")


LINKED = """
import pytest

@pytest.mark.clause("EN 13757-2 link layer, timing", "answers in the window")
def test_x(measure):
    '''A scenario whose first paragraph runs
    over two lines.

    More detail.'''
    measure("response delay", 0.05, "s", 0.0046, 0.1875)
"""


def _result(alluredir):
    return [json.loads(p.read_text()) for p in alluredir.glob("*-result.json")][0]


def test_rig_file_url_links_clauses_and_the_option_overrides_it(pytester):
    pytester.makepyfile(LINKED)
    pytester.makefile(".toml", rig='[[dut]]\nname = "m"\n[report]\n'
                                   'standard_url = "file:///std/EN{part}.pdf#page={page}"\n'
                                   '[report.pages]\n"EN 13757-2 link layer, timing" = 21\n')
    alluredir = pytester.path / "a"
    pytester.runpytest("--rig", "rig.toml", f"--alluredir={alluredir}").assert_outcomes(passed=1)
    result = _result(alluredir)
    assert not result.get("links")  # Allure shows file:// links as bare text: page only
    story = [lab["value"] for lab in result["labels"] if lab["name"] == "story"]
    assert story == ["A scenario whose first paragraph runs over two lines."]
    assert '>file:///std/EN13757-2.pdf#page=21</a>' in result["descriptionHtml"]
    other = pytester.path / "b"
    pytester.runpytest("--rig", "rig.toml", f"--alluredir={other}",
                       "--standard-url", "https://std.local/{clause}").assert_outcomes(passed=1)
    url = "https://std.local/EN%2013757-2%20link%20layer%2C%20timing"
    assert [link["url"] for link in _result(other)["links"]] == [url]
    assert f'href="{url}"' in _result(other)["descriptionHtml"]


def test_bad_standard_url_is_a_usage_error_in_pytest_and_in_run(pytester, capsys, tmp_path):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--standard-url", "www.google.com/search?q={clause}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--standard-url: 'www.google.com/search?q={clause}' is not a file://" in \
        result.stderr.str()
    capsys.readouterr()
    status = cli.main(["run", "--report", str(tmp_path / "r"), "--standard-url", "file:///{x}"])
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["mbus-rig run: --standard-url: 'file:///{x}': unknown placeholder {x} "
                   "(allowed: {clause}, {part}, {topic}, {page})"]


def test_a_page_that_cannot_be_made_never_hides_the_result(pytester):
    pytester.makeconftest("""
        import pytest
        import fixtures.reporting.scenario as scenario

        @pytest.fixture(autouse=True)
        def broken_chart(monkeypatch):
            def boom(*args, **kwargs):
                raise ZeroDivisionError("chart bug")
            monkeypatch.setattr(scenario, "limits_chart", boom)
    """)
    pytester.makepyfile(LINKED)
    alluredir = pytester.path / "a"
    result = pytester.runpytest(f"--alluredir={alluredir}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*the report page of *test_x could not be made: "
                                 "ZeroDivisionError: chart bug*"])
    names = [a["name"] for a in _result(alluredir)["attachments"]]
    assert "report error" in names
