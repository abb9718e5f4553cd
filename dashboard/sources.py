"""Non-SQL sources of the dashboard: the inference service's /metrics, the MLflow registry, the champion
manifest and promotion history in the models bucket, data-quality reports and quarantined records.

Plain functions (no Streamlit): the pages cache them with ``st.cache_data`` TTLs. Every reader returns
something explainable when its source is absent (None / empty frame + a note) instead of raising, so a
page can show "no champion yet" rather than a stack trace. The dashboard never imports ``training``:
files written by training are read by their key.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from petrostream.lake import QUARANTINE_PREFIX, LakeStore
from petrostream.settings import Settings, get_settings

log = logging.getLogger(__name__)



# ------------------------------------------------------------------ where is the lake, and is it there?


def lake_key(settings: Settings | None = None) -> str:
    """Identity of the lake this process reads (part of every cache key, so switching lakes never
    serves another lake's cached numbers)."""
    s = settings or get_settings()
    where = f"dir:{s.lake_dir}" if s.lake_dir is not None else f"s3:{os.environ.get('AWS_ENDPOINT_URL', 'aws')}"
    return f"{where}|{s.curated_bucket}|{s.models_bucket}|{s.query_backend}|{s.reports_dir}"


@dataclass
class LakeState:
    ok: bool  # scored rows exist
    where: str
    problem: str = ""  # why not ok, in words a user can act on


def lake_state(settings: Settings | None = None) -> LakeState:
    """Whether the lake has scored rows, and if not, why (no folder, emulator down, empty bucket)."""
    s = settings or get_settings()
    store = LakeStore(s)
    if s.lake_dir is not None:
        where = str(Path(s.lake_dir))
        root = Path(s.lake_dir) / s.curated_bucket / "scored"
        if not Path(s.lake_dir).exists():
            return LakeState(False, where, f"The lake folder {where} does not exist yet: no data has been written.")
        if not any(root.rglob("*.parquet")):
            return LakeState(False, where, f"No scored readings in {where} yet. Start the pipeline (`make demo`, or "
                                           "`petrostream serve` + `petrostream produce`) and they will appear here.")
        return LakeState(True, where)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    where = f"s3://{s.curated_bucket} ({'emulator ' + endpoint if endpoint else 'AWS'})"
    if endpoint and not _port_open(endpoint):  # fail fast: boto3 would retry a refused connection for a while
        return LakeState(False, where, f"Cannot reach the local AWS emulator at {endpoint}: it is not running. "
                                       "Start it with `petrostream local up` (or `make demo`).")
    try:
        resp = store.s3.list_objects_v2(Bucket=s.curated_bucket, Prefix="scored/", MaxKeys=1)
    except Exception as exc:  # connection refused, no credentials, no bucket...
        name = type(exc).__name__
        if endpoint and ("Connect" in name or "Endpoint" in name):
            why = (f"Cannot reach the local AWS emulator at {endpoint}: it is not running. "
                   "Start it with `petrostream local up` (or `make demo`).")
        elif "NoSuchBucket" in str(exc):
            why = f"Bucket {s.curated_bucket} does not exist: bootstrap the resources (`petrostream local up`)."
        elif not endpoint:
            why = (f"Cannot read s3://{s.curated_bucket} ({name}). No AWS_ENDPOINT_URL is set, so this talks to "
                   "real AWS: check credentials, or start the local emulator with `petrostream local up`.")
        else:
            why = f"Cannot read s3://{s.curated_bucket}: {name}: {str(exc).splitlines()[0][:200]}"
        return LakeState(False, where, why)
    if not resp.get("KeyCount"):
        return LakeState(False, where, f"No scored readings in {where} yet. Is the inference service running and "
                                       "the producer replaying? (`make demo` does both.)")
    return LakeState(True, where)


def _port_open(url: str, timeout: float = 1.0) -> bool:
    import socket
    from urllib.parse import urlparse

    u = urlparse(url)
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


# ------------------------------------------------------------------ inference service /metrics


def inference_url(settings: Settings | None = None) -> str:
    """Base URL of the inference service's HTTP API: settings.inference_url ($PETROSTREAM_INFERENCE_URL),
    else the local service on settings.api_port."""
    s = settings or get_settings()
    return s.inference_url or f"http://127.0.0.1:{s.api_port}"


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> pd.DataFrame:
    """Samples of a Prometheus text exposition as rows (name, labels dict, value)."""
    rows = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        try:
            value = float(m.group(3).replace("+Inf", "inf").replace("-Inf", "-inf"))
        except ValueError:
            continue
        labels = dict(_LABEL.findall(m.group(2) or ""))
        rows.append({"name": m.group(1), "labels": labels, "value": value})
    return pd.DataFrame(rows, columns=["name", "labels", "value"])


@dataclass
class ServiceMetrics:
    url: str
    reachable: bool
    lag_ms: float | None = None  # max MillisBehindLatest over shards
    shards: int = 0
    rows_scored: float | None = None
    model_version: str | None = None
    error: str = ""


def service_metrics(url: str | None = None, timeout: float = 1.5) -> ServiceMetrics:
    """Consumer lag and counters from the inference service's /metrics (not reachable -> reachable=False)."""
    import urllib.request

    base = (url or inference_url()).rstrip("/")
    try:
        with urllib.request.urlopen(f"{base}/metrics", timeout=timeout) as r:
            text = r.read().decode("utf-8", "replace")
    except Exception as exc:
        return ServiceMetrics(base, False, error=f"{type(exc).__name__}: {str(exc)[:120]}")
    df = parse_prometheus(text)
    out = ServiceMetrics(base, True)
    lag = df[df["name"] == "petrostream_millis_behind_latest"]
    if not lag.empty:
        out.lag_ms, out.shards = float(lag["value"].max()), len(lag)
    scored = df[df["name"] == "petrostream_rows_scored_total"]
    if not scored.empty:
        out.rows_scored = float(scored["value"].sum())
    info = df[(df["name"] == "petrostream_model_info") & (df["value"] > 0)]
    if not info.empty:
        out.model_version = str(info.iloc[-1]["labels"].get("version", "")) or None
    return out


# ------------------------------------------------------------------ MLflow registry


@dataclass
class Registry:
    available: bool
    note: str = ""
    versions: pd.DataFrame = field(default_factory=pd.DataFrame)  # version, aliases, run_id, created, status...
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)  # version + one column per run metric
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> version


