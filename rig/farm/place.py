"""A session with a labgrid coordinator: places, reservations, acquire and release.

A thin synchronous layer over labgrid's own client (``labgrid.remote.client.ClientSession``
and the coordinator's gRPC calls), run on a private asyncio loop in a daemon thread so the
coordinator's updates keep flowing while the suite runs. Every call has a deadline. What
labgrid says is turned into the project's errors, one line each: labgrid missing or the
coordinator unreachable is a :class:`ConfigError` (exit 2), a wait that ran out a
:class:`RigTimeoutError`.

labgrid facts used here (labgrid 26, remote/coordinator.py): a place is acquired by one
client name at a time (AcquirePlace fails while it is held); a reservation (filters on the
place's tags, ``name`` = the place's name) waits until the scheduler allocates a free
matching place, expires unless polled within 60 s, and keeps its place allocated after a
release until cancelled; the scheduler also runs when a place is released or a reservation
is made or cancelled.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import socket
import threading
from collections.abc import Coroutine, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, TypeVar

from protocol.errors import ConfigError, HardwareError, MBusRigError

T = TypeVar("T")

#: labgrid's default coordinator port (labgrid-coordinator --listen).
DEFAULT_PORT = 20408
#: Environment variable labgrid's tools read the coordinator address from.
COORDINATOR_ENV = "LG_COORDINATOR"
INSTALL_HINT = "pip install 'mbus-rig[farm]' (bash scripts/setup.sh does)"
#: How long one request to the coordinator may take once connected.
CALL_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class PlaceInfo:
    """A place as the coordinator knows it."""

    name: str
    tags: Mapping[str, str] = field(default_factory=dict)
    acquired: str | None = None  # the holder's client name ("host/user")
    comment: str = ""
    reservation: str | None = None  # token of the reservation it is allocated to

    @property
    def dut(self) -> str:
        return self.tags.get("dut", "")


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    """One resource of an acquired place: its name in the place, labgrid class and params."""

    name: str
    cls: str
    params: Mapping[str, Any]
    avail: bool = True


@dataclass(frozen=True, slots=True)
class ReservationInfo:
    token: str
    state: str  # waiting, allocated, acquired, expired, invalid
    place: str | None  # the allocated place


def coordinator_address(configured: str | None) -> str:
    """The rig file's address, else $LG_COORDINATOR, else labgrid's default; HOST[:PORT]."""
    address = configured or os.environ.get(COORDINATOR_ENV) or f"127.0.0.1:{DEFAULT_PORT}"
    return address if _has_port(address) else f"{address}:{DEFAULT_PORT}"


def _has_port(address: str) -> bool:
    host, sep, port = address.rpartition(":")
    return bool(sep) and port.isdigit() and not host.endswith(":")


def client_name() -> str:
    """How this run shows up as a place's holder: host/user, the user part naming the run
    (``LG_HOSTNAME``/``LG_USERNAME`` as with labgrid-client; else user-mbus-rig-PID)."""
    host = os.environ.get("LG_HOSTNAME") or socket.gethostname()
    user = os.environ.get("LG_USERNAME") or f"{getpass.getuser()}-mbus-rig-{os.getpid()}"
    return f"{host}/{user}"


def require_labgrid(source: str) -> None:
    """ConfigError (one line, exit 2) when labgrid's client is not installed."""
    try:
        import labgrid.remote.client  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"{source}: [labgrid]: the labgrid client is not installed "
                          f"({exc.name or exc}); {INSTALL_HINT}") from None


