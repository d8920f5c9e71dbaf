"""``mbus-rig line-server``: serve a rig pair's fault lines over HTTP (on its master Pi).

The lines are the ``[gpio]`` table of a rig file (backend and ``[[gpio.lines]]``); every
request needs the bearer token of ``--token-file``. A farm's place names the server with an
``MBusFaultLines`` resource (docs/farm.md). Every line is released when the
server starts and when it stops (SIGINT, SIGTERM). Unit: hardware/docs/mbus-rig-lines.service.
"""

from __future__ import annotations

import argparse

from protocol.errors import ConfigError
from rig.cli import HelpWithExamples, examples

DEFAULT_LISTEN = "127.0.0.1:8766"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "line-server", help="serve a rig pair's fault lines over HTTP (farm master Pi)",
        description="Serve the fault lines of a rig file's [gpio] table over an authenticated "
        "HTTP/JSON API, for a farm's rig runs on other machines ([gpio] backend = \"remote\"). "
        "Every line is released at start and at stop.",
        formatter_class=HelpWithExamples,
        epilog=examples("mbus-rig line-server --rig /etc/mbus-rig/rig.toml "
                        "--listen 192.168.50.1:8766 --token-file /etc/mbus-rig/lines.token",
                        "mbus-rig line-server --rig rig.toml --token-file lines.token"))
    parser.add_argument("--rig", required=True, metavar="FILE",
                        help="rig file whose [gpio] backend and lines to serve")
    parser.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                        help="address to serve on; port 0 picks a free one "
                        "(default: %(default)s)")
    parser.add_argument("--token-file", required=True, metavar="F",
                        help="file holding the bearer token (one word)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hardware.gpio.factory import open_backend
    from rig.commands.agent import load_token, parse_listen
    from rig.config import load_config
    from rig.farm.lines import LineService, open_line_server
    from rig.safety import stop_on_signal

    listen = parse_listen(args.listen)
    token = load_token(args.token_file)
    cfg = load_config(args.rig)
    if cfg.gpio.backend == "remote" or not cfg.gpio.lines:
        raise ConfigError(f"{cfg.source}: gpio: no local fault lines to serve (give the rig "
                          "pair's own file: backend rpi/sim and [[gpio.lines]])")
    gpio = open_backend(cfg.gpio.backend)
    try:
        service = LineService(gpio, cfg.gpio.lines)
        try:
            server = open_line_server(service, listen, token)
            try:
                with stop_on_signal() as stop:
                    print(f"mbus-rig line-server: listening on {server.url} "
                          f"({len(service.lines)} fault lines of {cfg.name}, {gpio.name} GPIO)",
                          flush=True)
                    while not stop.wait(0.5):
                        pass
            finally:
                server.shutdown()
                server.server_close()
        finally:
            service.close()
    finally:
        gpio.cleanup()
    print("mbus-rig line-server: stopped, every line released", flush=True)
    return 0
