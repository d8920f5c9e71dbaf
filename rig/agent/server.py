"""The agent's HTTP server (stdlib ThreadingHTTPServer) with the protections a LAN service needs.

- Every request needs ``Authorization: Bearer <token>`` (compared in constant time); anything
  else is 401 and changes nothing. The token is checked before the body is read.
- Bodies are bounded (``Content-Length`` above :data:`MAX_BODY` is 413, chunked bodies 411)
  and requests are bounded in time: a per-read socket timeout, and a whole-request deadline
  after which the connection is shut (a slowloris client that dribbles bytes is cut off).
- Concurrent connections are capped; beyond the cap a connection gets 503 and is closed.
- Unknown paths are 404, wrong methods 405 (with ``Allow``), bad bodies 400 saying what is
  wrong; a failure inside the agent is 500 and the agent keeps running.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import threading
from collections.abc import Callable
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from .api import OPENAPI_PATH, AgentBackend, Reply, allowed_methods, handle

log = logging.getLogger("mbus-rig.agent")

#: Routes one authenticated request: (method, target, body) -> Reply, never raising.
Route = Callable[[str, str, bytes], Reply]

MAX_BODY = 64 * 1024
MAX_CONNECTIONS = 16
READ_TIMEOUT = 10.0
REQUEST_DEADLINE = 30.0


def openapi_document() -> bytes:
    """The OpenAPI description shipped next to this module."""
    return resources.files(__package__).joinpath("openapi.json").read_bytes()


class AgentServer(ThreadingHTTPServer):
    """Serves one AgentBackend to clients that know the token (or, given ``route``, another
    API with the same protections: the rig pair's line server, rig/farm/lines.py)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64  # listen backlog: above the connection cap, so excess ones get 503

    def __init__(
        self,
        address: tuple[str, int],
        backend: AgentBackend,
        token: str,
        *,
        read_timeout: float = READ_TIMEOUT,
        request_deadline: float = REQUEST_DEADLINE,
        max_body: int = MAX_BODY,
        max_connections: int = MAX_CONNECTIONS,
        route: Route | None = None,
    ) -> None:
        if not token:
            raise ValueError("the agent needs a non-empty token")
        self.backend = backend
        self.route: Route = route or partial(handle, backend)
        self.token = token.encode("utf-8")
        self.read_timeout = read_timeout
        self.request_deadline = request_deadline
        self.max_body = max_body
        self.openapi = openapi_document() if route is None else None
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, AgentHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            try:
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def authorised(self, header: str | None) -> bool:
        scheme, _, credentials = (header or "").partition(" ")
        if scheme.lower() != "bearer":  # auth schemes are case-insensitive (RFC 9110 11.1)
            return False
        given = credentials.strip().encode("utf-8", "surrogateescape")
        return hmac.compare_digest(given, self.token)


class AgentHandler(BaseHTTPRequestHandler):
    server: AgentServer
    server_version = "mbus-rig-agent"
    sys_version = ""
    protocol_version = "HTTP/1.0"
    default_request_version = "HTTP/1.0"  # even a garbled request line gets a status line

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.read_timeout)
        # The whole request (line, headers, body) must arrive before this deadline.
        self._deadline = threading.Timer(self.server.request_deadline, self._cut_off)
        self._deadline.daemon = True
        self._deadline.start()

    def finish(self) -> None:
        self._deadline.cancel()
        try:
            super().finish()
        except OSError:
            pass

    def _cut_off(self) -> None:
        log.warning("%s: request not complete in %.0f s; connection closed",
                    self.client_address[0], self.server.request_deadline)
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (TimeoutError, ConnectionError, OSError) as exc:
            log.info("%s: connection dropped: %s", self.client_address[0], exc)
            self.close_connection = True

    # every method goes through one dispatcher (404/405 are decided by the route table)
    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        self.close_connection = True
        if not self.server.authorised(self.headers.get("Authorization")):
            self._send(Reply(401, {"error": "missing or wrong bearer token"},
                             (("WWW-Authenticate", 'Bearer realm="mbus-rig-agent"'),)))
            return
        body = self._read_body()
        if body is None:
            return
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        if path == OPENAPI_PATH and self.command == "GET" and self.server.openapi is not None:
            self._send_bytes(200, self.server.openapi, ())
            return
        try:
            reply = self.server.route(self.command, self.path, body)
        except Exception:
            log.exception("internal error on %s %s", self.command, path)
            reply = Reply(500, {"error": "internal error in the agent (see its log)"})
        self._send(reply)

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding"):
            self._send(Reply(411, {"error": "chunked bodies are not supported: send Content-Length"}))
            return None
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        try:
            length = int(length_text)
            if length < 0:
                raise ValueError
        except ValueError:
            self._send(Reply(400, {"error": f"Content-Length {length_text!r} is not a size"}))
            return None
        if length > self.server.max_body:
            self._send(Reply(413, {"error": f"request body of {length} bytes is over the "
                                            f"limit of {self.server.max_body}"}))
            return None
        body = self.rfile.read(length)
        if len(body) < length:
            log.info("%s: body shorter than Content-Length", self.client_address[0])
            return None
        return body

    def _send(self, reply: Reply) -> None:
        payload = json.dumps(reply.body, sort_keys=True).encode("utf-8") + b"\n"
        self._send_bytes(reply.status, payload, reply.headers)

    def _send_bytes(self, status: int, payload: bytes, headers: tuple[tuple[str, str], ...]) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except OSError as exc:
            log.info("%s: reply not delivered: %s", self.client_address[0], exc)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, too long, too many headers) as JSON."""
        self.close_connection = True
        self._send(Reply(code, {"error": message or self.responses.get(code, ("error",))[0]}))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log.info("%s %s", self.client_address[0], format % args)


def serve_in_thread(server: AgentServer, poll_interval: float = 0.05) -> threading.Thread:
    """Run ``server`` in a daemon thread (tests, the loopback rig)."""
    thread = threading.Thread(target=server.serve_forever, args=(poll_interval,), name="agent-http",
                              daemon=True)
    thread.start()
    return thread


__all__ = ["AgentServer", "allowed_methods", "openapi_document", "serve_in_thread"]
