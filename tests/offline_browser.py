"""Pages opened in headless Chromium with the network blocked: a screenshot, the requests
the page made, and the colours of the screenshot (tests of the HTML report and the
documentation site)."""

from __future__ import annotations

import json
import shutil
import socket
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT_TIMEOUT_S = 120

needs_chromium = pytest.mark.skipif(CHROMIUM is None,
                                    reason="chromium is not installed (scripts/setup.sh)")


def png_pixels(png: bytes) -> tuple[int, int, Counter[bytes]]:
    """Width, height and how many pixels have each RGB colour (8-bit RGB or RGBA PNG)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = kind_of_colour = 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, kind_of_colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and kind_of_colour in (2, 6) and interlace == 0
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    bpp = 3 if kind_of_colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    counts: Counter[bytes] = Counter()
    prev = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):  # undo the PNG filter of this scanline
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        counts.update(bytes(line[i:i + 3]) for i in range(0, stride, bpp))
        prev = line
    return width, height, counts


def page_requests(netlog: Path) -> list[str]:
    """URLs a page opened from a file asked the network for (Chromium's net log: requests
    whose network isolation key is the file:// page; Chromium's own update and account
    checks have other keys)."""
    log = json.loads(netlog.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [e["params"]["url"] for e in log["events"]
            if e["type"] == start_job and str(e.get("params", {}).get(
                "network_isolation_key", "")).startswith("file://")]


def chromium_offline(url: str, folder: Path, *, height: int) -> tuple[Path, list[str]]:
    """Open ``url`` in headless Chromium with the network blocked (a proxy at a closed port,
    no name resolution); return the screenshot and the requests the page made."""
    assert CHROMIUM is not None
    folder.mkdir(parents=True, exist_ok=True)
    shot, netlog = folder / "shot.png", folder / "netlog.json"
    with socket.socket() as closed:  # bound, never listening: every connection is refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        done = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", f"--user-data-dir={folder / 'profile'}",
             f"--proxy-server=http://127.0.0.1:{port}", "--proxy-bypass-list=<-loopback>",
             "--host-resolver-rules=MAP * ~NOTFOUND", f"--log-net-log={netlog}",
             f"--window-size=1280,{height}", "--virtual-time-budget=8000",
             f"--screenshot={shot}", url],
            capture_output=True, text=True, timeout=SCREENSHOT_TIMEOUT_S)
    assert shot.exists() and netlog.exists(), done.stderr[-2000:]
    return shot, page_requests(netlog)
