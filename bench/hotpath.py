"""``python -m bench.hotpath``: only the in-process service path against the bare model (about a minute).

The inner loop for work on the serving hot path: the same records and code path as the inference section of
``make bench`` (``ScoringProcessor`` + ``LakeSink`` on the emulator's S3), the stage breakdown and the bare
``IsolationForest.score_samples`` rate, without the baselines, profiles and serve runs. By default with the
reference forest (the cheapest forest per row: where the service's own work shows most, and no training to wait
for); ``--model served`` first runs the quick training and uses the model it registers, as ``make bench`` does.

    python -m bench.hotpath                 # 24 instances of the real sample, as make bench
    python -m bench.hotpath --instances 6   # quicker
    python -m bench.hotpath --model served  # the model the product serves (about a minute more)
"""

from __future__ import annotations

import argparse
import sys

from bench.common import Context, describe_model, say


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hotpath", description=__doc__.splitlines()[0])
    p.add_argument("--instances", type=int, default=24)
    p.add_argument("--rows", type=int, default=None, help="rows per instance (default: all)")
    p.add_argument("--model", choices=("reference", "served"), default="reference",
                   help="the reference forest (default) or the model the quick training registers")
    args = p.parse_args(argv)

    from bench import inference as bi
    from petrostream import lake
    from petrostream.settings import Settings

    ctx = Context(smoke=False)
    try:
        ctx.setup()
        bm = ctx.served_model() if args.model == "served" else ctx.reference_model()
        model = bm.model
        model.self_check()  # as the service does when it loads a champion
        records = bi.make_records(ctx, ctx.pick(args.instances), args.rows)
        store = lake.LakeStore(Settings(curated_bucket=ctx.fresh_bucket("hotpath")))
        rows, m, first = bi._service_best(model, records, store)
        bare = bi._bare(model, records)
        stages = bi._stages(model, records, store)
        service_rate = rows / m.cpu
        say("hotpath", f"{len(records):,} records, {rows:,} rows; model: {describe_model(bm.facts)}")
        say("hotpath", f"service path: {m.cpu:.2f} CPU s = {service_rate:,.0f} rows/s per core "
                       f"(best of 3 runs; the first {first.cpu:.2f} CPU s)")
        say("hotpath", f"bare model:   {bare['cpu_s']:.2f} CPU s = {bare['rows_per_cpu_s']:,.0f} rows/s per core")
        target = "target 0.5" if args.model == "served" else "make bench judges the 0.5 target on the served model"
        say("hotpath", f"fraction of the bare model's rate: {service_rate / bare['rows_per_cpu_s']:.3f} ({target})")
        total = sum(stages.values())
        for k, v in stages.items():
            say("hotpath", f"  {k:<13} {v:6.2f} CPU s  {v / total:5.1%}")
    finally:
        ctx.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
