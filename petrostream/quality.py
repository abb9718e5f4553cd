"""Data quality: Great Expectations suites (versioned JSON in ``expectations/``) and a 3W directory profile.

Public API::

    validate_frame(df, suite="raw") -> SuiteResult(success, failed, warnings, stats)
    validate_dir(root, suite="raw", reports_dir=...) -> list[FileResult]
    profile_dir(root) -> DirProfile            # what ``petrostream data info`` shows

Suites (``raw`` -> ``expectations/raw_3w_instance.json``, ``scored`` -> ``expectations/scored_output.json``)
are plain GX 1.x expectation-suite JSON plus a ``meta.petrostream`` block this module understands:

* column expectations whose column is absent from a frame are *not applicable* and skipped (3W v1 files
  carry 7 of the 27 variables); presence is required explicitly with ``expect_column_to_exist``;
* ``expect_table_columns_to_match_set`` with ``meta.petrostream.mode = "subset"`` means "no column outside
  the set" (GX itself only offers "exactly" or "at least");
* ``derived_columns``: the raw suite validates ``timestamp`` (the parquet index) and ``timestamp_step_s``
  (seconds since the previous row), which this module adds before validating;
* ``parameters``: defaults of ``$PARAMETER`` values (``instance_labels``: labels allowed for the instance,
  ``{0, k, 100+k}`` from its class folder when validating a directory);
* ``severity: warning`` expectations never fail a frame; they are reported as warnings.

Great Expectations is imported lazily, once per process (3-5 s); one ephemeral context, one suite and one
validation definition per (suite, column set) are reused for every frame. Not re-entrant: calls are
serialised by a lock.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from petrostream import schema
from petrostream.dataset import DataError, InstanceInfo, frozen_variables, parse_instance_path

log = logging.getLogger(__name__)

SUITES: dict[str, str] = {"raw": "raw_3w_instance.json", "scored": "scored_output.json"}
RESULT_FORMAT = "BASIC"  # SUMMARY is ~10x slower on pandas (partial unexpected index lists)
DOCS_SITE = "petrostream"
MAX_LISTED_FAILURES = 4


def expectations_dir() -> Path:
    """``$PETROSTREAM_EXPECTATIONS_DIR`` or ``expectations/`` at the repository root."""
    env = os.environ.get("PETROSTREAM_EXPECTATIONS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "expectations"


def suite_path(suite: str) -> Path:
    if suite in SUITES:
        return expectations_dir() / SUITES[suite]
    p = Path(suite)
    if p.suffix == ".json" and p.exists():
        return p
    raise DataError(f"unknown suite {suite!r} (choose from {', '.join(SUITES)} or give a suite .json file)")


def load_suite(suite: str) -> dict:
    """The suite document (GX JSON) for a short name (raw, scored) or a .json path."""
    path = suite_path(suite)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: suite file not found (set PETROSTREAM_EXPECTATIONS_DIR)") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or "name" not in doc or not isinstance(doc.get("expectations"), list):
        raise DataError(f"{path}: not an expectation suite (needs 'name' and 'expectations')")
    return doc


# ---------------------------------------------------------------------------------------------------------
# results


@dataclass
class SuiteResult:
    success: bool  # no critical expectation failed
    failed: list[str]  # one concise line per failed critical expectation, starting with its type(column)
    warnings: list[str] = field(default_factory=list)  # failed warning-severity expectations
    stats: dict[str, Any] = field(default_factory=dict)  # suite, rows, evaluated, skipped, seconds


@dataclass
class FileResult:
    path: Path
    name: str  # path relative to the validated directory
    status: str  # "pass" | "fail" | "error" (unreadable: not validated)
    failed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rows: int = 0
    seconds: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "pass"

    def line(self) -> str:
        """One line for humans: status, file, and what is wrong."""
        if self.status == "error":
            return f"ERROR {self.name}: {self.error}"
        warn = f" ({len(self.warnings)} warning{'s' if len(self.warnings) != 1 else ''})" if self.warnings else ""
        if self.status == "pass":
            return f"ok    {self.name}  {self.rows:,} rows{warn}"
        shown = "; ".join(self.failed[:MAX_LISTED_FAILURES])
        more = f" (+{len(self.failed) - MAX_LISTED_FAILURES} more)" if len(self.failed) > MAX_LISTED_FAILURES else ""
        return f"FAIL  {self.name}: {shown}{more}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


# ---------------------------------------------------------------------------------------------------------
# the GX engine (lazy, one per process)


class _Engine:
    def __init__(self) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        t0 = time.monotonic()
        logging.getLogger("great_expectations").setLevel(logging.ERROR)  # before the import: it logs while loading
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig
        logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)  # it sets INFO
        self.gx = gx
        self.ctx = gx.get_context(mode="ephemeral")
        self.ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        self.ctx.variables.data_docs_sites = {}
        self.datasource = self.ctx.data_sources.add_pandas("petrostream")
        self.batches: dict[str, Any] = {}
        self.by_columns: dict[tuple[str, frozenset[str]], tuple[str, int]] = {}  # -> (variant name, skipped)
        self.definitions: dict[str, Any] = {}  # variant name -> validation definition
        self.kept: set = set()
        log.debug("great expectations ready", extra={"seconds": round(time.monotonic() - t0, 2)})

    def _batch(self, asset: str):
        if asset not in self.batches:
            self.batches[asset] = self.datasource.add_dataframe_asset(asset).add_batch_definition_whole_dataframe(
                "whole_frame"
            )
        return self.batches[asset]

    def definition(self, doc: dict, columns: frozenset[str]):
        """(validation definition, skipped count) for a suite restricted to the columns a frame has."""
        key = (doc["name"], columns)
        if key in self.by_columns:
            name, skipped = self.by_columns[key]
            return self.definitions[name], skipped
        from great_expectations.core import ExpectationSuite
        from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

        configs, skipped = [], 0
        for exp in doc["expectations"]:
            kwargs = dict(exp.get("kwargs", {}))
            column = kwargs.get("column")
            if column is not None and column not in columns and exp["type"] != "expect_column_to_exist":
                skipped += 1
                continue
            if (exp.get("meta") or {}).get("petrostream", {}).get("mode") == "subset":
                kwargs["column_set"] = [c for c in kwargs.get("column_set", []) if c in columns]
            configs.append(
                ExpectationConfiguration(
                    type=exp["type"],
                    kwargs=kwargs,
                    meta=exp.get("meta") or {},
                    # GX's severity setter accepts str (converts to FailureSeverity); __init__'s annotation is narrower
                    severity=exp.get("severity") or "critical",  # type: ignore[arg-type]
                )
            )
        applicable = sorted(c for c in columns if any(e.kwargs.get("column") == c for e in configs))
        digest = hashlib.sha1("\n".join(applicable).encode()).hexdigest()[:6]
        name = f"{doc['name']}__{len(applicable)}cols_{digest}"  # GX splits names on dots
        self.by_columns[key] = (name, skipped)
        if name in self.definitions:  # same applicable columns (foreign ones differ): same suite
            return self.definitions[name], skipped
        suite = self.ctx.suites.add(ExpectationSuite(name=name, expectations=configs, meta=doc.get("meta") or {}))
        frame_kind = _meta(doc).get("frame", "table")
        vd = self.ctx.validation_definitions.add(
            self.gx.ValidationDefinition(name=name, data=self._batch(frame_kind), suite=suite)
        )
        self.definitions[name] = vd
        return vd, skipped

    def run(self, vd, df: pd.DataFrame, params: dict, run_name: str, keep: bool):
        from great_expectations.core.run_identifier import RunIdentifier

        store = self.ctx.validation_results_store
        run_id = RunIdentifier(run_name=run_name, run_time=_dt.datetime.now(_dt.UTC))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = vd.run(
                batch_parameters={"dataframe": df},
                expectation_parameters=params,
                result_format=RESULT_FORMAT,
                run_id=run_id,
            )
        for k in store.list_keys():  # results accumulate in memory: keep only those meant for Data Docs
            if k not in self.kept:
                if keep:
                    self.kept.add(k)
                else:
                    store.remove_key(k)
        return result

    def build_docs(self, directory: Path) -> Path:
        directory = directory.resolve()
        if directory.exists():
            shutil.rmtree(directory)  # one run's docs, never stale pages of earlier runs
        self.ctx.variables.data_docs_sites = {
            DOCS_SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(directory)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.ctx.build_data_docs(site_names=[DOCS_SITE])
        return directory / "index.html"

    def forget_results(self) -> None:
        store = self.ctx.validation_results_store
        for k in store.list_keys():
            store.remove_key(k)
        self.kept.clear()


_engine: _Engine | None = None
_lock = threading.RLock()


def _get_engine() -> _Engine:
    global _engine
    with _lock:
        if _engine is None:
            _engine = _Engine()
        return _engine


# ---------------------------------------------------------------------------------------------------------
# frames


def _meta(doc: dict) -> dict:
    return (doc.get("meta") or {}).get("petrostream", {})


def prepare_frame(df: pd.DataFrame, doc: dict) -> pd.DataFrame:
    """The frame the suite sees: string column names, plus the derived columns the suite declares."""
    derived = _meta(doc).get("derived_columns", {})
    out = df
    if "timestamp" in derived and df.index.name == schema.TIMESTAMP:
        out = df.reset_index()
    out = out.rename(columns=str) if not all(isinstance(c, str) for c in out.columns) else out.copy(deep=False)
    if "timestamp_step_s" in derived and schema.TIMESTAMP in out.columns:
        ts = out[schema.TIMESTAMP]
        if pd.api.types.is_datetime64_any_dtype(ts):
            out["timestamp_step_s"] = ts.diff().dt.total_seconds().to_numpy()
    return out


def validate_frame(
    df: pd.DataFrame,
    suite: str = "raw",
    parameters: dict | None = None,
    run_name: str = "frame",
    keep_for_docs: bool = False,
) -> SuiteResult:
    """Validate one frame against a suite. ``raw`` expects a 3W instance (``timestamp`` index, as written in
    the files); ``scored`` a frame of ``scored_readings`` rows. Never raises for bad data: everything wrong is
    in ``failed`` (critical) or ``warnings``."""
    doc = load_suite(suite)
    t0 = time.monotonic()
    frame = prepare_frame(df, doc)
    params = dict(_meta(doc).get("parameters", {}))
    params.update(parameters or {})
    with _lock:
        engine = _get_engine()
        vd, skipped = engine.definition(doc, frozenset(frame.columns))
        result = engine.run(vd, frame, params, run_name, keep_for_docs)
    failed: list[str] = []
    warned: list[str] = []
    for r in result.results:
        if r.success:
            continue
        text = describe_failure(r)
        sev = getattr(r.expectation_config, "severity", "critical")
        (warned if str(getattr(sev, "value", sev)) in ("warning", "info") else failed).append(text)
    stats = {
        "suite": doc["name"],
        "rows": len(frame),
        "evaluated": result.statistics.get("evaluated_expectations", 0),
        "skipped": skipped,
        "seconds": round(time.monotonic() - t0, 4),
    }
    return SuiteResult(success=not failed, failed=failed, warnings=warned, stats=stats)


def describe_failure(r) -> str:
    """``type(column): what was observed`` in one short line."""
    cfg = r.expectation_config
    kw = cfg.kwargs
    head = cfg.type + (f"({kw['column']})" if kw.get("column") else "")
    info = r.exception_info or {}
    if info.get("raised_exception"):
        msg = str(info.get("exception_message") or "error").strip().splitlines()
        return f"{head}: error: {msg[0][:160] if msg else 'error'}"
    res = r.result or {}
    t = cfg.type
    if t == "expect_table_columns_to_match_set":
        mm = (res.get("details") or {}).get("mismatched") or {}
        parts = []
        if mm.get("unexpected"):
            parts.append("foreign columns " + ", ".join(map(str, mm["unexpected"][:8])))
        if mm.get("missing"):
            parts.append("missing columns " + ", ".join(map(str, mm["missing"][:8])))
        return f"{head}: {'; '.join(parts) or 'column set differs'}"
    if t == "expect_column_to_exist":
        return f"{head}: column missing"
    if "observed_value" in res and "unexpected_count" not in res:
        expected = kw.get("type_") or _bounds(kw)
        return f"{head}: observed {_short(res['observed_value'])}" + (f", expected {expected}" if expected else "")
    n_bad, n_all = res.get("unexpected_count"), res.get("element_count")
    if n_bad is None:
        return head
    pct = res.get("unexpected_percent")
    pct_s = f" ({pct:.3g}%)" if isinstance(pct, int | float) and pct == pct else ""
    what = {
        "expect_column_values_to_not_be_null": "null",
        "expect_column_values_to_be_in_set": f"not in {_short(kw.get('value_set'))}",
        "expect_column_values_to_not_be_in_set": f"in {_short(kw.get('value_set'))}",
        "expect_column_values_to_be_between": f"outside {_bounds(kw)}",
    }.get(t, "unexpected")
    mostly = f", allowed {1 - kw['mostly']:.0%}" if kw.get("mostly") not in (None, 1, 1.0) else ""
    sample = [] if t == "expect_column_values_to_not_be_null" else res.get("partial_unexpected_list") or []
    eg = f", e.g. {', '.join(_short(v) for v in sample[:3])}" if sample else ""
    return f"{head}: {n_bad:,} of {n_all:,} values {what}{pct_s}{mostly}{eg}"


def _bounds(kw: dict) -> str:
    lo, hi = kw.get("min_value"), kw.get("max_value")
    if lo is None and hi is None:
        return ""
    left = "(" if kw.get("strict_min") else "["
    right = ")" if kw.get("strict_max") else "]"
    return f"{left}{_short(lo) if lo is not None else '-inf'}, {_short(hi) if hi is not None else 'inf'}{right}"


def _short(v: Any) -> str:
    if isinstance(v, dict) and "$PARAMETER" in v:
        return f"${v['$PARAMETER']}"
    if isinstance(v, list | tuple | set):
        items = list(v)
        text = ", ".join(_short(x) for x in items[:12])
        return "{" + text + (", ..." if len(items) > 12 else "") + "}"
    if isinstance(v, float | np.floating):
        f = float(v)
        if f != f or abs(f) == float("inf"):
            return str(f)
        if abs(f) >= 1e300:
            return "max" if f > 0 else "-max"
        return f"{f:.6g}"
    if isinstance(v, np.integer):
        return str(int(v))
    return str(v)[:60]


# ---------------------------------------------------------------------------------------------------------
# directories


@dataclass(frozen=True)
class Entry:
    path: Path
    name: str  # relative to the root
    info: InstanceInfo | None
    problem: str | None = None  # why the path itself is not a 3W instance


def scan_dir(root: str | Path, suite: str = "raw") -> list[Entry]:
    """Files to validate, tolerant: a badly named file becomes an entry with a problem, not an exception.

    ``raw``: ``<class>/*.parquet`` in digit folders (the 3W layout). Other suites: every ``*.parquet`` below
    ``root``. Raises DataError (one line) when ``root`` is not a directory or holds nothing to validate.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a directory")
    out: list[Entry] = []
    if suite == "raw":
        paths = sorted(
            (p for p in root.glob("*/*.parquet") if p.parent.name.isdigit()),
            key=lambda q: (int(q.parent.name), q.name),
        )
        for p in paths:
            name = p.relative_to(root).as_posix()
            try:
                out.append(Entry(p, name, parse_instance_path(p)))
            except DataError as exc:
                out.append(Entry(p, name, None, str(exc).removeprefix(f"{p}: ")))
        if not out:
            raise DataError(f"{root}: no 3W instances found (expected <class>/<instance>.parquet)")
    else:
        for p in sorted(root.rglob("*.parquet")):
            out.append(Entry(p, p.relative_to(root).as_posix(), None))
        if not out:
            raise DataError(f"{root}: no .parquet files found")
    return out