def _sqlite_path(uri: str) -> Path | None:
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):])
    return None


def mlflow_registry(settings: Settings | None = None) -> Registry:
    """Registered versions of the model, their aliases and the metrics of the runs that produced them."""
    s = settings or get_settings()
    uri = s.mlflow_tracking_uri
    path = _sqlite_path(uri)
    if path is not None and not path.exists():
        return Registry(False, f"No MLflow store at {path} yet: train a model first (`make train`).")
    try:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        try:
            model = client.get_registered_model(s.model_name)
        except Exception:
            return Registry(False, f"No registered model '{s.model_name}' in {uri} yet: train and register one "
                                   "(`make train`).")
        aliases = {a: str(v) for a, v in (model.aliases or {}).items()}
        by_version: dict[str, list[str]] = {}
        for a, v in aliases.items():
            by_version.setdefault(v, []).append(a)
        rows, metric_rows = [], []
        for mv in client.search_model_versions(f"name='{s.model_name}'"):
            v = str(mv.version)
            rows.append({
                "version": int(v),
                "aliases": ", ".join(sorted(by_version.get(v, []))),
                "status": mv.status,
                "created": pd.to_datetime(mv.creation_timestamp, unit="ms"),
                "run_id": mv.run_id,
                "source": mv.source,
                "description": mv.description or "",
            })
            metrics: dict[str, Any] = {"version": int(v)}
            if mv.run_id:
                try:
                    run = client.get_run(mv.run_id)
                    metrics.update(run.data.metrics)
                    metrics["run_name"] = run.info.run_name
                except Exception as exc:  # run deleted or unreadable: keep the version row
                    log.warning("mlflow run unreadable", extra={"run_id": mv.run_id, "error": str(exc)[:200]})
            metric_rows.append(metrics)
        versions = pd.DataFrame(rows).sort_values("version", ascending=False, ignore_index=True) if rows else \
            pd.DataFrame(columns=["version", "aliases", "status", "created", "run_id", "source", "description"])
        metrics_df = pd.DataFrame(metric_rows).sort_values("version", ignore_index=True) if metric_rows else \
            pd.DataFrame(columns=["version"])
        return Registry(True, "", versions, metrics_df, aliases)
    except Exception as exc:
        return Registry(False, f"MLflow at {uri} is not readable: {type(exc).__name__}: {str(exc)[:200]}")


