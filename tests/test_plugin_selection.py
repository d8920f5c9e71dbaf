"""The plugin's --area, --severity and --clause: scenarios chosen by their markers (what
``-m "area(...)"`` cannot do), the same rule ``mbus-rig run`` checks its options with. A
case with its own severity and clause (a recommended case) is chosen by those."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SCENARIOS = """
import pytest

@pytest.mark.area("addressing")
@pytest.mark.severity("critical")
@pytest.mark.clause("EN 13757-2 link layer, A field", "answers at its address")
def test_primary():
    pass

@pytest.mark.area("frame errors (master to slave)")
@pytest.mark.severity("normal")
@pytest.mark.clause("EN 13757-2 / IEC 60870-5-2 FT1.2, frame checks", "discarded")
def test_checksum():
    pass

@pytest.mark.area("fcb")
@pytest.mark.severity("critical")
@pytest.mark.clause("EN 13757-2 link layer, FCB/FCV", "a repeated FCB repeats")
def test_fcb():
    pass

@pytest.mark.area("frame errors (master to slave)")
@pytest.mark.severity("normal")
@pytest.mark.clause("EN 13757-2 / IEC 60870-5-2 FT1.2, frame checks", "discarded")
@pytest.mark.parametrize("case", [
    "parity",
    pytest.param("gap", marks=[pytest.mark.severity("recommended"),
                               pytest.mark.clause("IEC 60870-5-1 FT1.2 transmission rules",
                                                  "idle after an error")])])
def test_frames(case):
    pass

def test_not_a_scenario():
    pass
"""


@pytest.mark.parametrize("args, kept", [
    (["--area", "addressing"], {"test_primary"}),
    (["--area", "frame errors (master to slave)"],
     {"test_checksum", "test_frames[parity]", "test_frames[gap]"}),
    (["--severity", "recommended"], {"test_frames[gap]"}),
    (["--severity", "normal"], {"test_checksum", "test_frames[parity]"}),
    (["--clause", "idle after"], {"test_frames[gap]"}),
    (["--area", "addressing,fcb"], {"test_primary", "test_fcb"}),
    (["--severity", "critical"], {"test_primary", "test_fcb"}),
    (["--severity", "critical", "--area", "fcb"], {"test_fcb"}),
    (["--clause", "frame checks"], {"test_checksum", "test_frames[parity]"}),
    (["--clause", "FCB", "--clause", "A field"], {"test_primary", "test_fcb"}),
    ([], {"test_primary", "test_checksum", "test_fcb", "test_frames[parity]",
          "test_frames[gap]", "test_not_a_scenario"}),
])
def test_markers_choose_the_scenarios(pytester, args, kept):
    pytester.makepyfile(SCENARIOS)
    result = pytester.runpytest("-v", *args)
    passed = {line.split("::")[1].split()[0] for line in result.stdout.lines
              if "::" in line and "PASSED" in line}
    assert passed == kept
    assert result.ret == 0


def test_an_unknown_severity_is_a_usage_error(pytester):
    pytester.makepyfile(SCENARIOS)
    result = pytester.runpytest("--severity", "huge")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--severity 'huge': not a severity (allowed: blocker,*"])
