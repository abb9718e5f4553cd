"""A small lake with known values for the dashboard tests, written through the real sink code path
(``petrostream.lake.write_partitioned`` / ``write_quarantine``) into a local-folder lake.

Three wells over two days (2024-04-30 and 2024-05-01), all times naive UTC:

* WELL-00001 (class 4): day 1 600 rows with a false alarm (rows 100-149, label 0); day 2 600 rows,
  3W label 4 from row 300, alarm on rows 400-599 (its last rows: the well is in ALARM); day 2 was
  scored 60-120 s before ``now`` by model version 2, day 1 a day ago by version 1.
* WELL-00002 (class 0): 600 + 600 normal rows, no alarm (NORMAL), scored like WELL-00001.
* WELL-00003 (class 3): day 1 only, 300 rows labelled 3, alarm on rows 50-99, scored 3 h ago (STALE).

P-TPT of WELL-00001 day 2 carries one spike (``SPIKE_MAX`` at row 450, ``SPIKE_MIN`` at row 451) so the
downsampling test can check min/max survive bucketing. Every row was sent 2 s before it was scored.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from petrostream.lake import EVENTS, RAW, SCORED, LakeStore, write_partitioned, write_quarantine
from petrostream.settings import Settings

DAY1, DAY2 = "2024-04-30", "2024-05-01"
SPIKE_MAX, SPIKE_MIN = 2.5e7, 3.0e6
LAG_S = 2.0
THRESHOLD = 0.6
QUARANTINE = [
    {"reason": "non-finite number NaN", "shard_id": "shardId-000000000000", "sequence_number": "11"},
    {"reason": "non-finite number NaN", "shard_id": "shardId-000000000000", "sequence_number": "12"},
    {"reason": "unknown variable 'P-XYZ'", "shard_id": "shardId-000000000001", "sequence_number": "13"},
]
QUARANTINE_DAY1 = [{"reason": "not valid JSON (Expecting value)", "shard_id": "shardId-000000000001",
                    "sequence_number": "7"}]


@dataclass
class Segment:
    well: str
    event_class: int
    day: str
    start: str  # HH:MM:SS
    n: int
    model_version: str
    scored_ago_s: float  # first row scored this long before now
    alarm: tuple[int, int] | None  # [a, b) rows flagged anomalous
    label_from: int | None  # rows >= this carry label event_class (others 0)
    spike: bool = False
    source: str = "REAL"

    @property
    def instance_id(self) -> str:
        return f"{self.event_class}_{self.well}_{self.day.replace('-', '')}{self.start.replace(':', '')}"


SEGMENTS = (
    Segment("WELL-00001", 4, DAY1, "10:00:00", 600, "1", 86_400, (100, 150), None),
    Segment("WELL-00001", 4, DAY2, "10:00:00", 600, "2", 120, (400, 600), 300, spike=True),
    Segment("WELL-00002", 0, DAY1, "10:00:00", 600, "1", 86_400, None, None),
    Segment("WELL-00002", 0, DAY2, "10:00:00", 600, "2", 120, None, None),
    Segment("WELL-00003", 3, DAY1, "12:00:00", 300, "1", 3 * 3600, (50, 100), 0),
)
EXPECTED_STATUS = {"WELL-00001": "alarm", "WELL-00002": "normal", "WELL-00003": "stale"}


@dataclass
class LakeFixture:
    root: Path
    lake_dir: Path
    reports_dir: Path
    now: pd.Timestamp
    scored: pd.DataFrame  # as the lake holds it, with ``well`` and ``dt`` string columns
    events: pd.DataFrame
    quarantine: list[dict] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """Environment that points settings (and a ``streamlit run`` child) at this lake."""
        return {
            "PETROSTREAM_LAKE_DIR": str(self.lake_dir),
            "PETROSTREAM_REPORTS_DIR": str(self.reports_dir),
            "PETROSTREAM_QUERY_BACKEND": "duckdb",
        }

    def apply(self, monkeypatch) -> None:
        for k, v in self.env.items():
            monkeypatch.setenv(k, v)
        from petrostream.settings import get_settings

        get_settings.cache_clear()


def _segment_frame(seg: Segment, now: pd.Timestamp) -> pd.DataFrame:
    n = seg.n
    i = np.arange(n)
    ts = pd.Timestamp(f"{seg.day} {seg.start}") + pd.to_timedelta(i, unit="s")
    offset = {"WELL-00001": 0.0, "WELL-00002": 1e6, "WELL-00003": 2e6}[seg.well]
    shift = 5e5 if seg.day == DAY2 else 0.0  # day 2 pressures sit higher: visible drift
    p_tpt = 1.0e7 + offset + shift + 1.0e4 * np.sin(i / 30.0)
    if seg.spike:
        p_tpt[450], p_tpt[451] = SPIKE_MAX, SPIKE_MIN
    is_anomaly = np.zeros(n, dtype="int32")
    if seg.alarm:
        is_anomaly[seg.alarm[0]:seg.alarm[1]] = 1
    label = np.zeros(n, dtype="int32")
    if seg.label_from is not None:
        label[seg.label_from:] = seg.event_class
    scored_at = now - pd.Timedelta(seconds=seg.scored_ago_s) + pd.to_timedelta(i * 100, unit="ms")
    return pd.DataFrame({
        "instance_id": seg.instance_id,
        "well_id": seg.well,
        "source": seg.source,
        "event_class": seg.event_class,
        "ts": ts,
        "p_pdg": 2.0e7 + offset + 5.0e3 * np.cos(i / 50.0),
        "p_tpt": p_tpt,
        "t_tpt": 80.0 + offset / 1e6 + 0.01 * i,
        "p_mon_ckp": 5.0e6 + offset + shift,
        "t_jus_ckp": 60.0 + 0.005 * i,
        "qgl": np.where(i % 10 == 0, np.nan, 0.5),
        "label": label,
        "anomaly_score": np.where(is_anomaly == 1, 0.8, 0.3),
        "is_anomaly": is_anomaly,
        "threshold": THRESHOLD,
        "model_version": seg.model_version,
        "shard_id": "shardId-000000000000",
        "sequence_number": [str(10_000 + k) for k in i],
        "sent_at": scored_at - pd.Timedelta(seconds=LAG_S),
        "arrived_at": scored_at - pd.Timedelta(seconds=LAG_S / 2),
        "scored_at": scored_at,
    })


def _episodes(seg: Segment, frame: pd.DataFrame) -> pd.DataFrame:
    if not seg.alarm:
        return pd.DataFrame()
    a, b = seg.alarm
    part = frame.iloc[a:b]
    start, end = part["ts"].iloc[0], part["ts"].iloc[-1]
    return pd.DataFrame([{
        "episode_id": f"{seg.instance_id}-{a}",
        "instance_id": seg.instance_id,
        "well_id": seg.well,
        "source": seg.source,
        "event_class": seg.event_class,
        "start_ts": start,
        "end_ts": end,
        "duration_s": (end - start).total_seconds(),
        "n_rows": len(part),
        "peak_score": float(part["anomaly_score"].max()),
        "mean_score": float(part["anomaly_score"].mean()),
        "model_version": seg.model_version,
        "label": int(part["label"].max()),
        "closed_at": part["scored_at"].iloc[-1] + pd.Timedelta(seconds=1),
    }])


def build_lake(root: Path, now: pd.Timestamp | None = None, with_data: bool = True,
               store: LakeStore | None = None) -> LakeFixture:
    """Write the fixture lake under ``root/lake`` (reports under ``root/reports``), or into ``store``
    (e.g. the S3 buckets of the emulator)."""
    now = now if now is not None else pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    lake_dir, reports = root / "lake", root / "reports"
    lake_dir.mkdir(parents=True, exist_ok=True)
    reports.mkdir(parents=True, exist_ok=True)
    if not with_data:
        return LakeFixture(root, lake_dir, reports, now, pd.DataFrame(), pd.DataFrame())
    store = store or LakeStore(settings=Settings(lake_dir=lake_dir), lake_dir=lake_dir)
    frames, events = [], []
    for k, seg in enumerate(SEGMENTS):
        df = _segment_frame(seg, now)
        name = f"shardId-00000000000{k % 2}-{10_000 + k * 1000}-{10_000 + k * 1000 + seg.n - 1}"
        write_partitioned(RAW, df, name, store)
        write_partitioned(SCORED, df, name, store)
        ev = _episodes(seg, df)
        if not ev.empty:
            write_partitioned(EVENTS, ev, f"events-{k}", store)
            events.append(ev)
        frames.append(df)
    write_quarantine(QUARANTINE, "shardId-000000000000-11-13", DAY2, store)
    write_quarantine(QUARANTINE_DAY1, "shardId-000000000001-7-7", DAY1, store)
    scored = pd.concat(frames, ignore_index=True)
    scored["well"] = scored.pop("well_id")
    scored["dt"] = scored["ts"].dt.strftime("%Y-%m-%d")
    ev = pd.concat(events, ignore_index=True)
    ev["well"] = ev.pop("well_id")
    return LakeFixture(root, lake_dir, reports, now, scored, ev, QUARANTINE + QUARANTINE_DAY1)


# ------------------------------------------------------------------ model registry, manifest, reports

MODEL_NAME = "petrostream-anomaly"
# as training/tracking.py logs them on the registered run: EvaluationReport.to_dict() and per_class_dict()
# with the "holdout_" prefix
VERSION_METRICS = {
    1: {"holdout_obs_precision": 0.61, "holdout_obs_recall": 0.52, "holdout_obs_f1": 0.56, "holdout_obs_fpr": 0.04,
        "holdout_roc_auc": 0.81, "holdout_n_event_rows": 1000.0, "holdout_n_normal_rows": 4000.0,
        "holdout_class_3_obs_recall": 0.40, "holdout_class_4_obs_recall": 0.55,
        "holdout_class_3_detection_rate": 0.5, "holdout_class_4_detection_rate": 0.75,
        "holdout_class_3_median_delay_s": 120.0, "holdout_class_4_median_delay_s": 60.0,
        "best_val_obs_f1": 0.58, "threshold": 0.61},
    2: {"holdout_obs_precision": 0.72, "holdout_obs_recall": 0.64, "holdout_obs_f1": 0.68, "holdout_obs_fpr": 0.02,
        "holdout_roc_auc": 0.88, "holdout_n_event_rows": 1000.0, "holdout_n_normal_rows": 4000.0,
        "holdout_class_3_obs_recall": 0.58, "holdout_class_4_obs_recall": 0.70,
        "holdout_class_3_detection_rate": 0.75, "holdout_class_4_detection_rate": 1.0,
        "holdout_class_3_median_delay_s": 90.0, "holdout_class_4_median_delay_s": 45.0,
        "best_val_obs_f1": 0.70, "threshold": 0.6},
}
# v2 also logs report/per_class_holdout.csv (petrostream.metrics.per_class columns), like training does
PER_CLASS_V2 = pd.DataFrame({
    "event_class": [3, 4], "name": ["Severe Slugging", "Flow Instability"], "instances": [4, 4],
    "detected": [3, 4], "detection_rate": [0.75, 1.0], "median_delay_s": [90.0, 45.0], "obs_recall": [0.58, 0.70],
})
# rebuilt from holdout_n_event_rows/n_normal_rows and obs_recall/obs_fpr: [[tn, fp], [fn, tp]]
CONFUSION_V2 = [[3920.0, 80.0], [360.0, 640.0]]
CONFUSION_V1 = [[3840.0, 160.0], [480.0, 520.0]]
CHAMPION_VERSION = "2"
PROMOTED_AT = "2024-05-01T09:00:00+00:00"  # per the promotion history
EXPORTED_AT = "2024-05-01T09:00:40+00:00"  # the manifest's export time, a little later


def build_registry(uri: str, artifact_root: Path, name: str = MODEL_NAME) -> dict[str, str]:
    """Two registered versions with run metrics; v2 also logs the per-class CSV; @champion -> v2,
    @challenger -> v1. Returns {version: run_id}."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment("dashboard-tests", artifact_location=str(artifact_root))
    client.create_registered_model(name)
    runs = {}
    for version, metrics in VERSION_METRICS.items():
        run = client.create_run(exp, run_name=f"train-v{version}")
        rid = run.info.run_id
        client.log_batch(rid, metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()])
        if version == 2:
            csv = artifact_root / "per_class_holdout.csv"
            csv.parent.mkdir(parents=True, exist_ok=True)
            PER_CLASS_V2.to_csv(csv, index=False)
            client.log_artifact(rid, str(csv), "report")
        client.set_terminated(rid)
        mv = client.create_model_version(name, source=str(artifact_root / f"model-v{version}"), run_id=rid)
        runs[str(mv.version)] = rid
    client.set_registered_model_alias(name, "champion", CHAMPION_VERSION)
    client.set_registered_model_alias(name, "challenger", "1")
    return runs


