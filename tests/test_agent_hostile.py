"""The agent as a real subprocess on 127.0.0.1, attacked by a hostile client.

Every refused request must get its status with a reason, change nothing, and leave the agent
serving. Raw sockets, so nothing between the test and the server tidies the requests up.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TOKEN = "hostile-test-token-0123456789"
REQUEST_TIMEOUT = 0.5  # the agent's per-read timeout; a whole request gets 3x
GUARD = 10.0  # the test's own socket timeout: a hang fails the test instead of blocking it


@dataclass
class Running:
    proc: subprocess.Popen[str]
    host: str
    port: int


def start_agent(tmp_path: Path, *extra: str) -> tuple[Running, int, int]:
    master, slave = os.openpty()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rig", "agent", "--port", os.ttyname(slave), "--listen",
         "127.0.0.1:0", "--token-file", str(token_file), "--no-echo",
         "--request-timeout", str(REQUEST_TIMEOUT), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready = select.select([proc.stdout], [], [], 30)[0]
    line = proc.stdout.readline() if ready else ""
    match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
    if not match:
        proc.kill()
        raise AssertionError(f"agent did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    return Running(proc, "127.0.0.1", int(match.group(1))), master, slave


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running, master, slave = start_agent(tmp_path_factory.mktemp("agent"))
    try:
        yield running
    finally:
        if running.proc.poll() is None:
            running.proc.send_signal(signal.SIGTERM)
            try:
                running.proc.wait(10)
            except subprocess.TimeoutExpired:
                running.proc.kill()
        os.close(master)
        os.close(slave)


def connect(agent: Running) -> socket.socket:
    sock = socket.create_connection((agent.host, agent.port), timeout=GUARD)
    sock.settimeout(GUARD)
    return sock


def read_all(sock: socket.socket) -> bytes:
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def exchange(agent: Running, raw: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    """Send ``raw``, read the reply until the server closes; (status, headers, JSON body)."""
    with connect(agent) as sock:
        sock.sendall(raw)
        reply = read_all(sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, json.loads(body) if body.strip() else {}


def request(agent: Running, method: str, path: str, body: bytes | None = None, *,
            auth: str | None = f"Bearer {TOKEN}", headers: dict[str, str] | None = None
            ) -> tuple[int, dict[str, str], dict[str, object]]:
    lines = [f"{method} {path} HTTP/1.1", "Host: agent"]
    if auth is not None:
        lines.append(f"Authorization: {auth}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    return exchange(agent, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))


def state(agent: Running) -> dict[str, object]:
    status, _, body = request(agent, "GET", "/status")
    assert status == 200
    return body


@pytest.mark.parametrize(
    "auth",
    [None, "Bearer", "Bearer ", "Bearer wrong", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}",
     f"Basic {TOKEN}", TOKEN, f"Token {TOKEN}", "Bearer \u00e9\u00e9"],
    ids=["none", "empty-bearer", "blank-bearer", "wrong", "longer", "shorter", "basic",
         "no-scheme", "other-scheme", "latin1"],
)
def test_bad_credentials_get_401_and_change_nothing(agent: Running, auth: str | None) -> None:
    body = json.dumps({"kind": "silence", "count": 5}).encode()
    status, headers, reply = request(agent, "POST", "/faults", body, auth=auth)
    assert status == 401
    assert headers["www-authenticate"].startswith("Bearer")
    assert reply == {"error": "missing or wrong bearer token"}
    assert state(agent)["armed"] == []


def test_unknown_route_without_token_is_401_not_404(agent: Running) -> None:
    assert request(agent, "GET", "/admin", auth=None)[0] == 401


def test_scheme_is_case_insensitive(agent: Running) -> None:
    assert request(agent, "GET", "/status", auth=f"bearer {TOKEN}")[0] == 200


@pytest.mark.parametrize("path", ["/", "/admin", "/status/../faults", "/faults/1", "/%00",
                                  "/openapi.yaml"])
def test_unknown_routes_are_404(agent: Running, path: str) -> None:
    status, _, reply = request(agent, "GET", path)
    assert status == 404 and "no such endpoint" in str(reply["error"])


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("DELETE", "/status", "GET"), ("POST", "/identity", "GET"), ("PATCH", "/faults", "DELETE, POST"),
    ("GET", "/baud", "PUT"), ("PUT", "/reset", "POST"), ("OPTIONS", "/trace", "DELETE, GET"),
])
def test_wrong_methods_are_405_with_allow(agent: Running, method: str, path: str, allow: str) -> None:
    status, headers, reply = request(agent, method, path)
    assert status == 405 and headers["allow"] == allow
    assert method in str(reply["error"])


def test_head_gets_405_without_body(agent: Running) -> None:
    with connect(agent) as sock:
        sock.sendall(f"HEAD /status HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        reply = read_all(sock)
    assert reply.startswith(b"HTTP/1.0 405") and reply.endswith(b"\r\n\r\n")


@pytest.mark.parametrize(("body", "why"), [
    (b"{", "not valid JSON"),
    (b"{'kind': 'silence'}", "not valid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[]", "must be a JSON object, got an array"),
    (b"\"silence\"", "must be a JSON object, got a string"),
    (b"null", "must be a JSON object, got null"),
    (b"{}", "missing field(s): kind"),
    (b'{"kind": 5}', "kind must be a string, got a number"),
    (b'{"kind": ""}', "kind must be 1..64 characters"),
    (b'{"kind": "meltdown"}', "kind 'meltdown' is not known"),
    (b'{"kind": "silence", "count": "3"}', "count must be an integer, got a string"),
    (b'{"kind": "silence", "count": true}', "count must be an integer, got a boolean"),
    (b'{"kind": "silence", "count": 1.5}', "count must be an integer, got a number"),
    (b'{"kind": "silence", "count": 0}', "count must be 1..1000"),
    (b'{"kind": "silence", "count": 99999999999999999999}', "count must be 1..1000"),
    (b'{"kind": "late", "params": [1]}', "params must be an object, got an array"),
    (b'{"kind": "late", "params": {"delay": NaN}}', "NaN is not allowed"),
    (b'{"kind": "late", "params": {"delay": 1e999}}', "must be a number, a boolean or a short string"),
    (b'{"kind": "late", "params": {"delay": {"x": 1}}}', "must be a number"),
    (b'{"kind": "late", "params": {"delay": 99}}', "delay=99 must be a number 0.0..60.0"),
    (b'{"kind": "late", "params": {"colour": 1}}', "unknown parameter 'colour'"),
    (b'{"kind": "silence", "extra": 1}', "unknown field(s): extra"),
    (b"[" * 30000 + b"]" * 30000, "nested too deeply"),
])
def test_bad_bodies_are_400_with_the_reason(agent: Running, body: bytes, why: str) -> None:
    status, _, reply = request(agent, "POST", "/faults", body)
    assert status == 400
    assert why in str(reply["error"])
    assert state(agent)["armed"] == []


@pytest.mark.parametrize(("method", "path", "body", "why"), [
    ("PUT", "/defects", b'{"defects": "ignores_fcb"}', "defects must be an array"),
    ("PUT", "/defects", b'{"defects": [1]}', "defect must be a string"),
    ("PUT", "/defects", json.dumps({"defects": ["x"] * 33}).encode(), "at most 32"),
    ("PUT", "/baud", b'{"baud": 1234}', "not an M-Bus rate"),
    ("PUT", "/baud", b'{"baud": "2400"}', "baud must be an integer"),
    ("PUT", "/baud", b"", "request body missing"),
    ("POST", "/reset", b'{"hard": true}', "unknown field(s): hard"),
    ("GET", "/trace?limit=0", None, "limit must be an integer"),
    ("GET", "/trace?since=abc", None, "is not a number"),
    ("GET", "/trace?since=inf", None, "must be finite"),
    ("GET", "/trace?format=xml", None, "format must be chars or frames"),
    ("GET", "/trace?debug=1", None, "unknown query parameter"),
    ("GET", "/trace?" + "&".join(f"a{i}=1" for i in range(20)), None, "too many query parameters"),
])
def test_other_bad_requests_are_400(agent: Running, method: str, path: str, body: bytes | None,
                                    why: str) -> None:
    status, _, reply = request(agent, method, path, body)
    assert status == 400 and why in str(reply["error"])
    assert state(agent)["defects"] == [] and state(agent)["baud"] == 2400


def test_declared_huge_body_is_413_without_reading_it(agent: Running) -> None:
    status, _, reply = request(agent, "POST", "/faults", None,
                               headers={"Content-Length": str(10**9)})
    assert status == 413 and "over the limit" in str(reply["error"])


def test_sent_huge_body_is_413(agent: Running) -> None:
    body = b'{"kind": "silence", "pad": "' + b"x" * 200_000 + b'"}'
    with connect(agent) as sock:
        head = (f"POST /faults HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        sock.sendall(head)
        try:
            sock.sendall(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the agent answered and closed before taking it all: as it should
        try:
            reply = read_all(sock)
        except ConnectionResetError:
            pytest.fail("connection reset before the 413 arrived")
    assert reply.startswith(b"HTTP/1.0 413")


@pytest.mark.parametrize(("headers", "status", "why"), [
    ({"Transfer-Encoding": "chunked"}, 411, "chunked bodies are not supported"),
    ({"Content-Length": "-5"}, 400, "is not a size"),
    ({"Content-Length": "ten"}, 400, "is not a size"),
])
def test_bad_framing_headers(agent: Running, headers: dict[str, str], status: int, why: str) -> None:
    got, _, reply = request(agent, "POST", "/faults", None, headers=headers)
    assert got == status and why in str(reply["error"])


def test_too_many_headers_is_431(agent: Running) -> None:
    extra = {f"X-H{i}": "1" for i in range(150)}
    assert request(agent, "GET", "/status", headers=extra)[0] == 431


def test_overlong_request_line_is_414(agent: Running) -> None:
    assert request(agent, "GET", "/status?" + "a" * 70_000)[0] == 414


def test_garbage_request_line_is_400(agent: Running) -> None:
    status, _, _ = exchange(agent, b"\x16\x03\x01\x02\x00 hello\r\n\r\n")
    assert status == 400


def test_slowloris_headers_are_cut_off(agent: Running) -> None:
    """Headers dribbled one byte at a time, each within the per-read timeout: the whole-
    request deadline closes the connection; the test's guard only stops a hang."""
    with connect(agent) as sock:
        sock.sendall(b"GET /status HTTP/1.1\r\n")
        closed = False
        for _ in range(int(GUARD / 0.1)):
            try:
                sock.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if select.select([sock], [], [], 0.1)[0]:
                closed = sock.recv(100) == b""
                break
        assert closed, "the agent kept a dribbling request open"
    assert state(agent)["loop_running"]


