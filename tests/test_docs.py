"""The documentation: the generated CLI reference is current and says what ``--help`` says;
the rig-file page documents every key rig/config.py takes and its examples are valid rig
files; the README is a short front page opening with the two commands; the site hook
points repository links at the site's pages; the built site loads nothing from the
internet when opened in a browser."""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from offline_browser import chromium_offline, needs_chromium, png_pixels

from docs_site.hooks import site_link, site_markdown, site_path
from rig import cli_reference, config
from rig.cli import build_parser, subcommand_parsers

REPOSITORY = Path(__file__).resolve().parent.parent
DOCS = REPOSITORY / "docs"
BUILD_TIMEOUT_S = 300


def _read(name: str) -> str:
    return (REPOSITORY / name).read_text(encoding="utf-8")


# --- the CLI reference ---------------------------------------------------------------------

def test_cli_reference_is_current():
    assert _read("docs/cli.md") == cli_reference.render(), (
        "docs/cli.md is out of date: run .venv/bin/python -m rig.cli_reference")


def test_cli_reference_check_mode_tells_an_outdated_file(tmp_path, capsys):
    page = tmp_path / "cli.md"
    page.write_text("# old\n")
    assert cli_reference.main(["--check", "--output", str(page)]) == 1
    assert "out of date: run python -m rig.cli_reference" in capsys.readouterr().err
    assert cli_reference.main(["--output", str(page)]) == 0
    assert cli_reference.main(["--check", "--output", str(page)]) == 0


def test_cli_reference_has_every_command_and_every_option_of_its_help():
    page = cli_reference.render()
    parsers = list(cli_reference.command_parsers(build_parser()))
    assert {"mbus-rig run", "mbus-rig rig check", "mbus-rig scan"} <= {p.prog for p in parsers}
    for parser in parsers:
        section = page.split(f"`{parser.prog}`\n", 1)[1]
        section = section.split("\n#", 1)[0]
        options = {o for a in parser._actions if a.help != argparse.SUPPRESS
                   for o in a.option_strings if o in parser.format_help()}
        missing = {o for o in options if f"`{o}" not in section} - {"-h", "--help"}
        assert not missing, f"{parser.prog}: {sorted(missing)} not in docs/cli.md"
        for name in subcommand_parsers(parser):
            assert f"| `{name}` |" in section


# --- rig files -------------------------------------------------------------------------------

