"""``python -m bench.hotpath``: only the in-process service path against the bare model (about a minute).

The inner loop for work on the serving hot path: the same records, model and code path as the inference
section of ``make bench`` (``ScoringProcessor`` + ``LakeSink`` on the emulator's S3), the stage breakdown
and the bare ``IsolationForest.score_samples`` rate, without the baselines, profiles and serve runs.

    python -m bench.hotpath                 # 24 instances of the real sample, as make bench
    python -m bench.hotpath --instances 6   # quicker
"""

from __future__ import annotations

import argparse
import sys

from bench.common import Context, say


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hotpath", description=__doc__.splitlines()[0])
    p.add_argument("--instances", type=int, default=24)
    p.add_argument("--rows", type=int, default=None, help="rows per instance (default: all)")
    args = p.parse_args(argv)

    from bench import inference as bi
    from petrostream import lake
    from petrostream.settings import Settings

    ctx = Context(smoke=False)
    try:
        ctx.setup()
        model = ctx.model().model
        model.self_check()  # as the service does when it loads a champion
        records = bi.make_records(ctx, ctx.pick(args.instances), args.rows)
        store = lake.LakeStore(Settings(curated_bucket=ctx.fresh_bucket("hotpath")))
        rows, m, first = bi._service_best(model, records, store)
        bare = bi._bare(model, records)
        stages = bi._stages(model, records, store)
        service_rate = rows / m.cpu
        say("hotpath", f"{len(records):,} records, {rows:,} rows")
        say("hotpath", f"service path: {m.cpu:.2f} CPU s = {service_rate:,.0f} rows/s per core "
                       f"(best of 3 runs; the first {first.cpu:.2f} CPU s)")
        say("hotpath", f"bare model:   {bare['cpu_s']:.2f} CPU s = {bare['rows_per_cpu_s']:,.0f} rows/s per core")
        say("hotpath", f"fraction of the bare model's rate: {service_rate / bare['rows_per_cpu_s']:.3f} (target 0.5)")
        total = sum(stages.values())
        for k, v in stages.items():
            say("hotpath", f"  {k:<13} {v:6.2f} CPU s  {v / total:5.1%}")
    finally:
        ctx.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
