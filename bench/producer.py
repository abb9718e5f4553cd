"""Producer: rows/s into Kinesis with aggregation + batching (``producer.replay``, as ``petrostream produce``
runs it) against one ``PutRecord`` per row (``producer.put_record_per_row``), each on a fresh stream."""

from __future__ import annotations

from typing import Any

from bench.common import Context, ratio, rnd, say

TARGET_RATIO = 50.0


def _summary(s: Any) -> dict[str, Any]:
    return {
        "rows": s.rows,
        "records": s.records,
        "bytes": s.bytes,
        "calls": s.calls,
        "instances": s.instances,
        "elapsed_s": rnd(s.elapsed_s),
        "rows_per_s": rnd(s.rows_per_s, 1),
        "rows_per_record": rnd(s.aggregation, 2),
        "bytes_per_record": rnd(s.bytes / s.records, 1) if s.records else None,
        "bytes_per_row": rnd(s.bytes / s.rows, 1) if s.rows else None,
        "budget_wait_s": rnd(s.budget_wait_s),
        "retries": s.retries,
    }


def run(ctx: Context) -> dict[str, Any]:
    # ``from producer import replay`` returns the producer.replay MODULE once that submodule is imported
    # (the lazy export shares its name), so import the functions from their module.
    from producer.replay import put_record_per_row, replay

    z = ctx.sizes
    paths = [i.path for i in ctx.pick(z.producer_batched_instances)]

    stream = ctx.fresh_stream("per-row")
    base = put_record_per_row(paths[: z.producer_per_row_instances], stream=stream,
                              max_rows_per_instance=z.producer_per_row_rows)
    per_row = _summary(base)
    say("producer", f"baseline: one put_record per row  {per_row['rows_per_s']:,.0f} rows/s "
                    f"({per_row['rows']:,} rows, {per_row['elapsed_s']:.1f} s)")

    runs = {}
    for label, budget in (("batched", True), ("batched_no_budget", False)):
        stream = ctx.fresh_stream(label.replace("_", "-"))
        s = replay(paths, stream=stream, speed="max", max_open=64, max_rows_per_instance=z.producer_batched_rows,
                   checkpoint=False, progress=False, shard_budget=budget)
        runs[label] = _summary(s)
        say("producer", f"{'aggregated + batched' + ('' if budget else ' (no shard budget)'):38s} "
                        f"{runs[label]['rows_per_s']:,.0f} rows/s ({s.rows:,} rows, {s.aggregation:.1f} rows/record, "
                        f"{s.elapsed_s:.1f} s)")
    r = ratio(runs["batched"]["rows_per_s"], per_row["rows_per_s"])
    say("producer", f"ratio batched / per-row: {r}x (target >= {TARGET_RATIO:.0f}x)")
    return {
        "what": "rows/s acknowledged by Kinesis (local emulator, fresh 2-shard stream per run, speed max)",
        "per_row": per_row,
        "batched": runs["batched"],
        "batched_no_budget": runs["batched_no_budget"],
        "ratio": r,
        "ratio_no_budget": ratio(runs["batched_no_budget"]["rows_per_s"], per_row["rows_per_s"]),
        "target_ratio": TARGET_RATIO,
        "met": r is not None and r >= TARGET_RATIO,
        "notes": [
            "batched = producer.replay (60 rows/record, PutRecords <= 500 records, per-shard budget 1,000 records/s "
            "and 1 MiB/s as on real Kinesis); batched_no_budget = the same with the client-side budget off.",
            "per_row = producer.put_record_per_row (one PutRecord per row, same wire format and partition key).",
        ],
    }