def _sections(markdown: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", markdown, flags=re.MULTILINE)
    return {title: body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


RIG_FILE_TABLES = {
    "The top level": config.TOP_KEYS,
    "`[master]`": config.MASTER_KEYS,
    "`[bus]`": config.BUS_KEYS + tuple(config.SIM_PARAMETERS),
    "`[gpio]`": config.GPIO_KEYS + config.LINE_KEYS + tuple(config.LINE_ROLES),
    "`[[dut]]`": config.DUT_KEYS + config.DUT_KINDS + config.PROTOCOL_CAPABILITIES,
    "`[report]`": config.REPORT_KEYS,
    "`[labgrid]`": config.LABGRID_KEYS,
}


@pytest.mark.parametrize("title", RIG_FILE_TABLES)
def test_rig_files_page_documents_every_key_of_the_table(title):
    sections = _sections(_read("docs/rig-files.md"))
    assert title in sections, f"docs/rig-files.md has no section '## {title}'"
    missing = [k for k in RIG_FILE_TABLES[title] if f"`{k}`" not in sections[title]]
    assert missing == [], f"docs/rig-files.md '{title}' does not document {missing}"


def _toml_blocks(markdown: str) -> list[str]:
    return re.findall(r"```toml\n(.*?)```", markdown, re.DOTALL)


@pytest.mark.parametrize("page", ["docs/rig-files.md", "docs/validating-a-pcb.md"])
def test_rig_file_examples_in_the_docs_are_valid_rig_files(page, tmp_path):
    """Every example is read by rig/config.py as it stands; a lone [[dut]] table as a DUT
    of a simulated rig (folders it names as cwd made next to it)."""
    blocks = _toml_blocks(_read(page))
    assert blocks
    for block in blocks:
        data = tomllib.loads(block)
        if set(data) <= {"dut"}:
            data = {"bus": {"kind": "sim"}, **data}
        for dut in data.get("dut", []):
            if "cwd" in dut:
                (tmp_path / dut["cwd"]).mkdir(exist_ok=True)
        rig = config.config_from_dict(data, "example.toml", base=tmp_path)
        assert rig.duts or "report" in data, block


# --- README and getting started -----------------------------------------------------------------

def _commands(markdown: str) -> str:
    block = re.search(r"```sh\n(.*?)```", markdown, re.DOTALL)
    assert block
    return block.group(1)


def test_readme_is_a_short_front_page_opening_with_the_two_commands():
    readme = _read("README.md")
    assert len(readme.splitlines()) < 200
    first_block = readme.split("```sh\n", 1)
    assert first_block[0].count("\n") <= 2, "the commands come first, under the title"
    commands = _commands(readme)
    assert "mbus-rig run --rig sim --report reports" in commands
    assert "python -m pytest" in commands
    assert commands in _read("docs/getting-started.md"), (
        "docs/getting-started.md shows the README's two commands as they are")


def test_readme_links_every_page_of_the_site():
    readme = _read("README.md")
    nav = re.findall(r":\s*([\w/-]+\.md)\s*$", _read("mkdocs.yml"), re.MULTILINE)
    assert len(nav) > 20
    for page in nav:
        source = "hardware/docs/README.md" if page == "hardware/index.md" else (
            None if page == "index.md" or page.startswith("hardware/") else f"docs/{page}")
        if source:
            assert f"]({source})" in readme, f"README.md does not link {source}"


# --- the site hook -------------------------------------------------------------------------------

def test_site_paths_of_repository_files():
    assert site_path("docs/rig-files.md") == "rig-files.md"
    assert site_path("README.md") == "index.md"
    assert site_path("hardware/docs/README.md") == "hardware/index.md"
    assert site_path("hardware/docs/wiring.md") == "hardware/wiring.md"
    assert site_path("rig/config.py") is None


def test_repository_links_point_at_the_site_pages():
    assert site_link("README.md", "docs/rig-files.md#rig-files") == "rig-files.md#rig-files"
    assert site_link("README.md", "hardware/docs/README.md") == "hardware/index.md"
    assert site_link("hardware/docs/wiring.md", "../../docs/mbus-facts.md#timing") == (
        "../mbus-facts.md#timing")
    assert site_link("hardware/docs/slave-pi.md", "pi-setup.md") == "pi-setup.md"
    assert site_link("docs/real-hardware.md", "../hardware/docs/bom.md") == "hardware/bom.md"
    assert site_link("docs/reports.md", "rig-files.md") == "rig-files.md"
    assert site_link("docs/reports.md", "#history") == "#history"
    assert site_link("README.md", "https://example.org/x") == "https://example.org/x"
    assert site_link("README.md", "tests/data/libmbus/COPYING") is None  # not in the site
    # links to nothing stay links, so that mkdocs build --strict names them
    assert site_link("README.md", "docs/no-such-page.md") == "no-such-page.md"
    assert site_link("README.md", "no-such-file.txt") == "no-such-file.txt"


def test_site_markdown_rewrites_links_outside_code_only():
    text = ("See [facts](docs/mbus-facts.md) and [the licence](tests/data/libmbus/COPYING).\n"
            "```sh\n[not a link](docs/mbus-facts.md)\n```\n")
    assert site_markdown("README.md", text) == (
        "See [facts](mbus-facts.md) and the licence (`tests/data/libmbus/COPYING`).\n"
        "```sh\n[not a link](docs/mbus-facts.md)\n```\n")


def test_pipes_in_table_code_read_as_github_and_the_site_read_them():
    assert site_markdown("docs/x.md", "| `--rig sim\\|FILE` | a \\| b |\n`a\\|b`\n") == (
        "| `--rig sim|FILE` | a \\| b |\n`a\\|b`\n")


# --- the built site ----------------------------------------------------------------------------

needs_mkdocs = pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None,
                                  reason="mkdocs is not installed (scripts/setup.sh installs "
                                         "the docs extra)")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built with --strict as CI builds it."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--site-dir", str(out)], cwd=REPOSITORY, capture_output=True,
                          text=True, timeout=BUILD_TIMEOUT_S,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return out


_EXTERNAL_LOAD = re.compile(
    r"<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)=[\"']?(?:https?:)?//", re.IGNORECASE)


@needs_mkdocs
def test_site_has_every_page_and_no_web_fonts_or_analytics(site):
    for page in ("index.html", "getting-started/index.html", "cli/index.html",
                 "scenarios/index.html", "hardware/wiring/index.html", "rig-files/index.html"):
        assert (site / page).is_file(), page
    front = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="getting-started/"' in front  # README's docs/getting-started.md, as a site link
    for html in site.rglob("*.html"):
        text = html.read_text(encoding="utf-8")
        assert not re.search(r"fonts\.googleapis|fonts\.gstatic|googletagmanager|"
                             r"google-analytics", text), html
        assert not _EXTERNAL_LOAD.search(text), f"{html} loads something from outside"


@needs_mkdocs
@needs_chromium
@pytest.mark.parametrize("page", ["index.html", "rig-files/index.html"])
def test_site_pages_open_offline_in_chromium_and_ask_the_network_nothing(site, page, tmp_path):
    shot, requests = chromium_offline((site / page).as_uri(), tmp_path, height=900)
    assert requests == []
    width, height, colours = png_pixels(shot.read_bytes())
    assert (width, height) == (1280, 900)
    assert len(colours) > 20, "the page is blank"
