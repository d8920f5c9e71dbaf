"""The slave agent's HTTP/JSON API: routes, request validation, and what a backend provides.

Transport-free: :func:`handle` takes a method, a path with query, and the body bytes, and
returns a status and a JSON-able document. The HTTP server (``rig/agent/server.py``) adds
authentication and size/time limits around it; ``openapi.json`` describes the same routes
(a test keeps the two in step).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from protocol.errors import ConfigError, HardwareError, MBusRigError
from protocol.timing import BAUD_RATES

MAX_FAULT_COUNT = 1000
MAX_PARAMS = 16
MAX_DEFECTS = 32
MAX_NAME = 64
MAX_TRACE_LIMIT = 100_000


class AgentBackend(Protocol):
    """What the HTTP layer controls: the emulated slave on the TSS721A, its trace and PF line."""

    fault_kinds: frozenset[str]
    defect_names: frozenset[str]

    def status(self) -> dict[str, Any]: ...
    def identity(self) -> dict[str, Any]: ...
    def profile_info(self) -> dict[str, Any]: ...
    def arm(self, kind: str, count: int, params: dict[str, Any]) -> dict[str, Any]: ...
    def disarm(self) -> dict[str, Any]: ...
    def set_defects(self, names: list[str]) -> dict[str, Any]: ...
    def set_baud(self, baud: int) -> dict[str, Any]: ...
    def trace(self, since: float | None, limit: int | None, frames: bool) -> dict[str, Any]: ...
    def clear_trace(self) -> dict[str, Any]: ...
    def power_fail(self) -> dict[str, Any]: ...
    def reset(self) -> dict[str, Any]: ...


class BadRequest(ConfigError):
    """A request the agent refuses with 400; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[AgentBackend, Any, Mapping[str, list[str]]], dict[str, Any]]


# --- body and query validation -------------------------------------------------------------


def parse_json_object(body: bytes, *, required: bool) -> dict[str, Any] | None:
    """The body as a JSON object; BadRequest if it is not one (or missing when required)."""
    if not body.strip():
        if required:
            raise BadRequest("request body missing: expected a JSON object")
        return None
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request body is not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc.msg} at line {exc.lineno} "
                         f"column {exc.colno}") from None
    except RecursionError:
        raise BadRequest("request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest(f"request body must be a JSON object, got {_json_kind(data)}")
    return data


def _no_constant(name: str) -> Any:
    raise BadRequest(f"request body is not valid JSON: {name} is not allowed")


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _fields(data: dict[str, Any] | None, allowed: set[str], required: set[str]) -> dict[str, Any]:
    data = data or {}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)} (allowed: "
                         f"{', '.join(sorted(allowed)) or 'none'})")
    missing = sorted(required - set(data))
    if missing:
        raise BadRequest(f"missing field(s): {', '.join(missing)}")
    return data


def _integer(data: dict[str, Any], key: str, low: int, high: int, default: int | None = None) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{key} must be an integer, got {_json_kind(value)}")
    if not low <= value <= high:
        raise BadRequest(f"{key} must be {low}..{high}, got {value}")
    return value


def _name(value: object, what: str, allowed: frozenset[str]) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{what} must be a string, got {_json_kind(value)}")
    if not value or len(value) > MAX_NAME:
        raise BadRequest(f"{what} must be 1..{MAX_NAME} characters")
    if allowed and value not in allowed:
        raise BadRequest(f"{what} {value!r} is not known (known: {', '.join(sorted(allowed))})")
    return value


def _params(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"params must be an object, got {_json_kind(value)}")
    if len(value) > MAX_PARAMS:
        raise BadRequest(f"params: at most {MAX_PARAMS} entries")
    for key, item in value.items():
        if not key.isidentifier() or len(key) > MAX_NAME:
            raise BadRequest(f"params: {key!r} is not a parameter name")
        ok = isinstance(item, bool | int | str) or (isinstance(item, float) and math.isfinite(item))
        if not ok or (isinstance(item, str) and len(item) > 256):
            raise BadRequest(f"params.{key} must be a number, a boolean or a short string, "
                             f"got {_json_kind(item)}")
    return dict(value)


def _query_number(query: Mapping[str, list[str]], key: str) -> float | None:
    values = query.get(key)
    if not values:
        return None
    try:
        number = float(values[-1])
    except ValueError:
        raise BadRequest(f"query {key}={values[-1]!r} is not a number") from None
    if not math.isfinite(number):
        raise BadRequest(f"query {key} must be finite")
    return number


# --- the routes ----------------------------------------------------------------------------


def _status(b: AgentBackend, body: Any, q: Mapping[str, list[str]]) -> dict[str, Any]:
    return b.status()


def _identity(b: AgentBackend, body: Any, q: Mapping[str, list[str]]) -> dict[str, Any]:
    return b.identity()


def _profile(b: AgentBackend, body: Any, q: Mapping[str, list[str]]) -> dict[str, Any]:
    return b.profile_info()


