"""The rig pair's fault lines over HTTP: the line server and the ``remote`` GPIO backend.

On a farm the suite may run on any machine, but the fault relays hang on the master Pi's
GPIO. ``mbus-rig line-server`` (on the master Pi) serves the lines of a rig file's ``[gpio]``
table with the agent's hardened HTTP server (bearer token, bounded requests); the rig drives
them through :class:`RemoteGpio`, a :class:`hardware.gpio.backend.GpioBackend` whose pins are
the server's. Only the configured output pins are served; polarity stays with the lines
(hardware/lines.py), so "released" is the healthy level on both sides.

API (JSON): ``GET /lines`` (role, pin, active_high, name, asserted of each line);
``GET /pins/N``, ``PUT /pins/N {"level": bool}``, ``DELETE /pins/N`` (back to the healthy
level); ``POST /safe-state`` (every line released). The server releases every line when it
starts and when it stops.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from hardware.gpio.backend import GpioBackend
from hardware.lines import FaultLines, Line, LineSpec
from protocol.errors import ConfigError, HardwareError, MBusRigError

from ..agent.api import BadRequest, Reply, parse_json_object

SERVICE = "line server"
SERVER_COMMAND = "mbus-rig line-server"
_PIN_PATH = re.compile(r"^/pins/(\d{1,2})$")


class LineService:
    """The output fault lines of one rig pair, on its GPIO backend, for the HTTP API."""

    def __init__(self, gpio: GpioBackend, specs: Iterable[LineSpec]) -> None:
        outputs = [spec for spec in specs if spec.role != "slave_power_fail"]
        self.lines = FaultLines.from_specs(gpio, outputs)  # set up released (hardware/lines.py)
        self._by_pin: dict[int, Line] = {line.pin: line for line in self.lines}
        self._lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {"lines": [{"role": line.role, "pin": line.pin, "active_high": line.active_high,
                               "name": line.name, "asserted": line.is_asserted}
                              for line in self.lines]}

    def line(self, pin: int) -> Line:
        line = self._by_pin.get(pin)
        if line is None:
            served = ", ".join(str(p) for p in sorted(self._by_pin)) or "none"
            raise LookupError(f"GPIO {pin} is not a fault line here (served: {served})")
        return line

    def level(self, pin: int) -> dict[str, Any]:
        line = self.line(pin)
        with self._lock:
            return {"pin": pin, "level": bool(line.backend.read(pin))}

    def drive(self, pin: int, level: bool) -> dict[str, Any]:
        line = self.line(pin)
        with self._lock:
            line.set(level == line.asserted_level)
            return {"pin": pin, "level": bool(line.backend.read(pin))}

    def release(self, pin: int) -> dict[str, Any]:
        return self.drive(pin, self.line(pin).released_level)

    def safe_state(self) -> dict[str, Any]:
        with self._lock:
            report = self.lines.safe_state()
        if not report.ok:
            raise HardwareError(str(report))
        return {"safe_state": str(report)}

    def close(self) -> None:
        """Every line released, then its pin handed back to the external pull."""
        with self._lock:
            self.lines.safe_state()
            self.lines.close()


def line_route(service: LineService) -> Callable[[str, str, bytes], Reply]:
    """The HTTP API over ``service`` (for ``rig.agent.server.AgentServer(route=...)``)."""

    def route(method: str, target: str, body: bytes) -> Reply:
        path = urlsplit(target).path.rstrip("/") or "/"
        match = _PIN_PATH.match(path)
        allowed = (["GET"] if path == "/lines" else ["POST"] if path == "/safe-state"
                   else ["DELETE", "GET", "PUT"] if match else None)
        if allowed is None:
            return Reply(404, {"error": f"no such endpoint: {path} (the line server has /lines, "
                                        "/pins/N, /safe-state)"})
        if method not in allowed:
            return Reply(405, {"error": f"{method} not allowed on {path} (allowed: "
                                        f"{', '.join(allowed)})"}, (("Allow", ", ".join(allowed)),))
        try:
            if path == "/lines":
                return Reply(200, service.describe())
            if path == "/safe-state":
                return Reply(200, service.safe_state())
            assert match is not None
            pin = int(match.group(1))
            if method == "GET":
                return Reply(200, service.level(pin))
            if method == "DELETE":
                return Reply(200, service.release(pin))
            data = parse_json_object(body, required=True) or {}
            unknown = sorted(set(data) - {"level"})
            if unknown or not isinstance(data.get("level"), bool):
                raise BadRequest(f"body must be {{\"level\": true|false}}, not {body[:80]!r}")
            return Reply(200, service.drive(pin, data["level"]))
        except LookupError as exc:
            return Reply(404, {"error": str(exc)})
        except ConfigError as exc:
            return Reply(400, {"error": str(exc)})
        except MBusRigError as exc:
            return Reply(503, {"error": str(exc)})

    return route


class RemoteGpio:
    """A GPIO backend on a rig pair's line server (``[gpio] backend = "remote"``).

    Only outputs: setting up an input or listening for changes is a HardwareError (the line
    server serves the fault-enable outputs, not the TSS721A PF input)."""

    name = "remote"

    def __init__(self, url: str, token: str, *, timeout: float = 5.0) -> None:
        from ..agent.client import AgentClient

        self.url = url
        self._http = AgentClient(url, token, timeout, service=SERVICE,
                                 server_command=SERVER_COMMAND)
        self._pins: set[int] = set()

    def __repr__(self) -> str:
        return f"RemoteGpio({self.url!r})"

    def lines(self) -> list[dict[str, Any]]:
        """What the server serves: role, pin, active_high, name, asserted of each line."""
        lines = self._http.call("GET", "/lines").get("lines")
        if not isinstance(lines, list) or not all(isinstance(x, dict) for x in lines):
            raise HardwareError(f"{SERVICE} at {self.url}: malformed /lines reply")
        return lines

    def setup_output(self, pin: int, level: bool) -> None:
        self.write(pin, level)
        self._pins.add(pin)

    def setup_input(self, pin: int) -> None:
        raise HardwareError(f"{SERVICE} at {self.url}: GPIO {pin}: only fault-enable outputs "
                            "are served remotely")

    def write(self, pin: int, level: bool) -> None:
        self._http.call("PUT", f"/pins/{pin}", {"level": bool(level)})

    def read(self, pin: int) -> bool:
        return bool(self._http.call("GET", f"/pins/{pin}").get("level"))

    def release(self, pin: int) -> None:
        self._http.call("DELETE", f"/pins/{pin}")
        self._pins.discard(pin)

    def cleanup(self) -> None:
        for pin in sorted(self._pins):
            self.release(pin)

    def on_change(self, pin: int, callback: Callable[[int, bool], None]) -> None:
        self.setup_input(pin)

    def safe_state(self) -> str:
        """Ask the server to release every line it serves (the farm's last resort)."""
        return str(self._http.call("POST", "/safe-state").get("safe_state", ""))


def open_line_server(service: LineService, listen: tuple[str, int], token: str,
                     flag: str = "--listen") -> Any:
    """The line server for ``service`` on ``listen`` (an AgentServer with the lines' route),
    serving in a daemon thread; ConfigError naming ``flag`` when it cannot listen there."""
    from ..agent.server import AgentServer, serve_in_thread

    try:
        server = AgentServer(listen, None, token, route=line_route(service))  # type: ignore[arg-type]
    except OSError as exc:
        raise ConfigError(f"{flag} {listen[0]}:{listen[1]}: cannot listen there: "
                          f"{exc.strerror or exc}") from None
    serve_in_thread(server)
    return server


def sim_line_service(bus: Any, runner: Any) -> LineService:
    """The built-in simulated rig's fault lines (rig.config.SIM_LINES) on a simulated GPIO
    wired to ``bus`` as the real relays are: the lines of a virtual rig pair."""
    from hardware.gpio import SimGpio
    from hardware.sim import RunnerClock

    from ..config import SIM_LINES

    gpio = SimGpio(RunnerClock(runner))
    with runner.sim.lock:
        service = LineService(gpio, SIM_LINES)
        bus.wire_lines(gpio, {line.role: line.pin for line in SIM_LINES},
                       active_high={line.role: line.active_high for line in SIM_LINES},
                       disconnect=bus.slaves[:1])
    return service