# ------------------------------------------------------------------ models bucket: champion + promotion history


def _s3_unreachable(settings: Settings) -> bool:
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    return settings.lake_dir is None and endpoint is not None and not _port_open(endpoint)


def _read_key(bucket: str, key: str, settings: Settings | None = None) -> bytes | None:
    """An object's bytes, or None when it (or the emulator) is not there."""
    s = settings or get_settings()
    if _s3_unreachable(s):
        return None
    store = LakeStore(s)
    try:
        return store.get(bucket, key)
    except Exception:
        return None


def read_json_lines(data: bytes | None) -> list[dict]:
    out = []
    for line in (data or b"").decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict):
            out.append(doc)
    return out


# ------------------------------------------------------------------ quarantine


def quarantine_records(settings: Settings | None = None, max_objects: int = 500) -> pd.DataFrame:
    """Quarantined records (JSON lines under ``quarantine/dt=.../`` in the curated bucket), newest objects
    first, at most ``max_objects`` objects. Columns: dt, key, reason + whatever the record carried."""
    s = settings or get_settings()
    store = LakeStore(s)
    if _s3_unreachable(s):
        return pd.DataFrame(columns=["dt", "key", "reason"])
    try:
        keys = [k for k in store.list(s.curated_bucket, f"{QUARANTINE_PREFIX}/") if k.endswith(".jsonl")]
    except Exception as exc:
        log.warning("quarantine not listable", extra={"error": str(exc)[:200]})
        return pd.DataFrame(columns=["dt", "key", "reason"])
    rows = []
    for key in sorted(keys, reverse=True)[:max_objects]:
        m = re.search(r"/dt=([^/]+)/", key)
        try:
            data = store.get(s.curated_bucket, key)
        except Exception:  # removed since listed
            continue
        for doc in read_json_lines(data):
            rows.append({"dt": m.group(1) if m else "", "key": key, **doc})
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=["dt", "key", "reason"])
    if "reason" not in df:
        df["reason"] = "(no reason given)"
    df["reason"] = df["reason"].fillna("(no reason given)").astype(str)
    return df


def quarantine_summary(records: pd.DataFrame) -> pd.DataFrame:
    """Records per reason and day (columns reason, dt, records), biggest reasons first."""
    if records.empty:
        return pd.DataFrame(columns=["reason", "dt", "records"])
    out = records.groupby(["reason", "dt"]).size().rename("records").reset_index()
    order = out.groupby("reason")["records"].sum().sort_values(ascending=False).index
    out["reason"] = pd.Categorical(out["reason"], categories=list(order), ordered=True)
    return out.sort_values(["reason", "dt"]).assign(reason=lambda d: d["reason"].astype(str)).reset_index(drop=True)


# ------------------------------------------------------------------ run details: confusion matrix, per class

# How training (training/tracking.py) logs its evaluation on the registered run: flat metrics from
# petrostream.metrics.EvaluationReport with a prefix (``holdout_`` preferred, then ``best_val_``/``val_``),
# per-class metrics ``<prefix>class_<k>_<metric>``, and ``report/per_class_holdout.csv``.
METRIC_PREFIXES = ("holdout_", "test_", "best_val_", "val_", "")
PER_CLASS_ARTIFACTS = ("report/per_class_holdout.csv", "per_class_holdout.csv", "report/per_class.csv")
CONFUSION_ARTIFACTS = ("report/confusion_matrix.json", "confusion_matrix.json")
_PER_CLASS_METRIC = re.compile(r"^(?P<prefix>.*?)class_(?P<k>\d{1,3})_(?P<metric>\w+)$")


