"""The rig farm end to end on one machine (127.0.0.1 only): a real labgrid-coordinator and
labgrid-exporter, ser2net serving a pty joined to the simulated bus over RFC 2217, the rig
pair's line server (rig/farm/lab.py); ``mbus-rig run`` against the place."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardware.clock import WallClock
from rig.farm.lab import DUT_TAG, PLACE, Lab
from rig.farm.lines import RemoteGpio

SCENARIOS = Path(__file__).parent / "data" / "farm" / "scenarios.py"
SUITE_SCENARIO = "test_snd_nke_at_primary_address_is_acknowledged"
RUN_S = 60.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(tmp_path_factory.mktemp("lab")) as the_lab:
        yield the_lab


class Run:
    """``mbus-rig run`` in the background, its output in files."""

    def __init__(self, rig: Path, work: Path, *pytest_args: str, **env: str) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.out, self.err = work / "stdout", work / "stderr"
        self.mark, self.go = work / "mark", work / "go"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rig", "run", "--rig", str(rig), "--report",
                 str(work / "report"), "--no-html", "--", "-q", "-p", "no:cacheprovider",
                 *pytest_args],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                env={**os.environ, "FARM_TEST_MARK": str(self.mark),
                     "FARM_TEST_GO": str(self.go), **env})

    def stdout(self) -> str:
        return self.out.read_text()

    def stderr(self) -> str:
        return self.err.read_text()

    def wait_until(self, what: str, check: object) -> None:
        clock = WallClock()
        deadline = clock.now() + RUN_S
        while not check():  # type: ignore[operator]
            assert self.proc.poll() is None or check(), (  # type: ignore[operator]
                f"exited {self.proc.returncode} before {what}: {self.stdout()[-2000:]}"
                f"{self.stderr()[-2000:]}")
            assert clock.now() < deadline, f"no {what} within {RUN_S} s: {self.stdout()[-2000:]}"
            clock.sleep(0.05)

    def wait(self) -> int:
        try:
            return self.proc.wait(RUN_S)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def _holder(lab: Lab) -> str:
    show = lab.client("-p", PLACE, "show").stdout
    return next(line.split(":", 1)[1].strip() for line in show.splitlines()
                if line.strip().startswith("acquired:"))


def test_runs_queue_for_a_place_and_stopping_the_holder_frees_it(lab: Lab, tmp_path: Path) -> None:
    """The first run holds the place with a fault switched on; a second run, asking by tags,
    waits and says for whom; SIGTERM to the holder leaves every line released and frees the
    place; the second run then acquires it, runs the suite, and releases it after the safe
    state."""
    gpio = RemoteGpio(lab.lines_url, lab.lines_token.read_text().strip())
    first = Run(lab.rig_file(), tmp_path / "first", "-k", "test_hold_a_fault", str(SCENARIOS))
    second: Run | None = None
    try:
        first.wait_until("the fault switched on", first.mark.exists)
        assert [line["role"] for line in gpio.lines() if line["asserted"]] == ["bus_short"]
        holder = _holder(lab)
        second = Run(lab.rig_file("by-tags.toml", place=None, tags={"dut": DUT_TAG}),
                     tmp_path / "second", "-k", SUITE_SCENARIO)
        second.wait_until("the second run waiting", lambda: "waiting for" in second.stdout())
        assert (f"waiting for a free place with dut={DUT_TAG}: held: {PLACE} by {holder}"
                in second.stdout())
        assert "acquired" not in second.stdout()
        first.proc.send_signal(signal.SIGTERM)
        assert first.wait() != 0
        assert [line["role"] for line in gpio.lines() if line["asserted"]] == []
        assert f"released labgrid place {PLACE}" in first.stdout()
        assert second.wait() == 0, second.stdout() + second.stderr()
    finally:
        first.kill()
        if second is not None:
            second.kill()
    out = second.stdout()
    assert f"acquired labgrid place {PLACE}" in out and "1 passed" in out
    # the rig check ran inside the hold, on the resolved rig (the farm file has no port)
    assert out.index(f"acquired labgrid place {PLACE}") < out.index("rig check passed") \
        < out.index("1 passed")
    assert out.index("safe state: 5 fault line(s) released") < out.index(
        f"released labgrid place {PLACE}")
    resolved = (tmp_path / "second" / "report" / "farm-rig.toml").read_text()
    assert 'port = "rfc2217://127.0.0.1:' in resolved and 'backend = "remote"' in resolved
    assert f'value="lab@{PLACE}"' in (tmp_path / "second" / "report" / "junit.xml").read_text()
    assert _holder(lab) == "None"


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_a_killed_holders_guardian_stops_its_run_makes_lines_safe_and_frees_the_place(
        lab: Lab, tmp_path: Path) -> None:
    """SIGKILL to ``mbus-rig run`` while its scenario holds a fault on: no handler runs, so
    its guardian stops the orphaned pytest run, puts the lines in safe state and releases the
    place."""
    gpio = RemoteGpio(lab.lines_url, lab.lines_token.read_text().strip())
    run = Run(lab.rig_file(), tmp_path, "-k", "test_hold_a_fault", str(SCENARIOS))
    suite = 0
    try:
        run.wait_until("the fault switched on", run.mark.exists)
        suite = int(run.mark.read_text().split()[1])
        assert [line["role"] for line in gpio.lines() if line["asserted"]] == ["bus_short"]
        assert _holder(lab) != "None"
        run.kill()  # SIGKILL: the holder runs no cleanup at all
        clock = WallClock()
        deadline = clock.now() + RUN_S
        while _alive(suite) or _holder(lab) != "None":
            assert clock.now() < deadline, f"not cleaned up within {RUN_S} s: {run.stderr()}"
            clock.sleep(0.2)
    finally:
        if suite and _alive(suite):
            os.kill(suite, signal.SIGKILL)
    assert [line["role"] for line in gpio.lines() if line["asserted"]] == []
    log = (tmp_path / "report" / "farm-guardian.log").read_text()
    assert f"is gone without releasing place {PLACE}; cleaning up" in log
    assert f"pytest run {suite}: ended" in log
    assert "line server http://127.0.0.1:" in log and "fault line(s) released" in log
    assert f"released labgrid place {PLACE}" in log
    assert log == "".join(line + "\n" for line in run.stderr().splitlines()
                          if line.startswith("mbus-rig guardian: "))
    _short_on(gpio)  # the resolved rig file names the place's line server itself
    done = _safe_state("--rig", str(tmp_path / "report" / "farm-rig.toml"))
    assert done.returncode == 0, done.stderr
    assert "safe state: 5 fault line(s) released" in done.stdout
    assert "GPIO backend remote" in done.stdout
    assert [line["role"] for line in gpio.lines() if line["asserted"]] == []


def _short_on(gpio: RemoteGpio) -> None:
    short = next(line for line in gpio.lines() if line["role"] == "bus_short")
    gpio.write(short["pin"], short["active_high"])
    assert [line["role"] for line in gpio.lines() if line["asserted"]] == ["bus_short"]


def _safe_state(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rig", "safe-state", *args],
                          capture_output=True, text=True, timeout=RUN_S,
                          env={**os.environ, **env})


def test_safe_state_releases_a_held_places_lines_and_leaves_it_to_its_holder(lab: Lab) -> None:
    """The CI step after someone else's run: the place's lines through its line server,
    without acquiring it; the holder keeps it and is named."""
    gpio = RemoteGpio(lab.lines_url, lab.lines_token.read_text().strip())
    lab.client("-p", PLACE, "acquire", user="someone-else")
    try:
        _short_on(gpio)
        done = _safe_state("--rig", str(lab.rig_file()))
        assert done.returncode == 0, done.stderr
        assert [line["role"] for line in gpio.lines() if line["asserted"]] == []
        assert _holder(lab).endswith("/someone-else")
    finally:
        lab.client("-p", PLACE, "release", user="someone-else")
    assert f"place {PLACE}: line server {lab.lines_url}: safe state: 5 fault line(s) " \
           "released" in done.stdout
    assert "/someone-else: its lines released anyway, the place left to its holder" in done.stdout


def test_safe_state_by_tags_releases_the_lines_and_the_place_this_client_holds(
        lab: Lab) -> None:
    """The CI step after its own run died holding the place (LG_USERNAME names the job):
    lines safe, then the place released; with nothing held, nothing to do."""
    gpio = RemoteGpio(lab.lines_url, lab.lines_token.read_text().strip())
    rig = str(lab.rig_file("by-tags.toml", place=None, tags={"dut": DUT_TAG}))
    lab.client("-p", PLACE, "acquire", user="ci-job-9")
    try:
        _short_on(gpio)
        done = _safe_state("--rig", rig, LG_USERNAME="ci-job-9")
        assert done.returncode == 0, done.stderr
        assert [line["role"] for line in gpio.lines() if line["asserted"]] == []
        assert _holder(lab) == "None"
    finally:
        lab.client("-p", PLACE, "release", user="ci-job-9", check=False)
    assert f"place {PLACE}: released (held by " in done.stdout
    again = _safe_state("--rig", rig, LG_USERNAME="ci-job-9")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"no place with dut={DUT_TAG} is held by ")
    assert again.stdout.strip().endswith("/ci-job-9: nothing to release (--place NAME names one)")


def test_a_reservation_wait_that_times_out_is_one_line(lab: Lab, tmp_path: Path) -> None:
    lab.client("-p", PLACE, "acquire", user="someone-else")
    try:
        run = Run(lab.rig_file("impatient.toml", acquire_timeout=1), tmp_path)
        status = run.wait()
    finally:
        lab.client("-p", PLACE, "release", user="someone-else")
    assert status == 1
    assert "waiting for place mbus-1: held: mbus-1 by" in run.stdout()
    err = run.stderr().strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("mbus-rig run: labgrid: place mbus-1 was not free within 1 s (held: "
                             "mbus-1 by ") and "/someone-else); gave up waiting" in err[0]


def test_an_unknown_place_is_one_line_and_exit_2(lab: Lab, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "rig", "run", "--rig",
                           str(lab.rig_file("nowhere.toml", place="mbus-9"))],
                          capture_output=True, text=True, timeout=RUN_S)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "has no place matching name=mbus-9 (places: mbus-1 (dut=heat-meter))" in done.stderr


def test_farm_lists_places_with_dut_and_holder(lab: Lab) -> None:
    lab.client("-p", PLACE, "acquire", user="ci-job-7")
    try:
        done = subprocess.run([sys.executable, "-m", "rig", "farm", "--coordinator",
                               lab.coordinator], capture_output=True, text=True, timeout=RUN_S)
    finally:
        lab.client("-p", PLACE, "release", user="ci-job-7")
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith(PLACE))
    assert row.split()[1:4] == [DUT_TAG, f"dut={DUT_TAG}", row.split()[3]]
    assert row.split()[3].endswith("/ci-job-7")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_missing_coordinator_is_one_line_and_exit_2(tmp_path: Path) -> None:
    port = _free_port()
    rig = tmp_path / "farm.toml"
    rig.write_text(f'[labgrid]\nplace = "{PLACE}"\ncoordinator = "127.0.0.1:{port}"\n'
                   'connect_timeout = 5\n[[dut]]\nname = "m"\nkind = "black-box"\n')
    done = subprocess.run([sys.executable, "-m", "rig", "run", "--rig", str(rig)],
                          capture_output=True, text=True, timeout=RUN_S)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"mbus-rig run: labgrid coordinator 127.0.0.1:{port}: ")
    assert "is labgrid-coordinator running there?" in done.stderr
