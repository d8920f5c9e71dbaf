"""Bridges between the simulated bus (running in real time) and outside programs.

docs/design.md "Pseudo-terminal endpoints run the bus in real time so outside programs can join".
Every bridge runs on a :class:`~hardware.sim.realtime.RealTimeRunner`: bytes from outside go
onto the bus through ``runner.call`` (sent from "now" at the endpoint's baud rate); characters
the bus delivers to the endpoint are queued by the runner thread and written out by a writer
thread (the runner never blocks on an outside program).

- :class:`MasterPty`: a pseudo-terminal for an OUTSIDE MASTER (libmbus ``mbus-serial-*``,
  pyMeterBus, your own) on the bus's master endpoint; ``link`` adds a symlink to it.
- :class:`TcpGateway`: raw M-Bus over TCP on the master endpoint, as M-Bus/Ethernet gateways
  serve it (libmbus ``mbus-tcp-*``, pyserial ``socket://``); one client at a time.
- :class:`SlavePty`: a pseudo-terminal for an OUTSIDE SLAVE (meter firmware built for the
  host, another emulator): it joins the bus as one more slave endpoint.

Pseudo-terminals carry bytes only: no parity bit, no baud rate, no timing of their own. The
bridge therefore (a) sends what arrives as clean 8E1 characters at the endpoint's rate,
(b) passes characters the bus received with a parity or framing error on as their sampled
value (like a UART with parity checking off), and (c) reads the outside side's baud rate
from the pty's termios (what the program set with tcsetattr / pyserial's ``baudrate``)
and sets the endpoint to it when it is an M-Bus rate: for an outside master when it writes
(it sets its rate, then sends), for an outside slave right before the master's next frame
starts (a slave switches after its acknowledgement has gone out, and a pty does not say
when that was: its E5 keeps the old rate, the master's next frame is heard at the new one).
Faults on the wire (parity errors, collisions, noise) are for the in-process simulated bus
(``mbussim://``), not for a pty.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import socket
import termios
import threading
import tty
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from protocol.chars import RxChar
from protocol.errors import ConfigError, HardwareError
from protocol.meter import MeterProfile
from protocol.timing import BAUD_RATES

from .bus import Endpoint, SimBus
from .engine import Simulation
from .meter import add_meters
from .realtime import RealTimeRunner

POLL_S = 0.05
"""How often the reader threads look up from a blocking read (to notice close())."""
READ_SIZE = 4096
JOIN_S = 2.0
"""Bounded teardown: each bridge thread gets this long to end."""

_SPEED_BY_BAUD: dict[int, int] = {b: getattr(termios, f"B{b}") for b in BAUD_RATES}
_BAUD_BY_SPEED: dict[int, int] = {speed: b for b, speed in _SPEED_BY_BAUD.items()}


def pty_baud(fd: int) -> int | None:
    """The baud rate a program set on a pseudo-terminal (its termios output speed), if it is
    an M-Bus rate."""
    try:
        speed = termios.tcgetattr(fd)[5]
    except termios.error:
        return None
    return _BAUD_BY_SPEED.get(speed)


def set_pty_baud(fd: int, baud: int) -> None:
    """Put ``baud`` into a pty's termios (both speeds): what a program opening it reads."""
    attrs = termios.tcgetattr(fd)
    attrs[4] = attrs[5] = _SPEED_BY_BAUD[baud]
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


class _Outbox:
    """Characters from the bus, written to an outside file descriptor by a thread."""

    def __init__(self, name: str, write: Callable[[bytes, int], None]) -> None:
        self._queue: queue.SimpleQueue[tuple[bytes, int] | None] = queue.SimpleQueue()
        self._write = write
        self._thread = threading.Thread(target=self._loop, name=f"{name}-writer", daemon=True)
        self._thread.start()

    def put(self, ch: RxChar, tag: int = 0) -> None:
        """Queue ``ch``; ``tag`` is handed to the writer with it (the TCP client it is for)."""
        self._queue.put((bytes((ch.value,)), tag))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(JOIN_S)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            data, tag = item
            with contextlib.suppress(OSError):
                self._write(data, tag)


