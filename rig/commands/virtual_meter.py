"""``mbus-rig virtual-meter``: emulated meters on a virtual bus for outside programs.

Serves N emulated meters (the built-in heat meter or ``--profile FILE``) on one simulated bus
running in real time, reachable by an outside master through a pseudo-terminal (``--pty``,
``--link PATH``) and/or raw M-Bus over TCP (``--tcp HOST:PORT``, as an M-Bus/Ethernet
gateway), and optionally lets an outside slave join through ``--slave-pty``. Runs until
SIGINT or SIGTERM. A bad profile, baud rate, address or endpoint is one line, exit 2.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from hardware.profile import read_profile, require_baud
from protocol.errors import ConfigError
from protocol.fields import PRIMARY_MAX
from protocol.identity import medium_name
from protocol.meter import MeterProfile
from protocol.timing import BAUD_RATES
from rig.cli import HelpWithExamples, examples, parse_host_port

MAX_SLAVES = 250
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What to serve, validated."""

    name: str
    profiles: tuple[MeterProfile, ...]
    baud: int
    pty: bool
    link: Path | None
    tcp: tuple[str, int] | None
    slave_pty: bool
    slave_link: Path | None
    seed: int
    lines: tuple[str, int] | None = None  # serve the fault lines (a virtual farm rig pair)
    lines_token: str | None = None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "virtual-meter", help="serve emulated meters on a pseudo-terminal or TCP",
        description="Serve emulated M-Bus meters on a virtual bus running in real time, for "
        "outside masters (libmbus, pyMeterBus, your own) through a pseudo-terminal and/or raw "
        "M-Bus over TCP. Pseudo-terminals carry no parity and no baud rate: use the "
        "simulated bus in-process (--device sim) for character-level faults. Runs until "
        "Ctrl-C / SIGTERM.",
        formatter_class=HelpWithExamples,
        epilog=examples("mbus-rig virtual-meter --link mbus0     # then: mbus-serial-scan mbus0",
                        "mbus-rig virtual-meter --slaves 3 --tcp 127.0.0.1:5000",
                        "mbus-rig virtual-meter --profile multi-telegram --baud 9600"))
    parser.add_argument("--profile", metavar="FILE",
                        help="meter profile (TOML), or a shipped profile name: heat-meter, "
                        "multi-telegram (default: the built-in heat meter)")
    parser.add_argument("--slaves", type=int, default=1, metavar="N",
                        help=f"number of meters, 1-{MAX_SLAVES}; meter i gets address A+i and "
                        "identification number ID+i (default: 1)")
    parser.add_argument("--address", type=int, default=None, metavar="A",
                        help="primary address of the first meter, 0-250 (default: the profile's)")
    parser.add_argument("--baud", type=int, default=None, metavar="B",
                        help="baud rate the meters start at; one of the profile's rates "
                        "(default: the profile's)")
    parser.add_argument("--pty", action="store_true",
                        help="a pseudo-terminal for an outside master (the default when no "
                        "--tcp is given); its path is printed")
    parser.add_argument("--link", metavar="PATH",
                        help="also make PATH a symlink to the master pseudo-terminal (implies --pty)")
    parser.add_argument("--tcp", metavar="HOST:PORT",
                        help="raw M-Bus over TCP, as M-Bus/Ethernet gateways serve it "
                        "(libmbus mbus-tcp-*, pyserial socket://); port 0 picks a free one")
    parser.add_argument("--slave-pty", action="store_true",
                        help="a pseudo-terminal for an outside slave (meter firmware on this "
                        "host) to join the bus as one more device")
    parser.add_argument("--slave-link", metavar="PATH",
                        help="also make PATH a symlink to the slave pseudo-terminal "
                        "(implies --slave-pty)")
    parser.add_argument("--lines", metavar="HOST:PORT",
                        help="also serve the bus's fault lines (power cut, disconnect, short, "
                        "collision, noise; simulated GPIO wired as the real relays) over the "
                        "line server's HTTP API, as a farm rig pair's master Pi does")
    parser.add_argument("--lines-token-file", metavar="F",
                        help="bearer token file of --lines (required with it)")
    parser.add_argument("--seed", type=int, default=1,
                        help="seed of the simulation's randomness (default: %(default)s)")
    parser.set_defaults(handler=run)


# --- validation ----------------------------------------------------------------------------


def parse_tcp(text: str) -> tuple[str, int]:
    """HOST:PORT (HOST may be empty for 127.0.0.1; PORT 0-65535)."""
    return parse_host_port("--tcp", text, example="127.0.0.1:5000", default_host=LOOPBACK)


