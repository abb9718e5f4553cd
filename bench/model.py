"""Model: cold load time from the S3 export (``model_store.read_manifest`` + ``pull`` + ``pyfunc.load`` in a fresh
process, as the service does at start) and the memory of the inference service under load (VmRSS of the
``petrostream serve`` process sampled during the max-speed run) against a 1 GB Fargate task."""

from __future__ import annotations

import json
import statistics
from typing import Any

from bench.common import Child, Context, child_env, rnd, say
from bench.service import serve_run

FARGATE_TASK_MIB = 1024.0

_LOAD = r"""
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
from petrostream import model_store, pyfunc
t1 = time.perf_counter()
manifest = model_store.read_manifest()
local = model_store.pull(manifest, Path(sys.argv[1]))
t2 = time.perf_counter()
model = pyfunc.load(local)
t3 = time.perf_counter()
model.predict(pyfunc.example_input(model, 600))
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "pull_s": t2 - t1, "load_s": t3 - t2, "first_predict_s": t4 - t3,
                  "in_process_s": t4 - t0}))
"""


def _cold_load(ctx: Context, i: int) -> dict[str, Any]:
    import sys

    cache = ctx.tmp / f"cold-cache-{i}"
    child = Child([sys.executable, "-c", _LOAD, str(cache)], ctx.tmp / f"cold-load-{i}.log", child_env(),
                  sample_s=0.1)
    if not child.wait(300):
        child.stop()
        raise RuntimeError("cold model load did not finish within 300 s")
    if child.returncode != 0:
        raise RuntimeError(f"cold model load failed (exit {child.returncode}): {child.tail()}")
    out = json.loads(child.stdout().strip().splitlines()[-1])
    out["process_wall_s"] = child.wall  # interpreter start included
    out["peak_rss_mib"] = child.memory()["peak_rss_mib"]
    return out


def run(ctx: Context) -> dict[str, Any]:
    bm = ctx.served_model()
    runs = [_cold_load(ctx, i) for i in range(ctx.sizes.model_load_repeats)]

    def med(k: str) -> float | None:
        return rnd(statistics.median(r[k] for r in runs))

    cold = {k: med(k) for k in ("process_wall_s", "import_s", "pull_s", "load_s", "first_predict_s", "in_process_s")}
    cold["peak_rss_mib"] = max(r["peak_rss_mib"] or 0 for r in runs)
    cold["runs"] = len(runs)
    say("model", f"cold load from the S3 export: {cold['process_wall_s']} s per fresh process "
                 f"(imports {cold['import_s']} s, pull {cold['pull_s']} s, load {cold['load_s']} s)")

    under_load = serve_run(ctx, "max")
    at_1x = serve_run(ctx, "1x")
    mem = under_load.get("service_memory") or {}
    peak = mem.get("peak_rss_mib")
    say("model", f"inference service peak RSS under load: {peak} MiB (target <= {FARGATE_TASK_MIB:.0f} MiB)")
    return {
        "model": bm.facts,
        "cold_load": cold,
        "service_memory_under_load": {
            **mem,
            "rows": under_load.get("produced_rows"),
            "error": under_load.get("error"),
        },
        "service_memory_at_1x": (at_1x.get("service_memory") or {}) | ({"error": at_1x["error"]}
                                                                       if "error" in at_1x else {}),
        "fargate_task_mib": FARGATE_TASK_MIB,
        "headroom_mib": rnd(FARGATE_TASK_MIB - peak, 1) if peak else None,
        "met": peak is not None and peak <= FARGATE_TASK_MIB,
        "notes": ["Cold load = a fresh Python process: imports (mlflow, sklearn, pandas), read the champion "
                  "manifest, pull + sha256-verify every file from the emulator's S3, pyfunc.load, one first predict.",
                  "Peak RSS = the serve process's VmHWM (peak resident set since exec), read from /proc every "
                  "0.5 s while it runs."],
    }