def write_manifest(lake_dir: Path | None, run_id: str, name: str = MODEL_NAME, store: LakeStore | None = None) -> str:
    """champion.json where petrostream.model_store puts it (models bucket, ``<name>/champion.json``)."""
    from petrostream.model_store import manifest_key

    store = store or LakeStore(settings=Settings(lake_dir=lake_dir), lake_dir=lake_dir)
    key = manifest_key(name, "champion")
    doc = {"manifest_version": 1, "name": name, "version": CHAMPION_VERSION, "run_id": run_id, "alias": "champion",
           "metrics": VERSION_METRICS[2], "bucket": store.settings.models_bucket, "prefix": f"{name}/v2/",
           "files": {}, "exported_at": EXPORTED_AT, "exported_by": "tests@localhost"}
    store.put(store.settings.models_bucket, key, json.dumps(doc).encode())
    return key


def promotion_records() -> list[dict]:
    """Three decisions as ``petrostream promote`` records them (training.promote.PromotionRecord): v1
    promoted, v2 refused (false alarms), v2 promoted."""
    from training.promote import Gate, PromotionRecord

    ok = [Gate("data_suite", True, detail="holdout files pass"), Gate("objective", True, 0.6, 0.5, "ok")]
    bad = [Gate("data_suite", True, detail="ok"), Gate("false_alarms_per_hour", False, 41.0, 30.0, "41 > 30")]
    recs = [
        PromotionRecord("promote", MODEL_NAME, None, "1", who="ci@runner", when="2024-04-29T09:00:00+00:00",
                        gates=[asdict(g) for g in ok], metrics={"challenger": {"objective": 0.55}, "champion": {}}),
        PromotionRecord("refused", MODEL_NAME, "1", "2", who="ci@runner", when="2024-04-30T09:00:00+00:00",
                        gates=[asdict(g) for g in bad],
                        metrics={"challenger": {"objective": 0.60}, "champion": {"objective": 0.55}}),
        PromotionRecord("promote", MODEL_NAME, "1", "2", who="ci@runner", when=PROMOTED_AT, reason="retrained",
                        gates=[asdict(g) for g in ok],
                        metrics={"challenger": {"objective": 0.66}, "champion": {"objective": 0.55}},
                        export={"bucket": "petrostream-models", "key": f"{MODEL_NAME}/champion.json"}),
    ]
    return [r.to_dict() for r in recs]