def test_partial_body_times_out(agent: Running) -> None:
    with connect(agent) as sock:
        sock.sendall(f"POST /faults HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                     "Content-Length: 100\r\n\r\n{\"kind\"".encode())
        assert read_all(sock) == b""  # closed after the read timeout, nothing done
    assert state(agent)["armed"] == []


def test_idle_connection_is_closed(agent: Running) -> None:
    with connect(agent) as sock:
        assert read_all(sock) == b""


def test_connection_flood_gets_503_and_agent_recovers(tmp_path: Path) -> None:
    # its own agent with a long read timeout, so the idle connections hold their slots
    agent, master, slave = start_agent(tmp_path, "--request-timeout", "8")
    try:
        idle = [connect(agent) for _ in range(16)]  # the agent's cap
        try:
            extra = connect(agent)
            with extra:
                assert read_all(extra).startswith(b"HTTP/1.0 503")
        finally:
            for sock in idle:
                sock.close()
        for _ in range(50):  # the slots free as the server sees the closed connections
            status, _, body = request(agent, "GET", "/status")
            if status == 200:
                break
        assert status == 200 and body["loop_running"]
    finally:
        agent.proc.kill()
        agent.proc.wait()
        os.close(master)
        os.close(slave)


def test_agent_survived_everything_and_stops_cleanly(tmp_path: Path) -> None:
    running, master, slave = start_agent(tmp_path)
    try:
        request(running, "POST", "/faults", b"{")
        request(running, "POST", "/faults", b'{"kind":"silence"}', auth="Bearer nope")
        status, _, body = request(running, "POST", "/faults", b'{"kind": "silence", "count": 2}')
        assert status == 200 and body["armed"] == {"kind": "silence", "remaining": 2, "params": {}}
        running.proc.send_signal(signal.SIGTERM)
        out, err = running.proc.communicate(timeout=10)
        assert running.proc.returncode == 0
        assert "stopped" in out
        assert TOKEN not in out + err
    finally:
        if running.proc.poll() is None:
            running.proc.kill()
        os.close(master)
        os.close(slave)