def _arm(b: AgentBackend, body: Any, q: Mapping[str, list[str]]) -> dict[str, Any]:
    data = _fields(body, {"kind", "count", "params"}, {"kind"})
    kind = _name(data["kind"], "kind", b.fault_kinds)
    count = _integer(data, "count", 1, MAX_FAULT_COUNT, default=1)
    params = _params(data.get("params", {}))
    return b.arm(kind, count, params)


def _disarm(b: AgentBackend, body: Any, q: Mapping[str, list[str]]) -> dict[str, Any]:
    _fields(body, set(), set())
    return b.disarm()


def _defects(b: AgentBackend, body: Any, q: Mapping[str, list[str]]) -> dict[str, Any]:
    data = _fields(body, {"defects"}, {"defects"})
    names = data["defects"]
    if not isinstance(names, list):
        raise BadRequest(f"defects must be an array of names, got {_json_kind(names)}")
    if len(names) > MAX_DEFECTS:
        raise BadRequest(f"defects: at most {MAX_DEFECTS} names")
    checked = [_name(n, "defect", b.defect_names) for n in names]
    return b.set_defects(sorted(set(checked)))


def _baud(b: AgentBackend, body: Any, q: Mapping[str, list[str]]) -> dict[str, Any]:
    data = _fields(body, {"baud"}, {"baud"})
    baud = _integer(data, "baud", 0, 10**6)
    if baud not in BAUD_RATES:
        raise BadRequest(f"baud {baud} is not an M-Bus rate ({', '.join(map(str, BAUD_RATES))})")
    return b.set_baud(baud)


def _trace(b: AgentBackend, body: Any, q: Mapping[str, list[str]]) -> dict[str, Any]:
    unknown = sorted(set(q) - {"since", "limit", "format"})
    if unknown:
        raise BadRequest(f"unknown query parameter(s): {', '.join(unknown)}")
    since = _query_number(q, "since")
    limit_f = _query_number(q, "limit")
    limit = None
    if limit_f is not None:
        if limit_f != int(limit_f) or not 1 <= limit_f <= MAX_TRACE_LIMIT:
            raise BadRequest(f"query limit must be an integer 1..{MAX_TRACE_LIMIT}")
        limit = int(limit_f)
    fmt = q.get("format", ["chars"])[-1]
    if fmt not in ("chars", "frames"):
        raise BadRequest(f"query format must be chars or frames, got {fmt!r}")
    return b.trace(since, limit, fmt == "frames")


def _clear_trace(b: AgentBackend, body: Any, q: Mapping[str, list[str]]) -> dict[str, Any]:
    _fields(body, set(), set())
    return b.clear_trace()


def _power_fail(b: AgentBackend, body: Any, q: Mapping[str, list[str]]) -> dict[str, Any]:
    return b.power_fail()


def _reset(b: AgentBackend, body: Any, q: Mapping[str, list[str]]) -> dict[str, Any]:
    _fields(body, set(), set())
    return b.reset()


#: path -> method -> (handler, whether a JSON body is expected)
ROUTES: dict[str, dict[str, tuple[Handler, bool]]] = {
    "/status": {"GET": (_status, False)},
    "/identity": {"GET": (_identity, False)},
    "/profile": {"GET": (_profile, False)},
    "/faults": {"POST": (_arm, True), "DELETE": (_disarm, False)},
    "/defects": {"PUT": (_defects, True)},
    "/baud": {"PUT": (_baud, True)},
    "/trace": {"GET": (_trace, False), "DELETE": (_clear_trace, False)},
    "/power-fail": {"GET": (_power_fail, False)},
    "/reset": {"POST": (_reset, False)},
}
OPENAPI_PATH = "/openapi.json"


def allowed_methods(path: str) -> list[str] | None:
    """The methods ``path`` takes, or None for an unknown path."""
    if path == OPENAPI_PATH:
        return ["GET"]
    methods = ROUTES.get(path)
    return sorted(methods) if methods is not None else None


def handle(backend: AgentBackend, method: str, target: str, body: bytes) -> Reply:
    """Route one authenticated request; every outcome is a Reply, never an exception."""
    parts = urlsplit(target)
    path = parts.path.rstrip("/") or "/"
    methods = allowed_methods(path)
    if methods is None:
        return Reply(404, {"error": f"no such endpoint: {path}"})
    route = ROUTES.get(path, {}).get(method)
    if route is None:
        return Reply(405, {"error": f"{method} not allowed on {path} (allowed: {', '.join(methods)})"},
                     (("Allow", ", ".join(methods)),))
    handler, needs_body = route
    try:
        query = parse_qs(parts.query, keep_blank_values=True, max_num_fields=8)
    except ValueError:
        return Reply(400, {"error": "too many query parameters"})
    try:
        data = parse_json_object(body, required=needs_body)
        return Reply(200, handler(backend, data, query))
    except ConfigError as exc:  # BadRequest, and a backend refusing a value
        return Reply(400, {"error": str(exc)})
    except HardwareError as exc:
        return Reply(503, {"error": str(exc)})
    except MBusRigError as exc:
        return Reply(409, {"error": str(exc)})
