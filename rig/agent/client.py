"""AgentClient: the rig's control of a slave-Pi agent over HTTP (the DUT control interface).

Implements what ``Dut.control`` offers (docs/architecture.md "Rig and DUT"): ``arm``,
``disarm``, ``set_defects``, ``identity``, ``trace``, plus the agent's extras (status, baud,
power-fail line, reset). Every failure is an MBusRigError a user can act on: the agent not
running (connection refused), a wrong token (401), a timeout (RigTimeoutError), a refused
request (ConfigError with the agent's reason).
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from hardware.config_file import read_text
from hardware.trace import Trace, TraceEntry
from protocol.errors import ConfigError, HardwareError, MBusRigError, RigTimeoutError

MAX_REPLY = 64 * 1024 * 1024


def read_token_file(path: str | Path) -> str:
    """The token in ``path`` (surrounding whitespace removed); ConfigError naming the file."""
    file = Path(path)
    token = read_text(file, "token file").strip()
    if not token:
        raise ConfigError(f"token file {file}: empty")
    if any(ch.isspace() for ch in token):
        raise ConfigError(f"token file {file}: the token must be one word")
    return token


class AgentClient:
    """HTTP/JSON client of ``mbus-rig agent`` at ``base_url`` (``http://HOST:PORT``)."""

    def __init__(self, base_url: str, token: str, timeout: float = 5.0, *,
                 service: str = "agent", server_command: str = "mbus-rig agent") -> None:
        self.service, self.server_command = service, server_command
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{service} URL {base_url!r} is not an http:// or https:// URL")
        if not token:
            raise ConfigError(f"{service} token is empty")
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __repr__(self) -> str:  # never shows the token
        return f"AgentClient({self.base_url!r})"

    # --- the DUT control interface ---------------------------------------------------------

    def arm(self, kind: str, count: int = 1, **params: Any) -> dict[str, Any]:
        """Arm a device-level fault for the next ``count`` answers."""
        return self._call("POST", "/faults", {"kind": kind, "count": count, "params": params})

    def disarm(self) -> dict[str, Any]:
        return self._call("DELETE", "/faults")

    def set_defects(self, names: Iterable[str]) -> dict[str, Any]:
        return self._call("PUT", "/defects", {"defects": sorted(names)})

    def identity(self) -> dict[str, Any]:
        return self._call("GET", "/identity")

    def trace(self, since: float | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """The slave-side trace entries (TraceEntry fields; times on the agent's clock)."""
        query = {k: v for k, v in (("since", since), ("limit", limit)) if v is not None}
        data = self._call("GET", "/trace" + (f"?{urlencode(query)}" if query else ""))
        entries = data.get("entries")
        if not isinstance(entries, list):
            raise HardwareError(f"agent at {self.base_url}: malformed trace reply")
        return entries

    def slave_trace(self, since: float | None = None, limit: int | None = None) -> Trace:
        """The slave-side trace as a :class:`hardware.trace.Trace` (frames, table, JSON)."""
        try:
            return Trace(TraceEntry(**entry) for entry in self.trace(since, limit))
        except (TypeError, ValueError) as exc:
            raise HardwareError(f"agent at {self.base_url}: malformed trace reply ({exc})") from None

    # --- the agent's extras ----------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/status")

    def profile(self) -> dict[str, Any]:
        return self._call("GET", "/profile")

    def set_baud(self, baud: int) -> dict[str, Any]:
        return self._call("PUT", "/baud", {"baud": baud})

    def clear_trace(self) -> dict[str, Any]:
        return self._call("DELETE", "/trace")

    def power_fail(self) -> dict[str, Any]:
        """``{"wired": bool, "asserted": bool | None}`` for the TSS721A PF line."""
        return self._call("GET", "/power-fail")

    def reset(self) -> dict[str, Any]:
        return self._call("POST", "/reset")

    def openapi(self) -> dict[str, Any]:
        return self._call("GET", "/openapi.json")

    # --- transport -------------------------------------------------------------------------

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request; the JSON object replied, or an MBusRigError naming what failed."""
        return self._call(method, path, body)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self._token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        where = f"{self.service} at {self.base_url}"
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                payload = response.read(MAX_REPLY)
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc, method, path) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError | socket.timeout):
                raise RigTimeoutError(f"{where}: no reply within {self.timeout} s") from None
            if isinstance(reason, ConnectionRefusedError):
                raise HardwareError(f"{where}: connection refused (is `{self.server_command}` "
                                    "running and listening there?)") from None
            raise HardwareError(f"{where}: cannot connect: {reason}") from None
        except TimeoutError:
            raise RigTimeoutError(f"{where}: no reply within {self.timeout} s") from None
        except OSError as exc:
            raise HardwareError(f"{where}: connection failed: {exc}") from None
        try:
            result = json.loads(payload)
        except ValueError:
            raise HardwareError(f"{where}: {method} {path}: reply is not JSON") from None
        if not isinstance(result, dict):
            raise HardwareError(f"{where}: {method} {path}: reply is not a JSON object")
        return result

    def _http_error(self, exc: urllib.error.HTTPError, method: str, path: str) -> MBusRigError:
        try:
            reason = json.loads(exc.read(65536)).get("error", "")
        except (ValueError, AttributeError, OSError):
            reason = ""
        where = f"{self.service} at {self.base_url}: {method} {path}"
        if exc.code == 401:
            return HardwareError(f"{where}: token refused (401): check the token file matches "
                                 f"the {self.service}'s")
        if exc.code == 400:
            return ConfigError(f"{where}: refused: {reason or 'bad request'}")
        return HardwareError(f"{where}: HTTP {exc.code}: {reason or exc.reason}")