def per_class_from_metrics(metrics: dict[str, float]) -> pd.DataFrame:
    """One row per 3W class from metrics named ``<prefix>class_<k>_<metric>`` (e.g.
    ``holdout_class_3_obs_recall``); the most trusted prefix present wins (holdout over validation)."""
    found: dict[str, dict[int, dict[str, float]]] = {}
    for name, value in metrics.items():
        m = _PER_CLASS_METRIC.match(name)
        if m:
            found.setdefault(m["prefix"], {}).setdefault(int(m["k"]), {})[m["metric"]] = float(value)
    for prefix in METRIC_PREFIXES:
        if prefix in found:
            rows = [{"event_class": k, **v} for k, v in sorted(found[prefix].items())]
            return pd.DataFrame(rows)
    if found:
        prefix = sorted(found)[0]
        return pd.DataFrame([{"event_class": k, **v} for k, v in sorted(found[prefix].items())])
    return pd.DataFrame()


def _nan(x: float) -> bool:
    return isinstance(x, float) and np.isnan(x)


def confusion_from_metrics(metrics: dict[str, float]) -> list[list[float]] | None:
    """[[tn, fp], [fn, tp]] (rows = truth normal/event, cols = no alarm/alarm) from a run's metrics: counts
    named ``<prefix>tp/fp/fn/tn``, or rebuilt from ``<prefix>n_event_rows``, ``n_normal_rows``, ``obs_recall``
    and ``obs_fpr`` (what petrostream.metrics.EvaluationReport logs). None when neither is there."""
    for prefix in METRIC_PREFIXES:
        counts = [metrics.get(prefix + k) for k in ("tn", "fp", "fn", "tp")]
        values = [float(c) for c in counts if c is not None and not _nan(c)]
        if len(values) == 4:
            tn, fp, fn, tp = values
            return [[tn, fp], [fn, tp]]
        keys = [prefix + k for k in ("n_event_rows", "n_normal_rows", "obs_recall", "obs_fpr")]
        if all(k in metrics and not _nan(float(metrics[k])) for k in keys):
            pos, neg, recall, fpr = (float(metrics[k]) for k in keys)
            tp, fp = float(round(recall * pos)), float(round(fpr * neg))
            return [[neg - fp, fp], [pos - tp, tp]]
    return None


@dataclass
class RunDetails:
    run_id: str
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    confusion: list[list[float]] | None = None  # rows = truth, cols = prediction
    confusion_labels: list[str] = field(default_factory=lambda: ["normal", "event"])
    per_class: pd.DataFrame = field(default_factory=pd.DataFrame)  # event_class + obs_recall, detection_rate...
    note: str = ""


def _run_artifact(client, run_id: str, candidates: tuple[str, ...]) -> Path | None:
    """Local copy of the first artifact among ``candidates`` that the run has, or None."""
    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    present: set[str] = set()
    for folder in {str(Path(c).parent) for c in candidates}:
        try:
            present |= {a.path for a in client.list_artifacts(run_id, None if folder == "." else folder)}
        except Exception:
            continue
    for name in candidates:
        if name in present:
            try:
                return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name,
                                                                tracking_uri=client.tracking_uri))
            except Exception as exc:
                log.warning("run artifact unreadable", extra={"run_id": run_id, "artifact": name,
                                                              "error": str(exc)[:200]})
    return None


