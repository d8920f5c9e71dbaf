"""Links from a scenario's clause to the user's own copy of the standard.

EN 13757 is not free to share, so the report links into the copy the user has: a URL template
from the rig file (``[report] standard_url``) or ``mbus-rig run --standard-url``. Never a web
search. Placeholders, filled per clause reference (``tests_hil/_scenario.py`` CLAUSES, e.g.
"EN 13757-2 link layer, timing"):

``{clause}`` the whole reference; ``{part}`` the part's number (``13757-2``); ``{topic}``
the rest (``link layer, timing``); ``{page}`` the page given for the reference in
``[report.pages]`` (1 when not given). All are URL-encoded.

Allure 3's report follows only http(s) links: those also go into the test's Links; a file://
URL is shown on the scenario's page as text to copy (or serve the folder on 127.0.0.1).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from urllib.parse import quote

PLACEHOLDERS: tuple[str, ...] = ("clause", "part", "topic", "page")
SCHEMES: tuple[str, ...] = ("file", "http", "https")
_PART = re.compile(r"\s*((?:EN|ISO|IEC)[\s/]*([\d][\d-]*))")


def standard_part(clause: str) -> str:
    """'EN 13757-2 5.7.3' -> 'EN 13757-2' (the allure epic)."""
    match = _PART.match(clause)
    return match.group(1) if match else clause.split()[0]


def is_clickable_in_allure(url: str) -> bool:
    """Allure 3 makes only http(s) links clickable (a file:// link shows as bare text)."""
    return url.split(":", 1)[0].lower() in ("http", "https")


def template_problem(template: str) -> str | None:
    """What is wrong with a link template, or None when it is usable."""
    scheme = template.split(":", 1)[0].lower() if ":" in template else ""
    if scheme not in SCHEMES:
        return (f"{template!r} is not a file:// or http(s):// URL (e.g. "
                "file:///home/me/standards/EN{part}.pdf#page={page})")
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(template)
                  if name is not None]
    except ValueError as exc:
        return f"{template!r}: {exc} (write {{{{ and }}}} for literal braces)"
    for name, spec, conv in fields:
        if name not in PLACEHOLDERS or spec or conv:
            return (f"{template!r}: unknown placeholder {{{name}}} "
                    f"(allowed: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})")
    return None


def clause_link(template: str, clause: str, pages: Mapping[str, int] | None = None) -> str:
    """The link for ``clause`` (a clause reference) from a checked ``template``."""
    part = standard_part(clause)
    match = _PART.match(clause)
    number = match.group(2) if match else part
    topic = clause[len(match.group(0)):] if match else clause
    topic = topic.strip(" /,")
    page = (pages or {}).get(clause, 1)
    return template.format(clause=quote(clause, safe=""), part=quote(number, safe=""),
                           topic=quote(topic, safe=""), page=page)