class Listeners:
    """Several receivers of one endpoint's characters (its ``on_receive`` takes one)."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[RxChar], None]] = []

    def __call__(self, ch: RxChar) -> None:
        for callback in list(self.callbacks):
            callback(ch)

    @classmethod
    def on(cls, endpoint: Endpoint) -> Listeners:
        """The endpoint's Listeners, installed in front of any callback it had."""
        current = endpoint.on_receive
        if isinstance(current, Listeners):
            return current
        fan = cls()
        if current is not None:
            fan.callbacks.append(current)
        endpoint.on_receive = fan
        return fan


class _Bridge:
    """One outside program joined to one endpoint of a bus running in real time."""

    name = "bridge"

    def __init__(self, runner: RealTimeRunner, endpoint: Endpoint) -> None:
        self.runner = runner
        self.endpoint = endpoint
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._outbox = _Outbox(self.name, self._write_out)
        self.received = 0
        """Bytes taken from outside and put on the bus."""

    def _start(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"{self.name}-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _write_out(self, data: bytes, tag: int = 0) -> None:
        """Write bytes the bus delivered to the outside program (writer thread); ``tag`` is
        what the bridge queued them with."""
        raise NotImplementedError

    def _listen(self, deliver: Callable[[RxChar], None]) -> None:
        self.runner.call(lambda: Listeners.on(self.endpoint).callbacks.append(deliver))
        self._deliver = deliver

    def _unlisten(self) -> None:
        def drop() -> None:
            with contextlib.suppress(ValueError):
                Listeners.on(self.endpoint).callbacks.remove(self._deliver)

        with contextlib.suppress(Exception):
            self.runner.call(drop)

    def _to_bus(self, data: bytes) -> None:
        self.received += len(data)
        self.runner.call(lambda: self.endpoint.transmit(data))

    def close(self) -> None:
        """Stop the threads (bounded), leave the endpoint, release what the bridge holds."""
        if self._stop.is_set():
            return
        self._stop.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(JOIN_S)
        self._unlisten()
        self._outbox.close()
        self._release()

    def _release(self) -> None:
        """Close the outside side (file descriptors, sockets, symlinks)."""

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _PtyBridge(_Bridge):
    """A pseudo-terminal on an endpoint; the outside program opens :attr:`path`."""

    def __init__(self, runner: RealTimeRunner, endpoint: Endpoint, *,
                 link: str | Path | None = None) -> None:
        super().__init__(runner, endpoint)
        self._master_fd, self._slave_fd = os.openpty()
        self.path = os.ttyname(self._slave_fd)
        tty.setraw(self._slave_fd)
        set_pty_baud(self._slave_fd, endpoint.baud)
        self._baud_seen = endpoint.baud
        self.initial_baud = endpoint.baud
        self.link: Path | None = None
        if link is not None:
            self._make_link(Path(link))
        self._listen(self._heard)
        self._start(self._read_loop, "reader")

    def _make_link(self, link: Path) -> None:
        problem = None
        try:
            if link.is_symlink():
                link.unlink()
            elif link.exists():
                problem = "exists and is not a symlink (not replacing it)"
            if problem is None:
                link.symlink_to(self.path)
        except OSError as exc:
            problem = f"cannot create the symlink ({exc.strerror})"
        if problem is not None:
            self.close()
            raise ConfigError(f"{link}: {problem}")
        self.link = link

    def _heard(self, ch: RxChar) -> None:
        self._outbox.put(ch)

    def _write_out(self, data: bytes, tag: int = 0) -> None:
        os.write(self._master_fd, data)

    def follow_baud(self) -> int:
        """Set the endpoint to the baud rate the outside program put on the pty (if it is an
        M-Bus rate and changed); return the endpoint's rate."""
        baud = pty_baud(self._slave_fd)
        if baud is not None and baud != self._baud_seen:
            self._baud_seen = baud

            def change() -> None:
                self.endpoint.baud = baud

            self.runner.call(change)
        return self.endpoint.baud

    def reset(self) -> None:
        """For an outside program started again on this pty: what is queued in it either way
        is dropped, and the pty and the endpoint are back at the rate they began with."""
        with contextlib.suppress(termios.error, OSError):
            termios.tcflush(self._slave_fd, termios.TCIOFLUSH)
        set_pty_baud(self._slave_fd, self.initial_baud)
        self._baud_seen = baud = self.initial_baud

        def change() -> None:
            self.endpoint.baud = baud

        self.runner.call(change)

    def _read_loop(self) -> None:
        fd = self._master_fd
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([fd], [], [], POLL_S)
                if not ready:
                    self._idle()
                    continue
                data = os.read(fd, READ_SIZE)
            except OSError:
                return
            if data:
                self._from_outside(data)

    def _idle(self) -> None:
        """Nothing to read for a while: an outside master may have set a new rate."""
        self.follow_baud()

    def _from_outside(self, data: bytes) -> None:
        """Bytes the outside program wrote, at the rate it set for them. An outside master
        sets a new rate before its next request: the rate is followed first."""
        self.follow_baud()
        self._to_bus(data)

    def _close_fds(self) -> None:
        for fd in (self._master_fd, self._slave_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _release(self) -> None:
        self._close_fds()
        if self.link is not None and self.link.is_symlink():
            with contextlib.suppress(OSError):
                self.link.unlink()


class MasterPty(_PtyBridge):
    """A pseudo-terminal for an outside master: what it writes goes onto the bus from the
    master endpoint; what the master endpoint hears comes back to it."""

    name = "master-pty"


class SlavePty(_PtyBridge):
    """A pseudo-terminal for an outside slave: a new slave endpoint on ``bus``.

    It hears the bus voltage (the master). Behind a TSS721A a slave also hears its own
    transmission; ``echo=False`` (the default) drops what it hears while it is sending, as
    most host programs expect a plain serial line.

    Its UART takes the rate the program set on the pty right before the master starts a
    frame (:meth:`follow_baud_now`, called by the master endpoint): what the program wrote
    before switching (the E5 to a baud switch) goes out at the old rate, and the master's
    next frame is heard at the new one, however late the reader thread runs.
    """

    name = "slave-pty"

    def __init__(self, runner: RealTimeRunner, bus: SimBus, *, name: str = "outside-slave",
                 baud: int | None = None, link: str | Path | None = None,
                 echo: bool = False) -> None:
        rate = bus.master.baud if baud is None else baud
        endpoint = runner.call(lambda: bus.add_slave(name, rate))
        self.bus = bus
        self.echo = echo
        super().__init__(runner, endpoint, link=link)
        runner.call(lambda: bus.master.before_send.append(self.follow_baud_now))

    def follow_baud_now(self) -> None:
        """In the simulation: the endpoint at the rate the program has set on its pty."""
        baud = pty_baud(self._slave_fd)
        if baud is not None and baud != self.endpoint.baud:
            self._baud_seen = baud
            self.endpoint.baud = baud

    def _heard(self, ch: RxChar) -> None:
        if not self.echo and ch.time <= self.endpoint.busy_until:
            return
        self._outbox.put(ch)

    def _idle(self) -> None:
        """The rate is taken when the master next sends (:meth:`follow_baud_now`)."""

    def _from_outside(self, data: bytes) -> None:
        """An outside slave answers, then switches: the E5 that acknowledges a baud switch
        goes at the old rate (EN 13757-2), and a pty drains at once, so the program may have
        set the new rate before the bridge reads the E5. Its bytes go out at the endpoint's
        rate; the new rate is taken right before the master's next frame."""
        self._to_bus(data)

    def _release(self) -> None:
        def leave() -> None:
            with contextlib.suppress(ValueError):
                self.bus.master.before_send.remove(self.follow_baud_now)
            self.bus.remove_slave(endpoint)  # type: ignore[arg-type]

        endpoint = self.endpoint
        with contextlib.suppress(Exception):
            self.runner.call(leave)
        super()._release()


class TcpGateway(_Bridge):
    """Raw M-Bus over TCP on the master endpoint (one client at a time, others wait).

    The endpoint keeps its baud rate (TCP has none): set it with ``--baud``. Bind to
    127.0.0.1 unless the bus is meant to be reachable from the network.
    """

    name = "tcp"

    def __init__(self, runner: RealTimeRunner, endpoint: Endpoint, host: str, port: int) -> None:
        self._client: socket.socket | None = None
        self._lock = threading.Lock()
        try:
            server = socket.create_server((host, port))
        except OSError as exc:
            raise ConfigError(f"--tcp {host}:{port}: cannot listen ({exc.strerror or exc})") from None
        super().__init__(runner, endpoint)
        self._server = server
        self._server.settimeout(POLL_S)
        self.address: tuple[str, int] = self._server.getsockname()[:2]
        self._connection = 0
        """Counts accepted clients; a byte goes only to the client connected when the bus
        delivered it (the writer thread runs later: a client that connects in between must
        not get the tail of an answer it never asked for)."""
        self._listen(self._deliver_to_client)
        self._start(self._serve, "server")

    def _deliver_to_client(self, ch: RxChar) -> None:
        with self._lock:
            if self._client is None:
                return  # a gateway with no client connected forwards nothing
            connection = self._connection
        self._outbox.put(ch, tag=connection)

    def _write_out(self, data: bytes, tag: int = 0) -> None:
        with self._lock:
            client = self._client if tag == self._connection else None
        if client is not None:
            client.sendall(data)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(POLL_S)
            with self._lock:
                self._connection += 1
                self._client = client
            try:
                self._pump(client)
            finally:
                with self._lock:
                    self._client = None
                client.close()

    def _pump(self, client: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                data = client.recv(READ_SIZE)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            self._to_bus(data)

    def _release(self) -> None:
        self._server.close()



class VirtualBusServer:
    """Emulated meters on one simulated bus, run in real time, with bridges for outside
    programs (``mbus-rig virtual-meter``). A context manager; :meth:`close` is bounded."""

    def __init__(self, profiles: Sequence[MeterProfile], *, baud: int | None = None,
                 seed: int = 1) -> None:
        if not profiles:
            raise ConfigError("a virtual bus needs at least one meter profile")
        self.sim = Simulation(seed)
        rate = profiles[0].baud if baud is None else baud
        self.bus = SimBus(self.sim, master_baud=rate, trace=False)
        self.meters = add_meters(self.bus, profiles)
        self.runner = RealTimeRunner(self.sim)
        self.bridges: list[_Bridge] = []
        self.runner.start()

    def open_master_pty(self, link: str | Path | None = None) -> str:
        """A pseudo-terminal for an outside master; returns its path."""
        bridge = MasterPty(self.runner, self.bus.master, link=link)
        self.bridges.append(bridge)
        return bridge.path

    def open_tcp(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Raw M-Bus over TCP for an outside master; returns the bound (host, port)."""
        bridge = TcpGateway(self.runner, self.bus.master, host, port)
        self.bridges.append(bridge)
        return bridge.address

    def open_slave_pty(self, link: str | Path | None = None, *, echo: bool = False) -> str:
        """A pseudo-terminal for an outside slave joining the bus; returns its path."""
        bridge = SlavePty(self.runner, self.bus, link=link, echo=echo)
        self.bridges.append(bridge)
        return bridge.path

    def check(self) -> None:
        """Raise HardwareError if the simulation thread stopped on an error."""
        if self.runner.error is not None:
            raise HardwareError(f"the virtual bus stopped: {self.runner.error!r}")
        if not self.runner.running:
            raise HardwareError("the virtual bus is not running")

    def close(self) -> None:
        for bridge in reversed(self.bridges):
            bridge.close()
        self.bridges.clear()
        self.runner.stop()

    def __enter__(self) -> VirtualBusServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