def run_details(run_id: str, settings: Settings | None = None) -> RunDetails:
    """Metrics, confusion matrix and per-class recall / detection delay of the run behind a registered
    version: per-class from ``report/per_class_holdout.csv`` when training logged it, else from the
    per-class metrics; the confusion matrix from a JSON artifact or rebuilt from the logged counts/rates."""
    s = settings or get_settings()
    out = RunDetails(run_id)
    try:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=s.mlflow_tracking_uri)
        run = client.get_run(run_id)
    except Exception as exc:
        out.note = f"run {run_id} is not readable: {type(exc).__name__}"
        return out
    out.metrics, out.params = dict(run.data.metrics), dict(run.data.params)
    path = _run_artifact(client, run_id, CONFUSION_ARTIFACTS)
    if path is not None:
        try:
            doc = json.loads(path.read_text())
            out.confusion = [[float(x) for x in row] for row in doc["matrix"]]
            out.confusion_labels = [str(x) for x in doc.get("labels") or ["normal", "event"]]
        except (ValueError, KeyError, TypeError):
            out.confusion = None
    if out.confusion is None:
        out.confusion = confusion_from_metrics(out.metrics)
    path = _run_artifact(client, run_id, PER_CLASS_ARTIFACTS)
    if path is not None:
        try:
            out.per_class = pd.read_csv(path)
        except Exception:
            out.per_class = pd.DataFrame()
    if out.per_class.empty or "event_class" not in out.per_class:
        out.per_class = per_class_from_metrics(out.metrics)
    if out.confusion is None and out.per_class.empty:
        out.note = "This run logged no holdout evaluation (no confusion counts, no per-class metrics)."
    return out


# ------------------------------------------------------------------ champion + promotion history

CHAMPION_ALIAS = "champion"


@dataclass
class Champion:
    version: str | None
    promoted_at: pd.Timestamp | None = None
    source: str = ""  # where the answer came from
    run_id: str | None = None
    threshold: float | None = None
    note: str = ""
    manifest: dict = field(default_factory=dict)


def _parse_time(value: Any) -> pd.Timestamp | None:
    if value in (None, ""):
        return None
    try:
        if isinstance(value, int | float):
            t = pd.Timestamp(value, unit="s" if value < 1e11 else "ms")
        else:
            t = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    return t.tz_convert("UTC").tz_localize(None) if t.tzinfo is not None else t


def champion_manifest(settings: Settings | None = None) -> dict | None:
    """The champion manifest (``<model name>/champion.json`` in the models bucket, written last by
    ``petrostream export``), or None. Read through LakeStore, so a folder lake works too."""
    from petrostream.model_store import manifest_key

    s = settings or get_settings()
    data = _read_key(s.models_bucket, manifest_key(s.model_name, CHAMPION_ALIAS), s)
    if not data:
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def promotion_history_key(model_name: str) -> str:
    """Where ``petrostream promote`` appends its decisions (training/promote.py ``history_key``; read by key,
    the dashboard never imports training): ``<model name>/promotions.jsonl`` in the models bucket."""
    return f"{model_name}/promotions.jsonl"


HISTORY_COLUMNS = ["when", "action", "from_version", "to_version", "forced", "gates", "failed_gates",
                   "challenger_objective", "champion_objective", "reason", "who", "exported"]


def _gate_summary(gates: Any) -> tuple[str, str]:
    if not isinstance(gates, list) or not gates:
        return "", ""
    judged = [g for g in gates if isinstance(g, dict) and not g.get("skipped")]
    failed = [str(g.get("name")) for g in judged if not g.get("passed")]
    return f"{len(judged) - len(failed)}/{len(judged)} passed", ", ".join(failed)


def promotion_history(settings: Settings | None = None) -> pd.DataFrame:
    """Promotion decisions (promote / rollback / refused) from the models bucket, newest first, one row each:
    when, action, versions, forced, gate summary, the challenger's and champion's holdout objective."""
    s = settings or get_settings()
    rows = []
    for rec in read_json_lines(_read_key(s.models_bucket, promotion_history_key(s.model_name), s)):
        gates, failed = _gate_summary(rec.get("gates"))
        metrics: dict = rec["metrics"] if isinstance(rec.get("metrics"), dict) else {}
        export: dict = rec["export"] if isinstance(rec.get("export"), dict) else {}
        rows.append({
            "when": _parse_time(rec.get("when")),
            "action": rec.get("action"),
            "from_version": rec.get("from_version"),
            "to_version": rec.get("to_version"),
            "forced": bool(rec.get("forced")),
            "gates": gates,
            "failed_gates": failed,
            "challenger_objective": (metrics.get("challenger") or {}).get("objective"),
            "champion_objective": (metrics.get("champion") or {}).get("objective"),
            "reason": rec.get("reason") or "",
            "who": rec.get("who") or "",
            "exported": export.get("key") or export.get("error") or "",
        })
    df = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    return df.sort_values("when", ascending=False, ignore_index=True) if len(df) else df


