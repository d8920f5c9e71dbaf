"""Output of the master tools: plain tables, the progress bar only on a terminal."""

from __future__ import annotations

import io

from rig.tools.output import print_table, progress, render_table


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_table_is_plain_text_without_trailing_spaces() -> None:
    text = render_table(("address", "status"), [(1, "ok"), (17, "collision")])
    lines = text.splitlines()
    assert lines[0].split() == ["address", "status"]
    assert set(lines[1]) == {"─"}
    assert [line.split() for line in lines[2:]] == [["1", "ok"], ["17", "collision"]]
    assert all(line == line.rstrip() for line in lines)
    assert "\x1b" not in text


def test_title_goes_on_its_own_line() -> None:
    out = io.StringIO()
    print_table(("a",), [("x",)], title="a title longer than the table itself", stream=out)
    assert out.getvalue().splitlines()[0] == "a title longer than the table itself"


def test_progress_only_on_a_terminal() -> None:
    pipe, tty = io.StringIO(), Terminal()
    for stream in (pipe, tty):
        with progress("scanning", 3, stream=stream) as tick:
            for _ in range(3):
                tick(description="address n")
    assert pipe.getvalue() == ""
    assert "scanning" in tty.getvalue() or "address n" in tty.getvalue()
