"""Shared code of the master tools (``mbus-rig scan|read|select|set-address|switch-baud|reset|ping``).

- ``options``: the argument layer (common bus options, validated argument types: a bad
  argument exits with status 2 naming the argument and the allowed values).
- ``bus``: opening the bus named by ``--device`` (a serial device, any pyserial URL such as
  ``socket://host:port``, or ``sim`` / ``sim:N`` for an in-process simulated bus).
- ``errors``: failures turned into one line a user understands.
- ``output``: tables, JSON and the progress bar.
- ``libmbus_baseline``: a reimplementation of libmbus's scan algorithms, for the benchmarks.
"""
