"""Derived figures (the ceiling, the headline) and the readable markdown table of a results dict."""

from __future__ import annotations

from typing import Any

from bench.common import describe_model, ratio, rnd

SHARD_RECORDS_PER_S = 1000
SHARD_BYTES_PER_S = 1024 * 1024
TASK_VCPU = 0.5


def _g(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def _shard_capacity(rows_per_record: float | None, bytes_per_record: float | None) -> dict[str, Any] | None:
    if not rows_per_record or not bytes_per_record:
        return None
    per_row = bytes_per_record / rows_per_record
    by_records = SHARD_RECORDS_PER_S * rows_per_record
    by_bytes = SHARD_BYTES_PER_S / per_row
    return {"rows_per_record": rnd(rows_per_record, 2), "bytes_per_record": rnd(bytes_per_record, 1),
            "bytes_per_row": rnd(per_row, 1), "wells_by_records_limit": int(by_records),
            "wells_by_bytes_limit": int(by_bytes), "wells_per_shard": int(min(by_records, by_bytes)),
            "binding_limit": "1,000 records/s" if by_records <= by_bytes else "1 MiB/s"}


def ceiling(res: dict[str, Any]) -> dict[str, Any]:
    """How many 1 Hz wells one Kinesis shard and one 0.5 vCPU task carry, from this run's measurements."""
    out: dict[str, Any] = {"shard_limits": "1,000 records/s and 1 MiB/s per shard (writes)",
                           "well_rate": "1 row/s per well (3W is 1 Hz)"}
    b = _g(res, "producer", "batched")
    agg = _shard_capacity(_g(b, "rows_per_record"), _g(b, "bytes_per_record"))
    if agg:
        wait = f"{agg['rows_per_record']:.0f}"
        agg["when"] = ("full aggregation as measured at max speed (a record fills only if a well's rows may wait "
                       f"~{wait} s in the producer: --linger-ms >= {wait}000)")
        out["aggregated"] = agg
    p1 = _g(res, "inference", "serve_1x", "producer")
    if p1 and p1.get("records"):
        live = _shard_capacity(p1["rows"] / p1["records"], p1["bytes"] / p1["records"])
        if live:
            live["when"] = "live replay at 1x with the default --linger-ms 1000 (measured in the 1x serve run)"
            out["live_default_linger"] = live
    core = _g(res, "inference", "service_path", "rows_per_cpu_s")
    if core:
        out["wells_per_task_service_path"] = int(core * TASK_VCPU)
    served = _g(res, "inference", "serve_max", "service_rows_per_cpu_s")
    if served:
        out["wells_per_task_whole_service"] = int(served * TASK_VCPU)
        out["whole_service_note"] = ("rows per CPU-second of the whole `petrostream serve` process in the max-speed "
                                     "run (Kinesis reads, leases, API, idle polling included) x 0.5 vCPU")
    out["task_vcpu"] = TASK_VCPU
    return out


def _row(figure: str, value: str, baseline: str = "", r: Any = None, target: str = "", met: Any = None,
         times: bool = True) -> dict:
    """One headline line; ``r`` is shown as "<r>x" (a speed-up) unless ``times`` is False (a fraction)."""
    shown = None if r is None else (f"{r}x" if times else f"{r}")
    return {"figure": figure, "measured": value, "baseline": baseline, "ratio": r, "ratio_shown": shown,
            "target": target, "met": met}


def _n(x: Any, unit: str = "", digits: int = 0) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, (int, float)):
        s = f"{x:,.{digits}f}"
    else:
        s = str(x)
    return f"{s} {unit}".strip()