def read_raw(path: Path) -> pd.DataFrame:
    """Read one file as written (no column selection or coercion, unlike ``dataset.read_instance``, so the
    suite sees foreign columns and wrong types). Raises DataError with a message *without* the path."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(f"cannot read ({exc.strerror or exc})") from None
    if size == 0:
        raise DataError("empty file (0 bytes)")
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(max(size - 4, 0))
        tail = fh.read(4)
    if head != b"PAR1":
        kind = "text (CSV?)" if _looks_like_text(path) else "unknown bytes"
        raise DataError(f"not a parquet file: no PAR1 header, content looks like {kind}")
    if tail != b"PAR1":
        raise DataError(f"truncated parquet file: no PAR1 footer ({size:,} bytes)")
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError(f"not a readable parquet file ({_first_line(exc)})") from None
    if df.index.name != schema.TIMESTAMP and schema.TIMESTAMP in df.columns:
        df = df.set_index(schema.TIMESTAMP)
    if len(df) == 0:
        raise DataError("no rows")
    return df


def _looks_like_text(path: Path) -> bool:
    with open(path, "rb") as fh:
        chunk = fh.read(512)
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__


def instance_labels(info: InstanceInfo) -> list[int]:
    """Labels an instance of this class folder may carry: {0, k, 100+k} (transient only if the event has one)."""
    k = info.event_class
    labels = {schema.NORMAL, k}
    if schema.EVENTS[k][2]:
        labels.add(schema.TRANSIENT_OFFSET + k)
    return sorted(labels)


def _rows_hint(path: Path) -> int:
    try:
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    except Exception:
        return 0


def validate_dir(
    root: str | Path,
    suite: str = "raw",
    reports_dir: str | Path | None = None,
    progress: bool = True,
    on_result: Callable[[FileResult], None] | None = None,
) -> list[FileResult]:
    """Validate every file under ``root`` (one at a time: bounded memory). Unreadable or misnamed files become
    ``error`` results (one line each); the others are still validated. With ``reports_dir``: GX Data Docs in
    ``<reports_dir>/data_docs`` and a summary in ``<reports_dir>/validation/latest.json``."""
    from petrostream.progress import Progress

    root = Path(root)
    doc = load_suite(suite)  # fail early on a bad suite
    layout = "raw" if _meta(doc).get("frame") == "3w_instance" else "files"
    entries = scan_dir(root, layout)
    with _lock:
        _get_engine()  # the slow import, before the clock of the progress line starts
    started = _dt.datetime.now(_dt.UTC)
    t0 = time.monotonic()
    total_rows = sum(_rows_hint(e.path) for e in entries)
    bar = Progress(f"validate {doc['name']}", total=total_rows or None, unit="rows", enabled=progress)
    keep = reports_dir is not None
    if keep:
        with _lock:
            _get_engine().forget_results()
    results: list[FileResult] = []
    for e in entries:
        res = _validate_entry(e, suite, doc, keep)
        results.append(res)
        bar.update(res.rows or _rows_hint(e.path))
        if on_result is not None:
            on_result(res)
    summary_line = bar.close()
    log.info("validated", extra={"files": len(results), "seconds": round(time.monotonic() - t0, 2)})
    if reports_dir is not None:
        write_reports(results, Path(reports_dir), doc["name"], root, started, time.monotonic() - t0, summary_line)
    return results


def _validate_entry(e: Entry, suite: str, doc: dict, keep: bool) -> FileResult:
    t0 = time.monotonic()
    if e.problem is not None:
        return FileResult(e.path, e.name, "error", error=e.problem)
    try:
        df = read_raw(e.path)
    except DataError as exc:
        return FileResult(e.path, e.name, "error", error=str(exc), seconds=round(time.monotonic() - t0, 4))
    params = {"instance_labels": instance_labels(e.info)} if e.info is not None else {}
    try:
        res = validate_frame(df, suite, parameters=params, run_name=e.name.replace("/", "__"), keep_for_docs=keep)
    except DataError:
        raise
    except Exception as exc:  # GX itself failing on a frame: report it, carry on with the others
        return FileResult(e.path, e.name, "error", rows=len(df), error=f"validation failed ({_first_line(exc)})")
    return FileResult(
        e.path,
        e.name,
        "pass" if res.success else "fail",
        failed=res.failed,
        warnings=res.warnings,
        rows=len(df),
        seconds=round(time.monotonic() - t0, 4),
    )


def report_paths(reports_dir: str | Path, suite_name: str = "raw_3w_instance") -> dict[str, Path]:
    """``summary``: the latest run whatever its suite; ``suite_summary``: the latest run of that suite."""
    reports_dir = Path(reports_dir)
    return {
        "summary": reports_dir / "validation" / "latest.json",
        "suite_summary": reports_dir / "validation" / f"latest-{suite_name}.json",
        "data_docs": reports_dir / "data_docs" / "index.html",
    }


def write_reports(
    results: list[FileResult],
    reports_dir: Path,
    suite_name: str,
    root: Path,
    started: _dt.datetime,
    seconds: float,
    progress_line: str = "",
) -> dict[str, Path]:
    """Data Docs (HTML) and the machine-readable summary the dashboard reads."""
    paths = report_paths(reports_dir, suite_name)
    with _lock:
        engine = _get_engine()
        try:
            docs = engine.build_docs(paths["data_docs"].parent)
        finally:
            engine.forget_results()
    counts = {s: sum(1 for r in results if r.status == s) for s in ("pass", "fail", "error")}
    summary = {
        "suite": suite_name,
        "directory": str(root.resolve()),
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 2),
        "success": counts["fail"] == 0 and counts["error"] == 0,
        "counts": {"files": len(results), **counts, "warned": sum(1 for r in results if r.warnings)},
        "rows": sum(r.rows for r in results),
        "progress": progress_line,
        "data_docs": str(docs.resolve()),
        "files": [
            {
                "file": r.name,
                "status": r.status,
                "rows": r.rows,
                "seconds": r.seconds,
                "failed": r.failed,
                "warnings": r.warnings,
                "error": r.error,
            }
            for r in results
        ],
    }
    text = json.dumps(summary, indent=1, default=str) + "\n"
    for out in (paths["suite_summary"], paths["summary"]):
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".json.tmp")
        tmp.write_text(text)
        tmp.replace(out)  # atomic: the dashboard never reads half a file
    paths["data_docs"] = docs
    return paths


# ---------------------------------------------------------------------------------------------------------
# profile (``petrostream data info``): no GX, one instance in memory at a time


@dataclass
class InstanceProfile:
    name: str
    event_class: int
    source: str
    rows: int
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    present: list[str]  # variables with at least one value
    all_nan: list[str]  # columns present in the file but empty
    frozen: list[str]
    nan_cells: dict[str, int]
    labels: dict[str, int]
    pdg_readings: int  # non-NaN P-PDG values
    pdg_zero: int  # of which exactly 0 Pa (dead gauge)


@dataclass
class DirProfile:
    root: Path
    instances: list[InstanceProfile]
    problems: list[tuple[str, str]]  # (file, one-line problem)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(i.rows for i in self.instances)


def profile_instance(df: pd.DataFrame, info: InstanceInfo, name: str) -> InstanceProfile:
    variables = [c for c in df.columns if c in schema.VARIABLE_NAMES]
    counts = {c: int(df[c].isna().sum()) for c in variables}
    all_nan = [c for c in variables if counts[c] == len(df)]
    labels: dict[str, int] = {}
    if "class" in df.columns:
        vc = df["class"].value_counts(dropna=False)
        labels = {("NA" if pd.isna(k) else str(int(k))): int(v) for k, v in vc.items()}
    pdg = df["P-PDG"].dropna() if "P-PDG" in df.columns else pd.Series(dtype=float)
    return InstanceProfile(
        name=name,
        event_class=info.event_class,
        source=info.source,
        rows=len(df),
        start=df.index.min() if len(df) else None,
        end=df.index.max() if len(df) else None,
        present=[c for c in variables if c not in all_nan],
        all_nan=all_nan,
        frozen=frozen_variables(df[variables]),
        nan_cells=counts,
        labels=labels,
        pdg_readings=len(pdg),
        pdg_zero=int((pdg == 0).sum()),
    )


def profile_dir(root: str | Path, progress: bool | None = None, entries: Iterable[Entry] | None = None) -> DirProfile:
    """Per-instance facts for a 3W-layout directory, reading one instance at a time."""
    from petrostream.dataset import read_instance
    from petrostream.progress import Progress

    t0 = time.monotonic()
    entries = list(entries) if entries is not None else scan_dir(root, "raw")
    bar = Progress("reading instances", total=len(entries), unit="files",
                   enabled=progress if progress is not None else len(entries) > 50)
    out: list[InstanceProfile] = []
    problems: list[tuple[str, str]] = []
    for e in entries:
        if e.problem is not None:
            problems.append((e.name, e.problem))
        else:
            assert e.info is not None  # raw entries without a problem always parsed (scan_dir)
            try:
                df = read_instance(e.info)
                out.append(profile_instance(df, e.info, e.name))
                del df
            except DataError as exc:
                problems.append((e.name, str(exc).removeprefix(f"{e.path}: ")))
        bar.update(1)
    if bar.enabled:
        bar.close()
    return DirProfile(Path(root), out, problems, time.monotonic() - t0)
