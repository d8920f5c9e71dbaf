"""What the report's renderings cost per scenario (fixtures/reporting/).

On the built-in simulated rig at 2400 Bd, one scenario's worth of exchanges is made (SND_NKE
and REQ_UD2, four times, the timing scenario's workload; the DUT's first answer to the last
one lost, so it is a failing exchange with a retry); then the scenario's charts, its page and
the failing exchange's value-change dump are rendered ``--repeat`` times. Also the run chart
of 100 000 answer delays (a long run).

Prints the figures; last ``report_render: X ms per failing scenario``.
Run: ``.venv/bin/python benchmarks/report_render.py``
"""

from __future__ import annotations

import argparse
import sys

from fixtures.measurements import Measurement
from fixtures.reporting.charts import AnswerDelay, answer_delay_chart
from fixtures.reporting.page import scenario_page
from fixtures.reporting.scenario import (
    ExchangeLog,
    exchange_on_bus,
    exchange_vcd,
    failing_exchange,
    scenario_charts,
)
from hardware.clock import WallClock
from protocol.timing import response_window
from rig.config import builtin_sim_config
from rig.rig import Rig

WALL = WallClock()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args(argv)
    log = ExchangeLog()
    with Rig(builtin_sim_config()) as rig:
        rig.exchange_listeners.append(log.record)
        rig.begin_test("benchmark")
        log.start_scenario()
        rig.use_baud(2400)
        for i in range(4):
            rig.master.snd_nke(5)
            if i == 3:
                rig.dut.control.arm("silence", 1)
            rig.master.req_ud2(5)
        exchanges = list(log.exchanges)
        failing = failing_exchange(exchanges, AssertionError("demo"))
        delays = [ex.response_delay for ex in exchanges if ex.response_delay is not None]
        low, high = response_window(2400)
        measurements = [Measurement("response_delay_min", min(delays), "s", low, high),
                        Measurement("response_delay_max", max(delays), "s", low, high)]
        start = WALL.now()
        size = 0
        for _ in range(args.repeat):
            on_bus = exchange_on_bus(failing, rig.trace)
            charts = scenario_charts(exchanges, measurements, failing, on_bus)
            page = scenario_page(doc="benchmark", measurements=measurements, charts=charts)
            dump = exchange_vcd(rig, failing, on_bus)
            size = len(page) + sum(len(svg) for _, svg in charts) + len(dump or "")
        per_scenario = (WALL.now() - start) / args.repeat
        rig.end_test()
    many = [AnswerDelay(2400, 0.005 + (i % 1000) * 1e-4, f"#{i}") for i in range(100_000)]
    start = WALL.now()
    run_chart = answer_delay_chart(many, "run")
    run_time = WALL.now() - start
    print(f"{len(exchanges)} exchanges, {len(charts)} charts, page + charts + VCD "
          f"{size / 1000:.1f} kB per scenario")
    print(f"run chart of {len(many)} answer delays: {run_time * 1000:.0f} ms, "
          f"{len(run_chart) / 1000:.1f} kB")
    print(f"report_render: {per_scenario * 1000:.2f} ms per failing scenario")
    return 0


if __name__ == "__main__":
    sys.exit(main())
