"""``mbus-rig rig check FILE``: validate a rig file and check that its parts are there,
without running any scenario (the same check ``mbus-rig run`` makes before it starts)."""

from __future__ import annotations

import argparse

from rig.cli import HelpWithExamples, examples
from rig.preflight import check_rig_file


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "rig", help="rig files: check one (mbus-rig rig check FILE)",
        description="Work with rig files.", formatter_class=HelpWithExamples,
        epilog=examples("mbus-rig rig check rig/examples/two-pi.toml"))
    sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    sub.required = True
    check = sub.add_parser(
        "check", help="validate a rig file and reach its parts, run no scenario",
        formatter_class=HelpWithExamples,
        description="Validate the rig file, then open the rig as mbus-rig run would and close "
                    "it again: the GPIO backend opens (where the rig has fault lines), each "
                    "DUT program starts and is still running a moment later, the master port "
                    "opens, each agent answers. Prints what it checked; a problem is one line "
                    "on standard error and exit status 2.",
        epilog=examples("mbus-rig rig check rig/examples/two-pi.toml",
                        "mbus-rig rig check bench.toml --dut meter2",
                        "mbus-rig rig check sim          # the built-in simulated rig"))
    check.add_argument("file", metavar="FILE", help="the rig file (TOML), or 'sim'")
    check.add_argument("--dut", metavar="NAME", default=None,
                       help="the DUT a run would test (default: the rig file's first)")
    check.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    for line in check_rig_file(args.file, args.dut):
        print(f"ok  {line}")
    print(f"rig check passed: {args.file}")
    return 0
