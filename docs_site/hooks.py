"""MkDocs hook (mkdocs.yml ``hooks:``): Markdown kept outside docs/ joins the site unchanged.

README.md is the site's front page and hardware/docs/ the Hardware section, read where they
are at build time (no copy that could drift). Every page's links are written for the
repository, so they work on GitHub; here each relative link is resolved in the repository
and pointed at where its target is in the site (``docs/rig-files.md`` from README.md is
``rig-files.md`` on the front page; ``../../docs/mbus-facts.md`` from hardware/docs/ is
``../mbus-facts.md``). A link to a repository file that is not in the site (a licence, a
source file) becomes its path as text; a link to nothing is left as it is, and
``mkdocs build --strict`` names it.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

#: The repository folder (this file is docs_site/hooks.py).
REPOSITORY = Path(__file__).resolve().parent.parent

#: Repository paths that join the site from outside docs/: (repository path, site path).
#: A path ending in "/" is a folder: every file in it, README.md as the folder's index.
OUTSIDE_DOCS: tuple[tuple[str, str], ...] = (
    ("README.md", "index.md"),
    ("hardware/docs/", "hardware/"),
)

_LINK = re.compile(r"\[([^\]]*)\]\(<?([^)\s>]+)>?\)")
_FENCE = re.compile(r"^\s*(```|~~~)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_CODE_SPAN = re.compile(r"`[^`]*`")


def site_path(repository_path: str) -> str | None:
    """Where the repository file ``repository_path`` is in the site (None: not in it)."""
    if repository_path.startswith("docs/"):
        return repository_path.removeprefix("docs/")
    for source, target in OUTSIDE_DOCS:
        if not source.endswith("/"):
            if repository_path == source:
                return target
        elif repository_path.startswith(source):
            name = repository_path.removeprefix(source)
            return target + ("index.md" if name == "README.md" else name)
    return None


def repository_path(site_file: str) -> str:
    """The repository file a site file comes from (the inverse of :func:`site_path`)."""
    for source, target in OUTSIDE_DOCS:
        if not source.endswith("/"):
            if site_file == target:
                return source
        elif site_file.startswith(target):
            name = site_file.removeprefix(target)
            return source + ("README.md" if name == "index.md" else name)
    return "docs/" + site_file


def resolve(page: str, target: str) -> str | None:
    """The repository path a relative link ``target`` in the repository file ``page`` points
    at, without its anchor (None: a URL, an anchor in the page, or an absolute path)."""
    if _SCHEME.match(target) or target.startswith(("#", "/")):
        return None
    path = target.partition("#")[0]
    return posixpath.normpath(posixpath.join(posixpath.dirname(page), path))


def site_link(page: str, target: str) -> str | None:
    """The link ``target``, written in the repository file ``page``, as the site needs it.

    None: it points at a repository file or folder that is not in the site. URLs, anchors
    within the page and links to nothing come back unchanged."""
    resolved = resolve(page, target)
    own = site_path(page)
    if resolved is None or own is None or resolved.startswith("../"):
        return target
    in_site = site_path(resolved)
    if in_site is None:
        return None if (REPOSITORY / resolved).exists() else target
    anchor = target.partition("#")[1:]
    return posixpath.relpath(in_site, posixpath.dirname(own) or ".") + "".join(anchor)


def _site_link_markdown(page: str, match: re.Match[str]) -> str:
    text, target = match.group(1), match.group(2)
    link = site_link(page, target)
    if link is None:
        path = resolve(page, target)
        return text if path and path in text else f"{text} (`{path}`)"
    return f"[{text}]({link})"


def table_row_for_site(line: str) -> str:
    """A table row with ``\\|`` in its code spans (how GitHub reads a pipe inside code in a
    table cell) as the ``|`` Python-Markdown wants there (it keeps code spans whole)."""
    if not line.lstrip().startswith("|"):
        return line
    return _CODE_SPAN.sub(lambda m: m.group(0).replace("\\|", "|"), line)


def site_markdown(page: str, markdown: str) -> str:
    """``markdown`` of the repository file ``page`` with every link outside code blocks made
    a site link (:func:`site_link`), or text where its target is not in the site, and pipes
    in table cells' code as the site's Markdown reads them (:func:`table_row_for_site`)."""
    out, fenced = [], False
    for line in markdown.splitlines(keepends=True):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            line = table_row_for_site(_LINK.sub(lambda m: _site_link_markdown(page, m), line))
        out.append(line)
    return "".join(out)


def outside_docs_files() -> list[tuple[Path, str]]:
    """(file, site path) of every repository file that joins the site from outside docs/."""
    found = []
    for source, target in OUTSIDE_DOCS:
        where = REPOSITORY / source
        files = sorted(p for p in where.iterdir() if p.is_file()) if source.endswith("/") else [where]
        for file in files:
            relative = file.relative_to(REPOSITORY).as_posix()
            found.append((file, site_path(relative) or target))
    return found


def on_files(files: Any, config: Any) -> Any:
    """Add README.md and hardware/docs/ to the site's files, read from where they are."""
    from mkdocs.structure.files import File

    for file, site in outside_docs_files():
        files.append(File.generated(config, site, abs_src_path=str(file)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Point the page's repository links at the site's pages."""
    return site_markdown(repository_path(page.file.src_uri), markdown)