def write_promotions(lake_dir: Path | None, store: LakeStore | None = None) -> str:
    """``<model>/promotions.jsonl`` in the models bucket, where training.promote.append_history puts it."""
    from training.promote import history_key

    store = store or LakeStore(settings=Settings(lake_dir=lake_dir), lake_dir=lake_dir)
    key = history_key(MODEL_NAME)
    body = "".join(json.dumps(r, sort_keys=True) + "\n" for r in promotion_records())
    store.put(store.settings.models_bucket, key, body.encode())
    return key


VALIDATION_FILES = [
    {"file": "3/WELL-00014_20170919210016.parquet", "status": "pass", "rows": 17000, "seconds": 0.4, "failed": [],
     "warnings": [], "error": None},
    {"file": "4/WELL-00001_20170316120203.parquet", "status": "fail", "rows": 9000, "seconds": 0.3,
     "failed": ["P-PDG: values between 0 and 1e8 (12 rows outside)"], "warnings": [], "error": None},
    {"file": "6/broken.parquet", "status": "error", "rows": 0, "seconds": 0.0, "failed": [], "warnings": [],
     "error": "not a parquet file"},
]


def write_validation(reports_dir: Path) -> Path:
    """``<reports>/validation/latest.json`` in the shape petrostream.quality.write_reports writes (the logic
    tests check the reader against the real writer), plus a tiny Data Docs index."""
    docs = reports_dir / "data_docs" / "index.html"
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text("<html><body><h1>Data Docs</h1></body></html>")
    counts = {st: sum(1 for f in VALIDATION_FILES if f["status"] == st) for st in ("pass", "fail", "error")}
    return write_json(reports_dir / "validation" / "latest.json", {
        "suite": "raw_3w_instance", "directory": "/data/3w", "started_at": "2024-05-01T08:00:00+00:00",
        "finished_at": "2024-05-01T08:01:00+00:00", "seconds": 60.0, "success": False,
        "counts": {"files": len(VALIDATION_FILES), **counts, "warned": 0},
        "rows": sum(f["rows"] for f in VALIDATION_FILES), "progress": "", "data_docs": str(docs.resolve()),
        "files": VALIDATION_FILES,
    })


def write_json(path: Path, doc: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=str))
    return path


if __name__ == "__main__":  # build a demo lake by hand: python tests/dashboard_fixtures.py /tmp/lake
    import sys

    fx = build_lake(Path(sys.argv[1] if len(sys.argv) > 1 else os.getcwd()))
    print(json.dumps(fx.env))
