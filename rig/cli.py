"""``mbus-rig``: the command line. Subcommands live in ``rig/commands/``, one module each.

Every expected failure is an MBusRigError and becomes one line on standard error with exit
status 1 (2 for a configuration or usage error); never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from protocol.errors import ConfigError, MBusRigError

from . import commands

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def parse_host_port(flag: str, text: str, *, example: str,
                    default_host: str | None = None) -> tuple[str, int]:
    """HOST:PORT from a command-line flag (HOST may be an IPv6 address in brackets, or empty
    when ``default_host`` is given; PORT 0-65535). Errors name the flag and what is allowed."""
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]") or (default_host or "")
    if not sep or not host:
        raise ConfigError(f"{flag} {text!r}: give HOST:PORT, e.g. {example}")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: port {port_text!r} is not a number "
                          "(allowed: 0-65535)") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{flag} {text!r}: port {port} is out of range (allowed: 0-65535)")
    return host, port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mbus-rig",
        description="M-Bus (EN 13757-2/-3) conformance rig, simulated bus and master tools.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ConfigError as exc:
        print(f"mbus-rig {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except MBusRigError as exc:
        print(f"mbus-rig {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"mbus-rig {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