def population(profile: MeterProfile, count: int, *, address: int | None,
               baud: int | None) -> tuple[MeterProfile, ...]:
    """``count`` copies of ``profile`` at consecutive addresses with consecutive IDs."""
    from hardware.sim.meter import meter_population

    if not 1 <= count <= MAX_SLAVES:
        raise ConfigError(f"--slaves {count}: out of range (allowed: 1-{MAX_SLAVES})")
    if baud is not None and baud not in BAUD_RATES:
        raise ConfigError(f"--baud {baud}: not an M-Bus baud rate (allowed: "
                          f"{', '.join(map(str, BAUD_RATES))})")
    first = profile.address if address is None else address
    if not 0 <= first <= PRIMARY_MAX:
        raise ConfigError(f"--address {first}: not a primary address (allowed: 0-{PRIMARY_MAX})")
    if baud is not None:
        require_baud(profile, baud, "--baud")
    try:
        return tuple(meter_population(profile, count, first_address=first, baud=baud))
    except ConfigError as exc:
        raise ConfigError(f"--slaves {count} --address {first}: {exc}") from None


def options_from_args(args: argparse.Namespace) -> ServeOptions:
    profile = read_profile(args.profile, "--profile")
    profiles = population(profile, args.slaves, address=args.address, baud=args.baud)
    tcp = parse_tcp(args.tcp) if args.tcp is not None else None
    link = Path(args.link) if args.link else None
    slave_link = Path(args.slave_link) if args.slave_link else None
    pty = bool(args.pty or link is not None or tcp is None)
    for flag, candidate in (("--link", link), ("--slave-link", slave_link)):
        if candidate is not None and candidate.exists() and not candidate.is_symlink():
            raise ConfigError(f"{flag} {candidate}: exists and is not a symlink (not replacing it)")
        if candidate is not None and not candidate.parent.is_dir():
            raise ConfigError(f"{flag} {candidate}: directory {candidate.parent} does not exist")
    lines, lines_token = _lines_options(args)
    return ServeOptions(name=profile.name, profiles=profiles, baud=profiles[0].baud, pty=pty, link=link, tcp=tcp,
                        slave_pty=bool(args.slave_pty or slave_link is not None),
                        slave_link=slave_link, seed=args.seed, lines=lines,
                        lines_token=lines_token)


def _lines_options(args: argparse.Namespace) -> tuple[tuple[str, int] | None, str | None]:
    """--lines HOST:PORT with its --lines-token-file (both or neither)."""
    lines = getattr(args, "lines", None)
    token_file = getattr(args, "lines_token_file", None)
    if lines is None and token_file is None:
        return None, None
    if lines is None or token_file is None:
        raise ConfigError("--lines and --lines-token-file go together")
    from rig.agent.client import read_token_file

    return (parse_host_port("--lines", lines, example="127.0.0.1:8766", default_host=LOOPBACK),
            read_token_file(token_file))


# --- serving ---------------------------------------------------------------------------------


def describe(options: ServeOptions) -> list[str]:
    """What is served, one line each (printed at start)."""
    first = options.profiles[0]
    lines = [f"virtual bus: {len(options.profiles)} x {options.name} at {options.baud} Bd "
             f"(supported: {', '.join(map(str, first.bauds))})"]
    for p in options.profiles:
        lines.append(f"  address {p.address:3d}  secondary {p.secondary}  "
                     f"{p.manufacturer} v{p.version} {medium_name(p.medium)}")
    return lines


def run(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    from hardware.sim.bridges import VirtualBusServer
    from rig.safety import stop_on_signal

    with stop_on_signal() as stop, VirtualBusServer(options.profiles, baud=options.baud,
                                                    seed=options.seed) as server:
        for line in describe(options):
            print(line)
        if options.pty:
            path = server.open_master_pty(link=options.link)
            shown = f" (link {options.link})" if options.link else ""
            print(f"master pty: {path}{shown}  [no parity, no baud on a pty]")
        if options.tcp is not None:
            host, port = server.open_tcp(*options.tcp)
            print(f"tcp: {host}:{port}  (raw M-Bus, e.g. socket://{host}:{port})")
        if options.slave_pty:
            path = server.open_slave_pty(link=options.slave_link)
            shown = f" (link {options.slave_link})" if options.slave_link else ""
            print(f"slave pty: {path}{shown}  [the outside slave's baud is read from the pty]")
        line_server = None
        if options.lines is not None and options.lines_token is not None:
            from rig.farm.lines import open_line_server, sim_line_service

            service = sim_line_service(server.bus, server.runner)
            line_server = open_line_server(service, options.lines, options.lines_token,
                                           "--lines")
            print(f"fault lines: {line_server.url}  ({len(service.lines)} lines, "
                  "mbus-rig line-server API)")
        print("serving; Ctrl-C or SIGTERM to stop", flush=True)
        try:
            while not stop.wait(0.5):
                server.check()
        finally:
            if line_server is not None:
                line_server.shutdown()
                line_server.server_close()
                service.close()
    print("stopped", file=sys.stderr)
    return 0
