"""The repository stands alone: a clone with nothing beside it collects the README's test
command exactly as this checkout does, no tracked file refers to a path outside the
repository (a sibling folder, design notes that are not here, this machine's folders), and
every relative link in a tracked Markdown file reaches a file of the repository (on GitHub as
in a clone), down to the heading it names."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from docs_site.hooks import resolve

REPOSITORY = Path(__file__).resolve().parent.parent
GIT_TIMEOUT_S = 120
COLLECT_TIMEOUT_S = 300

#: Text that points outside the repository, with what each is. Written so that this file
#: does not contain them itself.
OUTSIDE = {
    re.escape("..") + "/" + "shared": "a folder beside the repository",
    r"\b" + "DESIGN" + r"\.md\b": "a design note that is not in the repository (docs/design.md is)",
    r"\b" + "MBUS" + r"\.md\b": "a facts note that is not in the repository (docs/mbus-facts.md is)",
    "/" + "work/": "a folder of the machine the project was built on",
    "/" + "tmp/": "a machine path (examples name a folder of the repository or a relative one)",
}

_FENCE = re.compile(r"^\s*(```|~~~)")
_MD_LINK = re.compile(r"\[[^\]]*\]\(<?([^)\s>]+)>?\)")


def _git(*args: str, cwd: Path = REPOSITORY) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True,
                          timeout=GIT_TIMEOUT_S).stdout


def tracked_files() -> list[str]:
    return [p for p in _git("ls-files", "-z").split("\0") if p and (REPOSITORY / p).is_file()]


def _text(path: str) -> str | None:
    data = (REPOSITORY / path).read_bytes()
    if b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace")


def readme_test_command() -> list[str]:
    """The pytest part of the README's second command (``... && .venv/bin/python -m pytest``),
    as an argv for this interpreter."""
    text = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
    assert block, "README.md opens with no ```sh block of commands"
    lines = [line for line in block.group(1).splitlines() if line and not line.startswith("#")]
    assert len(lines) == 2, f"README.md should open with two commands, has {lines}"
    argv = shlex.split(lines[1].split("&&")[-1])
    assert argv[:3] == [".venv/bin/python", "-m", "pytest"], argv
    return [sys.executable, *argv[1:]]


def _collect(command: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([*command, "--collect-only", "-q", "-p", "no:cacheprovider"],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _collected(process: subprocess.Popen[str], where: str) -> set[str]:
    try:
        out, _ = process.communicate(timeout=COLLECT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"collecting in {where} took over {COLLECT_TIMEOUT_S} s")
    assert process.returncode == 0, f"collection in {where} failed:\n{out[-3000:]}"
    assert not re.search(r"\berrors?\b", out.splitlines()[-1]), out[-3000:]
    return {line for line in out.splitlines() if "::" in line}


def test_a_clone_with_nothing_beside_it_collects_what_this_checkout_collects(tmp_path):
    alone = tmp_path / "alone"  # the clone's parent holds nothing else
    alone.mkdir()
    clone = alone / "mbus-rig"
    _git("clone", "--quiet", "--no-hardlinks", str(REPOSITORY), str(clone), cwd=tmp_path)
    _git("checkout", "--quiet", "--detach", _git("rev-parse", "HEAD").strip(), cwd=clone)
    assert sorted(p.name for p in alone.iterdir()) == ["mbus-rig"]
    command = readme_test_command()
    in_clone, here = _collect(command, clone), _collect(command, REPOSITORY)
    cloned, ours = _collected(in_clone, "the clone"), _collected(here, "this checkout")
    # test files changed since the last commit are not in the clone: leave them out
    changed = set(_git("diff", "--name-only", "HEAD").split()) | set(
        _git("ls-files", "--others", "--exclude-standard").split())
    ours = {t for t in ours if t.split("::")[0] not in changed}
    cloned = {t for t in cloned if t.split("::")[0] not in changed}
    assert len(cloned) > 500
    assert cloned == ours, (f"only in the clone: {sorted(cloned - ours)[:10]}; "
                            f"only here: {sorted(ours - cloned)[:10]}")


def test_no_tracked_file_refers_to_a_path_outside_the_repository():
    found = []
    for path in tracked_files():
        text = _text(path)
        if text is None:
            continue
        for pattern, what in OUTSIDE.items():
            for match in re.finditer(pattern, text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path}:{line}: {match.group(0)!r}: {what}")
    assert found == []


def test_the_outside_check_sees_each_kind_of_reference():
    """The patterns above match what they are meant to (so the test above can fail)."""
    samples = ["corpus in " + ".." + "/shared/corpus", "see " + "DESIGN" + ".md",
               "MBUS" + ".md, timing", "cd /" + "work/main", "--link /" + "tmp/mbus"]
    for pattern, sample in zip(OUTSIDE, samples, strict=True):
        assert re.search(pattern, sample), (pattern, sample)
    assert not any(re.search(p, "docs/design.md, docs/mbus-facts.md, lock dir /tmp")
                   for p in OUTSIDE)


def heading_anchors(markdown: str) -> set[str]:
    """The anchors of a Markdown file's headings as GitHub makes them (lower case, spaces to
    hyphens, punctuation but hyphens and underscores dropped)."""
    anchors, fenced = set(), False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (heading := re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)):
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


def markdown_links(markdown: str) -> list[tuple[int, str]]:
    """(line, target) of every link outside code blocks."""
    links, fenced = [], False
    for number, line in enumerate(markdown.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            links += [(number, m.group(1)) for m in _MD_LINK.finditer(line)]
    return links


def test_every_relative_markdown_link_reaches_a_repository_file():
    tracked = tracked_files()
    files = set(tracked)
    folders = {str(Path(p).parent) for p in tracked} | {
        str(parent) for p in tracked for parent in Path(p).parents}
    broken, checked = [], 0
    for page in (p for p in tracked if p.endswith(".md")):
        text = _text(page) or ""
        for line, target in markdown_links(text):
            path = resolve(page, target)
            anchor = target.partition("#")[2]
            if target.startswith("#"):
                path = page
            if path is None:
                continue
            checked += 1
            if path.startswith("../") or (path not in files and path.rstrip("/") not in folders):
                broken.append(f"{page}:{line}: {target} (no such file in the repository)")
            elif anchor and path.endswith(".md") and anchor not in heading_anchors(
                    (REPOSITORY / path).read_text(encoding="utf-8")):
                broken.append(f"{page}:{line}: {target} (no heading #{anchor} in {path})")
    assert checked > 50
    assert broken == []


def test_heading_anchors_are_githubs():
    text = "# Rig files\n## `[[dut]]`\n## Outside DUTs: program, black box, agent\n```\n# no\n```"
    assert heading_anchors(text) == {"rig-files", "dut", "outside-duts-program-black-box-agent"}


_CITATION = re.compile(r"\b([\w-]+\.md)[,:]? \"([^\"]+)\"")


def test_citations_of_a_docs_page_name_what_is_on_it():
    """``docs/mbus-facts.md "Timing"`` in a docstring or page: the page exists in docs/ (or
    hardware/docs/) and has that heading or text."""
    pages = {p.name: p for folder in ("docs", "hardware/docs")
             for p in (REPOSITORY / folder).glob("*.md")}
    wrong, checked = [], 0
    for path in tracked_files():
        text = _text(path)
        if text is None or path.startswith("tests/data/"):
            continue
        for match in _CITATION.finditer(text):
            # a citation may wrap onto a comment line: "Outside\n# DUTs"
            name, cited = match.group(1), " ".join(match.group(2).replace("#", " ").split())
            if name == "README.md":
                wrong.append(f"{path}: cites README.md {cited!r}: the user guide is in docs/")
                continue
            if name not in pages:
                continue
            checked += 1
            target = " ".join(pages[name].read_text(encoding="utf-8").split()).lower()
            if cited.lower() not in target:
                wrong.append(f"{path}: cites {name} {cited!r}, which it does not have")
    assert checked > 20
    assert wrong == []
