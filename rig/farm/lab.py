"""A farm of one virtual rig pair on this machine, on 127.0.0.1 only: for the project's tests,
the farm benchmark, and trying the farm out without hardware.

Started in order, each in its own process group with its output in ``DIR/NAME.log``:

1. the rig pair: ``mbus-rig virtual-meter`` (the built-in heat meter on a real-time simulated
   bus), its master side on a pseudo-terminal, its fault lines served by the line server
   (simulated GPIO wired to the bus as the relays are);
2. ``labgrid-coordinator`` on a free port (its state files in DIR);
3. ``labgrid-exporter`` exporting the pty as a ``RawSerialPort`` (ser2net serves it over RFC
   2217 while the place is acquired) and the line server as ``MBusFaultLines``;
4. the place (``labgrid-client create``, ``add-match``, ``set-tags``).

:meth:`Lab.close` stops everything, on every exit path (process groups: ser2net goes with its
exporter). Every wait is bounded.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hardware.clock import WallClock
from protocol.errors import HardwareError
from protocol.meter import heat_meter_profile

from .resolve import to_toml

START_S = 20.0
STOP_S = 5.0
PLACE = "mbus-1"
EXPORTER = "bench"
DUT_TAG = "heat-meter"


class Service:
    """A process of the lab, in its own session, its output in a log file."""

    def __init__(self, name: str, argv: Sequence[str], workdir: Path,
                 env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.log = workdir / f"{name}.log"
        cwd = workdir / name  # its own folder: labgrid-coordinator keeps places.yaml there
        cwd.mkdir(exist_ok=True)
        for stale in cwd.glob("*.yaml"):
            stale.unlink()
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(list(argv), cwd=cwd, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=dict(env) if env is not None else None,
                                         start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = START_S) -> re.Match[str]:
        """The first match of ``pattern`` in the output; HardwareError if it does not come."""
        clock = WallClock()
        deadline = clock.now() + timeout
        while True:
            match = re.search(pattern, self.output())
            if match:
                return match
            if self.proc.poll() is not None or clock.now() >= deadline:
                state = ("exited " + str(self.proc.returncode) if self.proc.poll() is not None
                         else f"not within {timeout:g} s")
                tail = " | ".join(self.output().strip().splitlines()[-5:])
                raise HardwareError(f"lab: {self.name}: no {pattern!r} ({state}): {tail}")
            clock.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM to its process group, SIGKILL after STOP_S."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(STOP_S)
            except subprocess.TimeoutExpired:
                continue
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # what it left behind (ser2net)
            except ProcessLookupError:
                pass
            return


def _module(name: str) -> list[str]:
    return [sys.executable, "-m", name]


class Lab:
    """Coordinator, exporter and one virtual rig pair in ``workdir``; a context manager."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.services: list[Service] = []
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.env.pop("LG_COORDINATOR", None)
        self.lines_token = workdir / "lines.token"
        self.lines_token.write_text(secrets.token_hex(16) + "\n")
        self.lines_token.chmod(0o600)
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _service(self, name: str, argv: Sequence[str]) -> Service:
        service = Service(name, argv, self.dir, self.env)
        self.services.append(service)
        return service

    def _start(self) -> None:
        pair = self._service("rig-pair", [*_module("rig"), "virtual-meter", "--pty",
                                          "--lines", "127.0.0.1:0",
                                          "--lines-token-file", str(self.lines_token)])
        pair.wait_for(r"serving")
        self.pty = pair.wait_for(r"master pty: (\S+)").group(1)
        self.lines_url = pair.wait_for(r"fault lines: (\S+)").group(1)
        coordinator = self._service("coordinator", [*_module("labgrid.remote.coordinator"),
                                                    "--listen", "127.0.0.1:0"])
        self.coordinator = coordinator.wait_for(r"listening on (127\.0\.0\.1:\d+)").group(1)
        self.env["LG_COORDINATOR"] = self.coordinator
        exporter_yaml = self.dir / "exporter.yaml"
        exporter_yaml.write_text(exporter_config(self.pty, self.lines_url))
        exporter = self._service("exporter", [*_module("labgrid.remote.exporter"),
                                              "--coordinator", self.coordinator,
                                              "--name", EXPORTER, "--hostname", "127.0.0.1",
                                              str(exporter_yaml)])
        exporter.wait_for(r"Exporter ready")
        self.client("-p", PLACE, "create")
        self.client("-p", PLACE, "add-match", f"{EXPORTER}/{PLACE}/*/*")
        self.client("-p", PLACE, "set-tags", f"dut={DUT_TAG}")

    def client(self, *args: str, user: str | None = None, check: bool = True,
               timeout: float = START_S) -> subprocess.CompletedProcess[str]:
        """``labgrid-client ARGS`` against the lab's coordinator (as ``user``, if given)."""
        env = dict(self.env)
        if user is not None:
            env["LG_USERNAME"] = user
        done = subprocess.run([*_module("labgrid.remote.client"), *args], env=env, text=True,
                              capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise HardwareError(f"lab: labgrid-client {' '.join(args)}: exit {done.returncode}: "
                                f"{done.stderr.strip() or done.stdout.strip()}")
        return done

    def rig_file(self, name: str = "lab.toml", **labgrid: Any) -> Path:
        """A farm rig file for the lab's place (``labgrid`` entries override the table)."""
        profile = heat_meter_profile()
        data = {
            "name": "lab",
            "labgrid": {k: v for k, v in {
                "place": PLACE, "coordinator": self.coordinator, "connect_timeout": 10,
                "acquire_timeout": 120, **labgrid}.items() if v is not None},
            "master": {"baud": profile.baud},
            "gpio": {"token_file": str(self.lines_token)},
            "dut": [{"name": "meter", "kind": "black-box", "address": profile.address,
                     "features": ["primary", "secondary", "wildcard_selection", "set_address",
                                  "reset", "fcb", "req_ud1", "baud_switch"]}],
        }
        path = self.dir / name
        path.write_text(to_toml(data))
        return path

    def close(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.services.clear()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def exporter_config(pty: str, lines_url: str) -> str:
    """labgrid-exporter YAML for the virtual rig pair (hardware/docs/exporter.yaml is the
    real one)."""
    return (f"{PLACE}:\n"
            f"  master:\n    cls: RawSerialPort\n    port: {pty}\n    speed: 2400\n"
            f"  fault-lines:\n    cls: MBusFaultLines\n    url: {lines_url}\n")