def champion(settings: Settings | None = None, registry: Registry | None = None) -> Champion:
    """The serving champion: the manifest in the models bucket (what the service loads), else the MLflow
    ``champion`` alias; promotion time from the manifest or the promotion history."""
    from petrostream.model_store import manifest_key

    s = settings or get_settings()
    doc = champion_manifest(s)
    history = promotion_history(s)
    if doc:
        version = doc.get("version") or doc.get("model_version")
        # promoted: per the promotion history; else the export time of the manifest (promote exports at once)
        when = _history_time(history, version) or _parse_time(doc.get("promoted_at") or doc.get("exported_at"))
        return Champion(str(version) if version is not None else None, when,
                        LakeStore(s).uri(s.models_bucket, manifest_key(s.model_name, CHAMPION_ALIAS)),
                        doc.get("run_id"), doc.get("threshold"),
                        manifest=doc)
    reg = registry or mlflow_registry(s)
    if reg.available and CHAMPION_ALIAS in reg.aliases:
        version = reg.aliases[CHAMPION_ALIAS]
        row = reg.versions[reg.versions["version"].astype(str) == version]
        run_id = row["run_id"].iloc[0] if len(row) else None
        return Champion(version, _history_time(history, version), f"MLflow alias @{CHAMPION_ALIAS}", run_id,
                        note="No champion.json in the models bucket yet: the model is promoted but not exported "
                             "(`petrostream export`).")
    note = reg.note if not reg.available else (
        f"No champion yet: model '{s.model_name}' has no @{CHAMPION_ALIAS} alias. Promote one (`make promote`).")
    return Champion(None, note=note)


def _history_time(history: pd.DataFrame, version: Any) -> pd.Timestamp | None:
    """When ``version`` last became champion (a promote or rollback to it), per the promotion history."""
    if history.empty or version is None:
        return None
    hit = history[(history["to_version"].astype(str) == str(version))
                  & history["action"].isin(["promote", "rollback"])]
    return hit["when"].iloc[0] if len(hit) else None  # newest first


# ------------------------------------------------------------------ training reference for drift


REFERENCE_FILES = 24  # 3W instances sampled as the training reference
REFERENCE_ROWS = 20_000


