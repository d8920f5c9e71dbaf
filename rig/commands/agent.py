"""``mbus-rig agent``: the slave-Pi agent (an emulated slave on the TSS721A plus its HTTP API).

Runs the project's emulated meter (``--profile``, default the built-in heat meter) on the
serial port of a TSS721A slave HAT, and serves the authenticated HTTP/JSON control API
(rig/agent/openapi.json) on ``--listen`` only. Prints one line with the URL it listens on,
then runs until SIGINT or SIGTERM. See hardware/docs/slave-pi.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import stat
import sys

from protocol.errors import ConfigError
from rig.cli import HelpWithExamples, examples, parse_host_port

DEFAULT_LISTEN = "127.0.0.1:8765"
MIN_TOKEN = 16


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "agent", help="run the slave-Pi agent: emulated slave on a TSS721A UART + HTTP API",
        description="Run the emulated M-Bus slave on the TSS721A's serial port and serve the "
        "authenticated HTTP/JSON control API (arm faults, defects, baud, trace, power-fail "
        "line, reset). Every request needs 'Authorization: Bearer <token>'.",
        formatter_class=HelpWithExamples,
        epilog=examples("mbus-rig agent --port /dev/ttyAMA0 --listen 0.0.0.0:8765 "
                        "--token-file /etc/mbus-rig/agent.token --pf-pin 25",
                        "mbus-rig agent --port /dev/pts/7 --no-echo --gpio sim "
                        "--token-file agent.token --profile multi-telegram"))
    parser.add_argument("--port", required=True, metavar="DEV",
                        help="serial port of the TSS721A (e.g. /dev/ttyAMA0) or a pyserial URL")
    parser.add_argument("--profile", metavar="FILE",
                        help="meter profile (TOML) or a shipped profile name "
                        "(default: the built-in heat meter)")
    parser.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                        help="address to serve the API on, nothing else is opened; port 0 picks "
                        "a free one (default: %(default)s)")
    parser.add_argument("--token-file", required=True, metavar="F",
                        help="file holding the bearer token (one word; not readable by every user)")
    parser.add_argument("--baud", type=int, metavar="B",
                        help="start rate; one of the profile's (default: the profile's)")
    parser.add_argument("--no-echo", dest="echo", action="store_false",
                        help="the receiver does not hear the slave's own transmission "
                        "(a pseudo-terminal; a TSS721A always echoes)")
    parser.add_argument("--gpio", default="auto", choices=("auto", "rpi", "sim"),
                        help="GPIO backend for the power-fail line (default: %(default)s)")
    parser.add_argument("--pf-pin", type=int, metavar="BCM",
                        help="BCM GPIO wired to the TSS721A PF output (default: not wired)")
    parser.add_argument("--pf-active-high", action="store_true",
                        help="PF reads high on a power failure (an inverting opto); the "
                        "TSS721A's own PF is low on failure")
    parser.add_argument("--request-timeout", type=float, default=10.0, metavar="S",
                        help="per-read socket timeout of the API; a whole request gets 3x "
                        "(default: %(default)s)")
    parser.set_defaults(handler=run)


def parse_listen(text: str) -> tuple[str, int]:
    """--listen HOST:PORT (HOST may be an IPv6 address in brackets; PORT 0-65535)."""
    return parse_host_port("--listen", text,
                           example="127.0.0.1:8765 or 0.0.0.0:8765 (every interface)")


def load_token(path: str) -> str:
    """The token from --token-file; warns on stderr when every user can read the file."""
    from rig.agent.client import read_token_file

    token = read_token_file(path)
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = 0
    if mode & stat.S_IRWXO:
        print(f"mbus-rig agent: warning: token file {path} is readable by every user "
              f"(chmod o-rwx {path})", file=sys.stderr)
    if len(token) < MIN_TOKEN:
        print(f"mbus-rig agent: warning: the token is shorter than {MIN_TOKEN} characters "
              "(make one with: openssl rand -hex 32)", file=sys.stderr)
    return token


def run(args: argparse.Namespace) -> int:
    from hardware.clock import WallClock
    from hardware.gpio import SimGpio, open_backend
    from hardware.lines import Line
    from hardware.profile import read_profile, require_baud
    from hardware.serial_port import SerialBusPort
    from rig.agent.runtime import SlaveRuntime
    from rig.agent.server import AgentServer, serve_in_thread
    from rig.safety import stop_on_signal

    address = parse_listen(args.listen)
    token = load_token(args.token_file)
    if args.request_timeout <= 0:
        raise ConfigError(f"--request-timeout {args.request_timeout}: must be > 0")
    profile = read_profile(args.profile, "--profile")
    if args.baud is not None:
        require_baud(profile, args.baud, "--baud")
        profile = dataclasses.replace(profile, baud=args.baud)

    clock = WallClock()
    backend = None
    pf_line = None
    if args.pf_pin is not None:
        backend = open_backend(args.gpio, clock=clock)
        if isinstance(backend, SimGpio):
            # no TSS721A behind a simulated pin: let it read "bus good", or the slave is deaf
            backend.set_pull(args.pf_pin, not args.pf_active_high)
            print(f"mbus-rig agent: warning: --pf-pin {args.pf_pin} is on simulated GPIO; "
                  "it always reads 'bus supply good'", file=sys.stderr)
        pf_line = Line(backend, args.pf_pin, "slave_power_fail", active_high=args.pf_active_high,
                       name="slave_power_fail")
    port = SerialBusPort(args.port, clock, baud=profile.baud, echo=False, exclusive=True)
    try:
        runtime = SlaveRuntime(port, clock, profile, port_name=args.port, echo=args.echo,
                               power_fail=pf_line)
        try:
            server = AgentServer(address, runtime, token, read_timeout=args.request_timeout,
                                 request_deadline=3 * args.request_timeout)
        except OSError as exc:
            raise ConfigError(f"--listen {args.listen}: cannot listen there: "
                              f"{exc.strerror or exc}") from None
        try:
            with stop_on_signal() as stop:
                runtime.start()
                serve_in_thread(server)
                print(f"mbus-rig agent: listening on {server.url} (slave {profile.name} at "
                      f"address {runtime.core.address}, {profile.baud} Bd on {args.port})",
                      flush=True)
                while not stop.wait(0.5):
                    pass
        finally:
            server.shutdown()
            server.server_close()
            runtime.stop()
    finally:
        port.close()
        if backend is not None:
            backend.cleanup()
    print("mbus-rig agent: stopped", flush=True)
    return 0


__all__ = ["load_token", "parse_listen", "register", "run"]