def _inference_headline(i: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if "service_path" in i:
        sp = i["service_path"]["rows_per_cpu_s"]
        model = describe_model(i["model"]) if i.get("model") else "the served model"
        rows.append(_row("Inference end to end (decode+features+score+write), per core", _n(sp, "rows/s"),
                         f"one model call per reading: {_n(i['per_reading_call']['rows_per_cpu_s'], 'rows/s')}",
                         i.get("ratio_vs_per_reading"), ">= 100x", i.get("met_vs_per_reading")))
        rows.append(_row(f"Inference end to end vs the bare model it serves ({model}), per core", _n(sp, "rows/s"),
                         f"bare IsolationForest.score_samples: {_n(i['bare_model']['rows_per_cpu_s'], 'rows/s')}",
                         i.get("fraction_of_bare_model"), ">= 0.5", i.get("met_fraction_of_bare"), times=False))
    rf = i.get("reference_forest") or {}
    if rf.get("fraction_of_bare_model") is not None:
        own = (rf["service_us_per_row"] - rf["bare_us_per_row"]) if rf.get("service_us_per_row") else None
        rows.append(_row(f"The same with the reference forest ({describe_model(rf['model'])}: sklearn's defaults, "
                         "the cheapest forest per row), per core", _n(rf["service_rows_per_cpu_s"], "rows/s"),
                         f"bare: {_n(rf['bare_model']['rows_per_cpu_s'], 'rows/s')} = {rf['bare_us_per_row']} us/row; "
                         f"the service's own work ~{_n(own, 'us/row', 2)}, so a model cheaper than that is "
                         "outweighed by it", rf["fraction_of_bare_model"], "(sensitivity)", None, times=False))
    for kind, label in (("serve_1x", "1x real time"), ("serve_max", "max speed")):
        s = i.get(kind) or {}
        q = s.get("latency_produced_to_queryable_s")
        if q:
            sc = s.get("latency_scored_minus_sent_s") or {}
            rows.append(_row(f"Latency produced -> queryable, {label} ({s.get('instances')} instances, "
                             f"flush {s.get('flush_s'):g} s)",
                             f"p50 {_n(q['p50'], 's', 2)}, p95 {_n(q['p95'], 's', 2)}, p99 {_n(q['p99'], 's', 2)}",
                             f"scored_at - sent_at: p50 {_n(sc.get('p50'), 's', 2)}, p95 {_n(sc.get('p95'), 's', 2)}, "
                             f"p99 {_n(sc.get('p99'), 's', 2)}; "
                             + (f"all {_n(s.get('produced_rows'))} rows in the lake" if s.get("complete")
                                else f"INCOMPLETE: {_n(s.get('lake_unique_rows'))} of {_n(s.get('produced_rows'))} "
                                     "rows in the lake")))
        elif s.get("error"):
            rows.append(_row(f"Latency, {label}", f"failed: {s['error'][:120]}"))
    return rows


def headline(res: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    p = res.get("producer") or {}
    if "batched" in p:
        rows.append(_row("Producer -> Kinesis (aggregated + batched)", _n(p["batched"]["rows_per_s"], "rows/s"),
                         f"one put_record per row: {_n(p['per_row']['rows_per_s'], 'rows/s')}", p.get("ratio"),
                         ">= 50x", p.get("met")))
    i = res.get("inference") or {}
    t = res.get("training") or {}
    rows += _inference_headline(i)
    f = t.get("features") or {}
    if f:
        rows.append(_row("Feature extraction (features.compute_features), per core",
                         _n(_g(f, "vectorised", "rows_per_cpu_s"), "rows/s"),
                         f"naive per-row Python loop: {_n(_g(f, 'naive_per_row_loop', 'rows_per_cpu_s'), 'rows/s')}",
                         f.get("ratio")))
    for prof in ("train_quick", "train_full"):
        tr = t.get(prof) or {}
        if tr.get("wall_s") is not None:
            rows.append(_row(f"Training `--profile {prof[6:]}`",
                             f"{_n(tr['wall_s'], 's')} wall, peak {_n(tr.get('peak_rss_mib'), 'MiB')}",
                             "completed" if tr.get("ok") else f"FAILED: {str(tr.get('error', ''))[:160]}"))
    q = res.get("queries") or {}
    if q.get("queries"):
        lk = q.get("lake") or {}
        rows.append(_row(f"Dashboard queries on {_n(lk.get('rows'))} rows, DuckDB vs pandas (geomean of "
                         f"{q.get('pandas_compared')})",
                         f"{_n(sum(e['duckdb_s'] for e in q['queries'].values()), 's', 2)} for all "
                         f"{len(q['queries'])} queries",
                         "pandas over the same Parquet; same results: "
                         + ("yes" if q.get("all_results_match") else "NO"), q.get("geomean_speedup_vs_pandas")))
    m = res.get("model") or {}
    if m.get("cold_load"):
        c = m["cold_load"]
        rows.append(_row("Model cold load from the S3 export (fresh process)", _n(c.get("process_wall_s"), "s", 2),
                         f"of which pull {_n(c.get('pull_s'), 's', 2)}, load {_n(c.get('load_s'), 's', 2)}"))
    mu = m.get("service_memory_under_load") or {}
    if mu.get("peak_rss_mib") is not None:
        rows.append(_row("Inference service peak RSS under load (max-speed run)", _n(mu["peak_rss_mib"], "MiB"),
                         "1 GB Fargate task (1,024 MiB)", ratio(mu["peak_rss_mib"], m.get("fargate_task_mib")),
                         "<= 1,024 MiB", m.get("met"), times=False))
    c = res.get("ceiling") or {}
    for key, label in (("live_default_linger", "live, linger 1 s"), ("aggregated", "full aggregation")):
        if c.get(key):
            a = c[key]
            rows.append(_row(f"Ceiling: 1 Hz wells per Kinesis shard ({label})", _n(a["wells_per_shard"]),
                             f"{a['rows_per_record']} rows/record, {a['bytes_per_row']} B/row; bound by "
                             f"{a['binding_limit']}"))
    if c.get("wells_per_task_service_path"):
        rows.append(_row("Ceiling: 1 Hz wells per 0.5 vCPU inference task", _n(c["wells_per_task_service_path"]),
                         "per-core service-path rate x 0.5"
                         + (f"; whole service process: {_n(c.get('wells_per_task_whole_service'))}"
                            if c.get("wells_per_task_whole_service") else "")))
    return rows


# ---------------------------------------------------------------------------------------------- markdown


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for r in rows:
        out.append("| " + " | ".join("" if v is None else str(v).replace("|", "\\|") for v in r) + " |")
    return "\n".join(out)


def _met(v: Any) -> str:
    return "yes" if v is True else "NO" if v is False else ""


def render(res: dict[str, Any]) -> str:
    meta = res.get("meta", {})
    mach = meta.get("machine", {})
    ver = mach.get("versions", {})
    data = meta.get("data", {})
    lines = [
        "# PetroStream benchmarks" + (" (SMOKE run: tiny sizes, not figures to quote)" if meta.get("smoke") else ""),
        "",
        f"Run {mach.get('date')} in {_n(meta.get('elapsed_s'), 's')}: `{meta.get('command')}`.",
        "",
        f"Machine: {mach.get('cpu_model')}, {mach.get('cores')} cores, {mach.get('ram_gib')} GiB RAM, "
        f"{mach.get('os')}; load average at start {mach.get('load_avg_at_start')} (a shared machine). "
        f"Python {mach.get('python')}, numpy {ver.get('numpy')}, pandas {ver.get('pandas')}, "
        f"pyarrow {ver.get('pyarrow')}, scikit-learn {ver.get('scikit-learn')}, duckdb {ver.get('duckdb')}, "
        f"mlflow {ver.get('mlflow')}, moto {ver.get('moto')}.",
        "",
        f"Data: {data.get('kind')} ({_n(data.get('instances'))} instances, {_n(data.get('rows'))} rows, "
        f"classes {data.get('classes')}).",
        "",
        "Every ratio compares two things measured in this same run. In-process rates are per CPU-second of the "
        "measuring process (= per core); the emulator (moto) runs in its own process.",
        "",
        "## Headline",
        "",
        _table(["figure", "measured", "baseline / detail", "ratio", "target", "met"],
               [[h["figure"], h["measured"], h["baseline"], h.get("ratio_shown") or "", h["target"],
                 _met(h["met"])] for h in res.get("headline", [])]),
    ]
    lines += _producer(res.get("producer"))
    lines += _inference(res.get("inference"))
    lines += _training(res.get("training"))
    lines += _queries(res.get("queries"))
    lines += _model(res.get("model"))
    lines += _ceiling(res.get("ceiling"))
    errors = [f"- `{k}`: {v['error']}" for k, v in res.items() if isinstance(v, dict) and v.get("error")]
    if errors or meta.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in meta.get("notes", [])] + errors
    return "\n".join(lines) + "\n"


def _section(title: str, d: dict | None) -> list[str]:
    out = ["", f"## {title}", ""]
    if d and d.get("section_s") is not None:
        out += [f"Section took {d['section_s']:.0f} s; load average at its end {d.get('load_avg_at_end')}.", ""]
    if d and d.get("error"):
        out.append(f"Section failed: {d['error']}")
    return out


def _producer(p: dict | None) -> list[str]:
    if not p:
        return []
    out = _section("Producer", p)
    if "batched" not in p:
        return out
    rows = []
    for key, label in (("per_row", "one put_record per row (baseline)"), ("batched", "aggregated + batched"),
                       ("batched_no_budget", "aggregated + batched, no shard budget")):
        r = p[key]
        rows.append([label, _n(r["rows"]), _n(r["records"]), _n(r["calls"]), _n(r["elapsed_s"], "s", 1),
                     _n(r["rows_per_s"]), _n(r["rows_per_record"], "", 1), _n(r["bytes_per_row"], "", 1),
                     _n(r["budget_wait_s"], "s", 1)])
    out.append(_table(["run", "rows", "records", "calls", "elapsed", "rows/s", "rows/record", "B/row", "budget wait"],
                      rows))
    out += ["", f"Ratio {p.get('ratio')}x (target >= {p.get('target_ratio'):.0f}x; without the client-side shard "
                f"budget {p.get('ratio_no_budget')}x). " + " ".join(p.get("notes", []))]
    return out


def _inference(i: dict | None) -> list[str]:
    if not i:
        return []
    out = _section("Inference", i)
    if "service_path" not in i:
        return out
    rows = []
    for key, label in (("service_path", "service path (ScoringProcessor + LakeSink)"),
                       ("per_record_call", "one model call per Kinesis record (60 rows)"),
                       ("per_reading_call", "one model call per reading (baseline)"),
                       ("bare_model", "bare IsolationForest.score_samples (features precomputed)")):
        r = i.get(key)
        if not r:
            continue
        rows.append([label, _n(r["rows"]), _n(r["cpu_s"], "s", 2), _n(r["rows_per_cpu_s"]),
                     _n(r.get("rows_per_s_wall"))])
    f = i.get("model") or {}
    if f:
        out += [f"Model: {describe_model(f)}, windows {f.get('windows')}; {f.get('source')}.", ""]
    out.append(_table(["path", "rows", "CPU", "rows/s per core", "rows/s wall"], rows))
    out += ["", f"Fraction of the bare model's rate: {i.get('fraction_of_bare_model')} (target >= 0.5); "
                f"the service {i.get('service_us_per_row')} us/row, the bare model {i.get('bare_us_per_row')} us/row."]
    rf = i.get("reference_forest") or {}
    if rf:
        b = rf["bare_model"]
        out += ["", f"The same measurement with the reference forest, {describe_model(rf['model'])} (sklearn's "
                    "defaults, fit by the bench on normal rows): the cheapest forest per row, so the service's own "
                    "work (decode, features, bookkeeping, Parquet, S3) weighs most:", ""]
        out.append(_table(["path", "rows", "CPU", "rows/s per core", "us/row"],
                          [["service path (best of runs)", _n(rf["rows"]), _n(rf["service_cpu_s"], "s", 2),
                            _n(rf["service_rows_per_cpu_s"]), rf.get("service_us_per_row")],
                           ["bare IsolationForest.score_samples", _n(b["rows"]), _n(b["cpu_s"], "s", 2),
                            _n(b["rows_per_cpu_s"]), rf.get("bare_us_per_row")]]))
        out += ["", f"Fraction of the bare model's rate: {rf['fraction_of_bare_model']}."]
    out += ["", f"Code path: {i.get('code_path')}.", "",
            "Where the service path's time goes (same batches, stage by stage):", ""]
    out.append(_table(["stage", "CPU s", "share", "rows/s per core if alone"],
                      [[k, _n(v["cpu_s"], "", 2), f"{100 * (v['share'] or 0):.0f} %", _n(v["rows_per_cpu_s"])]
                       for k, v in i.get("stages", {}).items()]))
    if i.get("profile_top_tottime"):
        out += ["", "Profile of the service path (cProfile over a third of the records, top functions by own time; "
                    "times are wall seconds under the profiler, so `recv_into`/`poll` are waits for the emulator):",
                ""]
        out.append(_table(["function", "calls", "own s", "cumulative s"],
                          [[r["function"], _n(r["calls"]), r["tottime_s"], r["cumtime_s"]]
                           for r in i["profile_top_tottime"]]))
    rows = []
    for key, label in (("serve_1x", "1x real time"), ("serve_max", "max speed")):
        s = i.get(key) or {}
        if s.get("error"):
            rows.append([label] + [f"failed: {s['error'][:100]}"] + [""] * 8)
            continue
        if not s:
            continue
        q, sc, mem = s["latency_produced_to_queryable_s"], s["latency_scored_minus_sent_s"], s["service_memory"]
        rows.append([label, _n(s["instances"]), f"{_n(s['produced_rows'])} / {_n(s['lake_unique_rows'])}",
                     f"{q['p50']} / {q['p95']} / {q['p99']}", f"{sc['p50']} / {sc['p95']} / {sc['p99']}",
                     _n(s.get("service_rows_per_s_wall")), _n(s.get("service_rows_per_cpu_s")),
                     _n(s.get("service_avg_cores_after_ready"), "", 2), _n(mem.get("peak_rss_mib"), "MiB"),
                     _n(s.get("service_startup_to_ready_s"), "s", 1)])
    if rows:
        out += ["", "The real service (`petrostream serve` subprocess, defaults except as noted) fed by "
                    "`petrostream produce` (subprocess) on a fresh stream and bucket:", ""]
        out.append(_table(["run", "instances", "rows produced / in lake", "produced->queryable p50/p95/p99 s",
                           "scored_at-sent_at p50/p95/p99 s", "service rows/s wall", "service rows/CPU-s",
                           "avg cores used", "peak RSS", "start->ready"], rows))
        fl = (i.get("serve_1x") or i.get("serve_max") or {}).get("flush_s")
        out += ["", f"Produced -> queryable = the moment a reader first listed the object holding the row "
                    f"(polled every 0.5 s) minus the row's sent_at; scored_at is stamped when the micro-batch is "
                    f"scored, before the row waits in the shard buffer. A shard flushes every {fl} s (or 5,000 "
                    "rows), so at 1x the flush interval dominates: half of it on average, all of it at worst. "
                    "sent_at is stamped when the producer builds the record, after up to --linger-ms (1 s) in "
                    "the producer. At max speed the latency is mostly queueing: the producer outruns the service."]
    return out


def _training(t: dict | None) -> list[str]:
    if not t:
        return []
    out = _section("Training", t)
    f = t.get("features") or {}
    if f:
        v, b = f["vectorised"], f["naive_per_row_loop"]
        out.append(_table(["feature extraction", "rows", "CPU s", "rows/s per core"],
                          [["features.compute_features (vectorised)", _n(v["rows"]), _n(v["cpu_s"], "", 2),
                            _n(v["rows_per_cpu_s"])],
                           ["naive per-row Python loop (baseline)", _n(b["rows"]), _n(b["cpu_s"], "", 2),
                            _n(b["rows_per_cpu_s"])]]))
        out += ["", f"Ratio {f.get('ratio')}x. The naive loop computes the same {b['features_compared']} features "
                    f"(of {b['all_features']}): {100 * (b['share_equal_within_1e-4'] or 0):.2f} % of values equal "
                    f"within 1e-4, max |diff| {b['max_abs_diff_vs_vectorised']}."]
    rows = []
    for prof in ("train_quick", "train_full", "train_tiny"):
        tr = t.get(prof) or {}
        if tr.get("skipped"):
            rows.append([prof[6:], "skipped", tr["skipped"], "", ""])
        elif tr:
            rows.append([prof[6:], "ok" if tr.get("ok") else f"FAILED ({str(tr.get('error', ''))[:160]})",
                         _n(tr.get("wall_s"), "s"), _n(tr.get("cpu_s"), "s"), _n(tr.get("peak_rss_mib"), "MiB")])
    if rows:
        out += ["", _table(["`petrostream train --profile`", "status", "wall", "CPU", "peak RSS (process tree)"],
                           rows)]
    if t.get("train_quick", {}).get("ok") or t.get("train_tiny", {}).get("ok"):
        out += ["", "The version this training registered is the model every service figure uses (exported by "
                    "`petrostream export`, pulled from the models bucket as the service pulls its champion)."]
    return out


def _queries(q: dict | None) -> list[str]:
    if not q:
        return []
    out = _section("Queries", q)
    if not q.get("queries"):
        return out
    lk = q["lake"]
    out += [f"Lake: {_n(lk['rows'])} scored rows, {lk['wells']} wells x {lk['days']} days at 1 Hz, "
            f"{_n(lk['objects'])} Parquet objects, {_n(lk['bytes'] / 2**20, 'MiB', 1)}, written through "
            f"lake.write_partitioned at {_n(lk.get('sink_rows_per_s'), 'rows/s')}. First DuckDB query (lists the "
            f"lake, creates the views): {_n(q.get('duckdb_first_query_s'), 's', 2)}.", ""]
    rows = []
    for name, e in q["queries"].items():
        rows.append([name, _n(e["duckdb_s"], "", 3), _n(e.get("pandas_s"), "", 3) if "pandas_s" in e else "",
                     f"{e['speedup_vs_pandas']}x" if e.get("speedup_vs_pandas") else "",
                     ("yes" if e["same_result"] else "NO") if "same_result" in e else ""])
    out.append(_table(["dashboard query", "DuckDB s", "pandas s", "DuckDB speed-up", "same result"], rows))
    nat = q["queries"].get("avg_pressure_per_well", {}).get("duckdb_native_read_parquet_s")
    if nat is not None:
        out += ["", f"Reference: avg_pressure_per_well with DuckDB's own `read_parquet` (no views, no Arrow dataset): "
                    f"{nat:.3f} s against {q['queries']['avg_pressure_per_well']['duckdb_s']:.3f} s through the "
                    "query layer."]
    out += ["", f"Geometric mean speed-up over the {q.get('pandas_compared')} queries with a pandas twin: "
                f"{q.get('geomean_speedup_vs_pandas')}x. " + " ".join(q.get("notes", []))]
    c = q.get("compaction")
    if c:
        out += ["", f"Then `petrostream compact` on the same lake (compaction.compact, quiet_s=0): "
                    f"{_n(c['objects_before'])} -> {_n(c['objects_after'])} scored objects in "
                    f"{_n(c['compact_s'], 's', 1)}, rows sorted by well in 128k-row groups; the queries again:", ""]
        rows = [[name, _n(e["before_s"], "", 3), _n(e["duckdb_s"], "", 3),
                 f"{e['before_s'] / e['duckdb_s']:.2f}x" if e["duckdb_s"] else "",
                 "yes" if e["same_result"] else "NO"] for name, e in c["queries"].items()]
        out.append(_table(["dashboard query", "DuckDB s before", "DuckDB s after", "speed-up", "same result"], rows))
    return out


def _model(m: dict | None) -> list[str]:
    if not m:
        return []
    out = _section("Model", m)
    c = m.get("cold_load")
    if not c:
        return out
    f = m.get("model") or {}
    out += [f"Served model: {describe_model(f)} ({f.get('source')}); export "
            f"{_n((f.get('export_bytes') or 0) / 1024, 'KiB')} in {f.get('export_files')} files.", ""]
    out.append(_table(["cold load (median of runs)", "seconds"],
                      [[k, c.get(k)] for k in ("process_wall_s", "import_s", "pull_s", "load_s", "first_predict_s")]))
    mu, m1 = m.get("service_memory_under_load") or {}, m.get("service_memory_at_1x") or {}
    out += ["", _table(["service memory", "peak RSS MiB", "mean RSS MiB", "idle before load MiB"],
                       [["max-speed run", mu.get("peak_rss_mib"), mu.get("mean_rss_mib"),
                         mu.get("idle_before_load_rss_mib")],
                        ["1x run", m1.get("peak_rss_mib"), m1.get("mean_rss_mib"),
                         m1.get("idle_before_load_rss_mib")]]),
            "", f"1 GB Fargate task: {m.get('fargate_task_mib'):.0f} MiB; headroom {m.get('headroom_mib')} MiB."]
    return out


def _ceiling(c: dict | None) -> list[str]:
    if not c:
        return []
    out = ["", "## Ceiling", "", f"Kinesis: {c['shard_limits']}; a well sends {c['well_rate']}.", ""]
    rows = []
    for key in ("live_default_linger", "aggregated"):
        a = c.get(key)
        if a:
            rows.append([a["when"], a["rows_per_record"], a["bytes_per_row"], _n(a["wells_by_records_limit"]),
                         _n(a["wells_by_bytes_limit"]), _n(a["wells_per_shard"])])
    if rows:
        out.append(_table(["producer setting", "rows/record", "B/row", "wells (records limit)", "wells (bytes limit)",
                           "1 Hz wells per shard"], rows))
    if c.get("wells_per_task_service_path"):
        out += ["", f"One 0.5 vCPU inference task: {_n(c['wells_per_task_service_path'])} wells at 1 Hz (per-core "
                    "service-path rate x 0.5)"
                + (f"; {_n(c['wells_per_task_whole_service'])} from the whole service process's rows per CPU-second "
                   "in the max-speed run" if c.get("wells_per_task_whole_service") else "") + "."]
    return out
