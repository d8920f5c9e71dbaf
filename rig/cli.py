"""``mbus-rig``: the command line. Subcommands live in ``rig/commands/``, one module each.

Every expected failure is an MBusRigError and becomes one line on standard error with exit
status 1 (2 for a configuration or usage error); never a traceback. A usage error (an
unknown option, a bad value) is one line too, naming the option and pointing at ``--help``;
a command can add a hint for unknown options (``set_defaults(unknown_hint=...)``).
``--version`` works on ``mbus-rig`` and on every subcommand. Help texts are plain text:
docstrings used as descriptions lose their reST markup.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import pkgutil
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from protocol.errors import ConfigError, MBusRigError

from . import commands

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

DISTRIBUTION = "mbus-rig"

_REST_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)
_REST_ROLE = re.compile(r":[a-z]+:`~?(.+?)`")


def plain_text(text: str) -> str:
    """``text`` without reST markup: ````code```` -> code, :class:`X` -> X."""
    return _REST_ROLE.sub(r"\1", _REST_LITERAL.sub(r"\1", text))


def version() -> str:
    """The installed distribution's version (``mbus-rig 0.1.0``)."""
    try:
        number = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        number = "unknown (not installed)"
    return f"{DISTRIBUTION} {number}"


class CommandParser(argparse.ArgumentParser):
    """argparse with the command line's conventions: a usage error is one line and exit 2;
    help without reST markup; ``--version`` (added by :func:`build_parser` everywhere)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")

    def format_help(self) -> str:
        return plain_text(super().format_help())

    def format_usage(self) -> str:
        return plain_text(super().format_usage())


def examples(*lines: str) -> str:
    """An ``epilog`` of example command lines (use with RawDescriptionHelpFormatter or
    :data:`HELP_WITH_EXAMPLES`)."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


class HelpWithExamples(argparse.HelpFormatter):
    """Descriptions wrapped as usual; an epilog of examples kept line by line."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:\n"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class RawHelpWithExamples(argparse.RawDescriptionHelpFormatter):
    """A description kept as written (a module docstring), and the examples epilog."""


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


def subcommand_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parsers of ``parser``'s subcommands, by name (empty without subcommands)."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def _add_version(parser: argparse.ArgumentParser) -> None:
    """``--version`` on ``parser`` and on every parser below it."""
    if "--version" not in parser._option_string_actions:
        parser.add_argument("--version", action="version", version=version(),
                            help="print the version of mbus-rig and exit")
    for sub in subcommand_parsers(parser).values():
        _add_version(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="mbus-rig", formatter_class=HelpWithExamples,
        description="M-Bus (EN 13757-2/-3) conformance rig, simulated bus and master tools.",
        epilog=examples("mbus-rig run --report out                 # the suite on the simulated rig",
                        "mbus-rig rig check rig/examples/two-pi.toml",
                        "mbus-rig scan -d /dev/ttyUSB0 -b 2400",
                        "mbus-rig COMMAND --help                   # each command's options"),
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    _add_version(parser)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse; an unknown argument is a one-line usage error from the subcommand's parser,
    with the subcommand's hint (e.g. run: pytest options go after --)."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        owner: argparse.ArgumentParser = parser
        for name in (getattr(args, "command", None), getattr(args, "subcommand", None)):
            owner = subcommand_parsers(owner).get(str(name), owner)
        hint = getattr(args, "unknown_hint", "")
        owner.error(f"unrecognized arguments: {' '.join(unknown)}{'; ' + hint if hint else ''}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = _parse(parser, argv)
    name = " ".join(str(n) for n in (args.command, getattr(args, "subcommand", None)) if n)
    try:
        return int(args.handler(args) or 0)
    except ConfigError as exc:
        print(f"mbus-rig {name}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except MBusRigError as exc:
        print(f"mbus-rig {name}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"mbus-rig {name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
