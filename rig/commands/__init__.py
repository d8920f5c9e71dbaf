"""One module per ``mbus-rig`` subcommand; each defines ``register(subparsers)``.

The dispatcher (rig/cli.py) discovers the modules here, so adding a command is adding a file.
A command's handler is set with ``parser.set_defaults(handler=fn)``; ``fn(args) -> int``.
"""