def sample_training_data(data_dir: Path, files: int = REFERENCE_FILES, rows: int = REFERENCE_ROWS) -> pd.DataFrame:
    """A bounded sample of a 3W-layout training directory: ``files`` instances spread evenly over its
    (class-sorted) listing, every k-th row so at most ``rows`` come back, columns renamed to lake columns."""
    from petrostream.dataset import discover, read_instance
    from petrostream.schema import CONTINUOUS_VARIABLES, VARIABLE_BY_NAME

    infos = discover(data_dir)
    picked = [infos[round(i * (len(infos) - 1) / max(files - 1, 1))] for i in range(min(files, len(infos)))]
    per_file = max(rows // max(len(picked), 1), 1)
    parts = []
    for info in dict.fromkeys(picked):
        try:
            df = read_instance(info)
        except Exception:  # an unreadable file is the data-quality page's business
            continue
        cols = [c for c in df.columns if c in CONTINUOUS_VARIABLES]
        step = max(-(-len(df) // per_file), 1)  # ceil: at most per_file rows from this file
        parts.append(df[cols].iloc[::step].rename(columns={c: VARIABLE_BY_NAME[c].column for c in cols}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def training_reference(settings: Settings | None = None) -> tuple[pd.DataFrame | None, str]:
    """What the live inputs are compared with for drift: a reference sample exported next to the champion
    (Parquet named by ``reference_key`` in the manifest), else a sample of the 3W directory the champion was
    trained on (its MLflow version tag ``data_dir``) when this machine can read it. (None, "") otherwise."""
    s = settings or get_settings()
    doc = champion_manifest(s) or {}
    key = doc.get("reference_key") or doc.get("reference")
    if isinstance(key, str) and key:
        data = _read_key(s.models_bucket, key, s)
        if data:
            import io

            import pyarrow.parquet as pq

            try:
                return pq.read_table(io.BytesIO(data)).to_pandas(), f"training reference ({key})"
            except Exception as exc:
                log.warning("reference sample unreadable", extra={"key": key, "error": str(exc)[:200]})
    version = str(doc.get("version")) if doc.get("version") is not None else None
    data_dir = _champion_data_dir(s, version)
    if data_dir is not None:
        sample = sample_training_data(data_dir)
        if not sample.empty:
            return sample, f"training data of the champion ({data_dir}, {len(sample):,} sampled rows)"
    return None, ""


def _champion_data_dir(s: Settings, version: str | None) -> Path | None:
    path = _sqlite_path(s.mlflow_tracking_uri)
    if path is not None and not path.exists():
        return None
    try:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=s.mlflow_tracking_uri, registry_uri=s.mlflow_tracking_uri)
        mv = (client.get_model_version(s.model_name, version) if version
              else client.get_model_version_by_alias(s.model_name, CHAMPION_ALIAS))
        data_dir = (mv.tags or {}).get("data_dir")
    except Exception:
        return None
    if data_dir and Path(data_dir).is_dir():
        return Path(data_dir)
    return None


# ------------------------------------------------------------------ data quality (Great Expectations)


@dataclass
class Validation:
    available: bool
    note: str = ""
    suites: pd.DataFrame = field(default_factory=pd.DataFrame)  # suite, success, files, pass, fail, error...
    files: pd.DataFrame = field(default_factory=pd.DataFrame)  # suite, file, status, rows, failed, warnings
    data_docs: str | None = None
    path: str = ""


def validation_report(settings: Settings | None = None) -> Validation:
    """The latest Great Expectations results written by ``petrostream validate``
    (``<reports_dir>/validation/*.json``, ``latest.json`` first): pass/fail per suite and per file."""
    s = settings or get_settings()
    folder = Path(s.reports_dir) / "validation"
    latest = folder / "latest.json"
    paths = [latest] if latest.exists() else []
    paths += sorted(p for p in folder.glob("*.json") if p.name != "latest.json") if folder.exists() else []
    if not paths:
        return Validation(False, f"No validation results in {folder} yet: run `make validate` "
                                 "(or `petrostream validate <3W dir>`).", path=str(latest))
    suites, files, docs = [], [], None
    seen: set[str] = set()
    for p in paths:
        try:
            doc = json.loads(p.read_text())
        except (OSError, ValueError) as exc:
            log.warning("validation report unreadable", extra={"path": str(p), "error": str(exc)[:200]})
            continue
        for summary in doc if isinstance(doc, list) else [doc]:
            if not isinstance(summary, dict):
                continue
            suite = str(summary.get("suite") or p.stem)
            if suite in seen:  # latest.json wins over an older per-suite file
                continue
            seen.add(suite)
            counts = summary.get("counts") or {}
            suites.append({
                "suite": suite,
                "success": bool(summary.get("success")),
                "files": counts.get("files", len(summary.get("files") or [])),
                "pass": counts.get("pass", 0), "fail": counts.get("fail", 0), "error": counts.get("error", 0),
                "warned": counts.get("warned", 0),
                "rows": summary.get("rows"),
                "finished_at": _parse_time(summary.get("finished_at")),
                "directory": summary.get("directory", ""),
                "report": str(p),
            })
            for f in summary.get("files") or []:
                files.append({
                    "suite": suite, "file": f.get("file"), "status": f.get("status"), "rows": f.get("rows"),
                    "failed": "; ".join(f.get("failed") or []), "warnings": "; ".join(f.get("warnings") or []),
                    "error": f.get("error") or "",
                })
            docs = docs or summary.get("data_docs")
    if not suites:
        return Validation(False, f"The validation results in {folder} are not readable.", path=str(latest))
    return Validation(True, "", pd.DataFrame(suites), pd.DataFrame(files), docs, str(latest))