class Coordinator:
    """A connected labgrid client session. Use as a context manager; :meth:`close` always
    returns."""

    def __init__(self, address: str, *, connect_timeout: float, source: str = "rig file") -> None:
        require_labgrid(source)
        self.address = address
        self.name = client_name()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="labgrid-client",
                                        daemon=True)
        self._thread.start()
        self._session: Any = None
        self._quiet = _quiet_labgrid_logs()
        try:
            self._session = self._run(self._connect(), connect_timeout,
                                      f"no answer within {connect_timeout:g} s")
        except BaseException:
            self.close()
            raise

    async def _connect(self) -> Any:
        from labgrid.remote.client import ClientSession

        name = self.name

        class _Session(ClientSession):  # type: ignore[misc]  # labgrid ships no type hints
            def gethostname(self) -> str:
                return name.split("/", 1)[0]

            def getuser(self) -> str:
                return name.split("/", 1)[1]

        session = _Session(self.address, asyncio.get_running_loop())
        try:
            await session.start()
        except BaseException:
            await _stop(session)
            raise
        return session

    # --- running coroutines on the loop thread ----------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float, late: str) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise self._unreachable(late) from None
        except MBusRigError:
            raise
        except Exception as exc:  # grpc and labgrid errors: one line each
            raise self._unreachable(_reason(exc)) from None
        except BaseException:
            future.cancel()
            raise

    def _unreachable(self, why: str) -> ConfigError:
        return ConfigError(f"labgrid coordinator {self.address}: {why} (is labgrid-coordinator "
                           f"running there? set [labgrid] coordinator or {COORDINATOR_ENV})")

    def _call(self, method: str, request: Any) -> Any:
        """One unary call on the coordinator; its refusal as a ConfigError with its words."""
        stub = self._session.stub

        async def call() -> Any:
            import grpc

            try:
                return await getattr(stub, method)(request)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNAVAILABLE:
                    raise
                raise ConfigError(f"labgrid coordinator {self.address}: {method}: "
                                  f"{exc.details()}") from None

        return self._run(call(), CALL_TIMEOUT_S, f"{method}: no answer within "
                                                 f"{CALL_TIMEOUT_S:g} s")

    def sync(self) -> None:
        """Wait until every update the coordinator sent so far has been taken in."""
        ok = self._run(self._session.sync_with_coordinator(), CALL_TIMEOUT_S,
                       f"no answer within {CALL_TIMEOUT_S:g} s")
        if not ok:
            raise self._unreachable("the connection was lost")

    # --- places -----------------------------------------------------------------------------

    def places(self) -> list[PlaceInfo]:
        self.sync()
        return sorted((_place_info(p) for p in list(self._session.places.values())),
                      key=lambda p: p.name)

    def place(self, name: str) -> PlaceInfo:
        for info in self.places():
            if info.name == name:
                return info
        known = ", ".join(p.name for p in self.places()) or "none"
        raise ConfigError(f"labgrid coordinator {self.address}: no place {name!r} "
                          f"(places: {known})")

    def acquire(self, place: str) -> None:
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        self._call("AcquirePlace", pb2.AcquirePlaceRequest(placename=place))
        self.sync()

    def release(self, place: str, *, holder: str | None = None) -> None:
        """Release ``place`` if ``holder`` (default: this session) holds it; a place someone
        else holds now is left alone (labgrid: ReleasePlace ``fromuser``)."""
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        self._call("ReleasePlace", pb2.ReleasePlaceRequest(placename=place,
                                                           fromuser=holder or self.name))

    def resources(self, place: str, *, acquired: bool = True) -> dict[str, ResourceInfo]:
        """The resources of ``place`` by their name in the place: those this session acquired
        with it, or (``acquired=False``) those its matches name now, without acquiring it (as
        ``labgrid-client show`` lists them)."""
        self.sync()
        session = self._session
        try:
            found = session.places[place]
        except KeyError:
            raise ConfigError(f"labgrid coordinator {self.address}: no place {place!r}") from None
        if acquired:
            try:
                target = session.get_target_resources(found)
            except Exception as exc:  # labgrid's UserError/ServerError: not ours, orphaned, ...
                raise HardwareError(f"labgrid place {place}: {_reason(exc)}") from None
        else:
            target = {}
            for exporter, groups in list(session.resources.items()):
                for group, named in list(groups.items()):
                    for name, entry in list(named.items()):
                        match = found.getmatch((exporter, group, entry.cls, name))
                        if match is not None:
                            target[(match.rename or name, entry.cls)] = entry
        return {name: ResourceInfo(name, cls, dict(entry.params), bool(entry.avail))
                for (name, cls), entry in target.items()}

    # --- reservations -----------------------------------------------------------------------

    def reserve(self, filters: Mapping[str, str]) -> ReservationInfo:
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        request = pb2.CreateReservationRequest(
            filters={"main": pb2.Reservation.Filter(filter=dict(filters))}, prio=0.0)
        return _reservation_info(self._call("CreateReservation", request).reservation)

    def poll(self, token: str) -> ReservationInfo:
        """The reservation's state now (polling also keeps it from expiring)."""
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        reply = self._call("PollReservation", pb2.PollReservationRequest(token=token))
        return _reservation_info(reply.reservation)

    def cancel(self, token: str) -> None:
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        self._call("CancelReservation", pb2.CancelReservationRequest(token=token))

    # --- closing ----------------------------------------------------------------------------

    def close(self) -> None:
        if self._session is not None:
            try:
                asyncio.run_coroutine_threadsafe(_stop(self._session), self._loop).result(5.0)
            except Exception:  # noqa: BLE001 - closing goes on
                pass
            self._session = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self._loop.close()
        self._quiet.close()

    def __enter__(self) -> Coordinator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _stop(session: Any) -> None:
    try:
        await asyncio.wait_for(session.stop(), 3.0)
    except (Exception, asyncio.CancelledError):  # noqa: BLE001 - a dead stream is fine here
        pass
    try:
        await asyncio.wait_for(session.close(), 2.0)
    except (Exception, asyncio.CancelledError):  # noqa: BLE001
        pass


def _reason(exc: BaseException) -> str:
    details = getattr(exc, "details", None)
    text = details() if callable(details) else str(exc)
    return " ".join(str(text or type(exc).__name__).split())


def _place_info(place: Any) -> PlaceInfo:
    return PlaceInfo(name=str(place.name), tags=dict(place.tags), acquired=place.acquired or None,
                     comment=str(place.comment or ""), reservation=place.reservation or None)


def _reservation_info(pb: Any) -> ReservationInfo:
    from labgrid.remote.common import ReservationState

    allocated = [str(name) for name in pb.allocations.values()]  # filter group -> place
    return ReservationInfo(token=str(pb.token), state=ReservationState(pb.state).name,
                           place=allocated[0] if allocated else None)


class _quiet_labgrid_logs:  # noqa: N801 - used like a context
    """labgrid's client logs to the root logger ("coordinator is unavailable: ..."); without
    logging set up, Python prints those records on stderr. While a session is open they go
    nowhere: every failure comes back as one error line instead."""

    def __init__(self) -> None:
        self._root = logging.getLogger()
        self._filter = _DropLabgridClient()
        self._root.addFilter(self._filter)

    def close(self) -> None:
        self._root.removeFilter(self._filter)


class _DropLabgridClient(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "root" and record.pathname.replace(os.sep, "/").endswith(
            ("labgrid/remote/client.py", "labgrid/remote/common.py")))
