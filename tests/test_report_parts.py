"""Measurements with limits (fixtures/measurements.py) and the report files (rig/report.py)."""

from __future__ import annotations

import json
import re

import pytest

from fixtures.measurements import Measurement
from protocol.errors import ConfigError, HardwareError
from rig.config import builtin_sim_config
from rig.report import (
    CATEGORIES,
    dut_identity,
    remote_references,
    rig_properties,
    without_analytics,
    write_categories,
    write_environment,
)


@pytest.mark.parametrize("value, low, high, outcome", [
    (0.050, 0.0046, 0.1875, "pass"),
    (0.1875, 0.0046, 0.1875, "pass"),      # on the standard's limit: inside, never marginal
    (0.020, 0.0046, 0.1875, "pass"),       # 20 ms at 2400 Bd: not marginal (issue 10)
    (0.200, 0.0046, 0.1875, "fail"),
    (0.004, 0.0046, 0.1875, "fail"),
    (None, 0.0, 1.0, "fail"),
    (float("nan"), 0.0, 1.0, "fail"),
    (3, None, 2, "fail"),
    (1.9, None, 2, "pass"),                # the standard's limit: no margin band
    (7, None, None, "pass"),               # no limits: recorded only
])
def test_measurement_outcome(value, low, high, outcome):
    assert Measurement("response delay", value, "s", low, high).outcome == outcome


@pytest.mark.parametrize("value, low, high, outcome", [
    (1.5, None, 2, "pass"),                # a user-set limit: the band is 10 % of 2 s
    (1.8, None, 2, "marginal"),            # on the band's edge counts as marginal
    (1.79, None, 2, "pass"),
    (2.0, None, 2, "marginal"),
    (0.020, 0.0046, 0.1875, "pass"),       # the band is 10 % of each limit, not of the span
    (0.0050, 0.0046, 0.1875, "marginal"),  # within 0.46 ms of 4.6 ms
    (0.168, 0.0046, 0.1875, "pass"),       # 19.5 ms below 187.5 ms: outside its 18.75 ms band
    (0.170, 0.0046, 0.1875, "marginal"),   # 17.5 ms below it: inside
    (0.19, 0.0046, 0.1875, "fail"),
])
def test_measurement_marginal_only_against_configured_limits(value, low, high, outcome):
    assert Measurement("power-up", value, "s", low, high, configured=True).outcome == outcome


def test_measurement_rejects_bad_input():
    with pytest.raises(ConfigError, match="low limit 2 is above high limit 1"):
        Measurement("x", 1.5, "", 2, 1)
    with pytest.raises(ConfigError, match="value must be a number"):
        Measurement("x", "fast", "")  # type: ignore[arg-type]


def test_measurement_text_and_json():
    bad = Measurement("response delay", 0.25, "s", 0.0046, 0.1875)
    assert bad.describe() == "response delay = 0.25 s, limits [0.0046, 0.1875] s: FAIL"
    assert bad.to_json()["outcome"] == "fail"


def test_environment_properties_are_java_properties(tmp_path):
    cfg = builtin_sim_config(seed=42)
    props = rig_properties(cfg, cfg.duts[0], bauds=[2400, 9600], identity="id=1: x")
    path = write_environment(tmp_path, props)
    text = path.read_text()
    entries = dict(line.split("=", 1) for line in text.splitlines())
    assert entries["rig"] == "sim" and entries["mode"] == "sim" and entries["seed"] == "42"
    assert entries["baud"] == "2400,9600"
    assert entries["dut.identity"] == r"id\=1\: x"
    assert re.fullmatch(r"[0-9a-f]{4,}(\+dirty)?|unknown", entries["git.revision"])
    assert "meter (emulated)" in entries["dut"]


def test_categories_json(tmp_path):
    data = json.loads(write_categories(tmp_path).read_text())
    assert [c["name"] for c in data] == ["Recommended, not met (not a conformance failure)",
                                         "Rig fault", "Timing", "Protocol violation"]
    recommended, rig_fault, timing, violation = CATEGORIES
    assert recommended["matchedStatuses"] == ["skipped"]  # a plain skip has another message
    assert re.match(str(recommended["messageRegex"]),
                    "Skipped: recommended, not met (IEC 60870-5-1 FT1.2 rule R4; ...): E5")
    assert not re.match(str(recommended["messageRegex"]), "Skipped: needs collision_injector")
    assert re.match(str(rig_fault["traceRegex"]), "raise HardwareError('relay')")
    assert re.match(str(timing["messageRegex"]), "AssertionError: response delay 0.3 s too late")
    assert not re.match(str(timing["messageRegex"]), "AssertionError: no answer to REQ_UD2")
    assert re.match(str(violation["messageRegex"]), "anything\nat all")


def test_dut_identity_from_config():
    cfg = builtin_sim_config()
    assert dut_identity(cfg.duts[0]) == "meter (emulated), primary 5"


ALLURE_TAIL = """<body><div id="app"></div>
    <script src="data:text/javascript;base64,QUJD"></script>
    <script async src="https://www.googletagmanager.com/gtag/js?id=G-LNDJ3J7WT0"></script>
    <script>
        window.dataLayer = window.dataLayer || [];
        function gtag(){dataLayer.push(arguments);}
        gtag('js', new Date());
    </script>
    <script async>
      window.allureReportData = {"x": "gtag dataLayer as data"};
    </script>
</body>"""


def test_analytics_are_taken_out_of_the_report_and_the_rest_is_kept():
    html = without_analytics(ALLURE_TAIL)
    assert "googletagmanager" not in html and "function gtag" not in html
    assert 'src="data:text/javascript;base64,QUJD"' in html  # the app itself
    assert '{"x": "gtag dataLayer as data"}' in html  # the report's data untouched
    assert remote_references(html) == []
    assert remote_references(ALLURE_TAIL) == [
        "https://www.googletagmanager.com/gtag/js?id=G-LNDJ3J7WT0"]


@pytest.mark.parametrize("tag", ['<link rel="stylesheet" href="https://fonts.example/x.css">',
                                 "<img src='//cdn.example/logo.png'>",
                                 '<iframe src="http://example.com/"></iframe>'])
def test_a_report_that_would_still_load_from_outside_is_refused(tag):
    with pytest.raises(HardwareError, match="would load .*example.* from the internet"):
        without_analytics(f"<html><head>{tag}</head><body></body></html>")
    assert without_analytics('<a href="https://allurereport.org">Allure</a>')  # a link is fine
