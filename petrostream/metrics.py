"""Evaluation of anomaly scores and alarms against 3W labels (pure numpy/pandas/scikit-learn).

Observation level (rows whose label is known): positive = label != 0 (events 1..9 and transients
101..109), negative = label 0 (normal). Alarms give precision / recall / F1 / FPR; scores give ROC-AUC,
PR-AUC and recall at a fixed false-positive rate (threshold = quantile of the normal rows' scores).
Undefined values (a class absent, no alarm at all) are NaN, never an exception.

Event level (instances with at least one non-0 label): the onset is the first non-0 label; an event is
detected when an alarm fires at or after the onset; the delay is the time from onset to that alarm.
False alarms are counted as episodes (maximal runs of consecutive alarms inside an instance) that start
on a label-0 row, per hour of normal operation (label-0 rows / 3600, rows are 1 Hz).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from petrostream import schema

KEY = "instance_id"
LABEL = "label"
EVENT_CLASS = "event_class"
SECONDS_PER_HOUR = 3600.0
NAN = float("nan")


# ----------------------------------------------------------------------------------------------- observation level


def _clean(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """(is_event bool, score float) over rows with a known label and a finite score."""
    lab = pd.array(labels, dtype="Int64")
    sc = np.asarray(scores, dtype=np.float64)
    keep = ~np.asarray(lab.isna()) & np.isfinite(sc)
    return np.asarray(lab[keep] != schema.NORMAL, dtype=bool), sc[keep]


def threshold_for_fpr(normal_scores: Any, fpr: float = 0.01) -> float:
    """Smallest observed score with at most ``fpr`` of ``normal_scores`` strictly above it (NaN if none).

    Alarm rule ``score > threshold``: on these normal rows the false-positive rate is then <= ``fpr``.
    """
    if not 0.0 <= fpr <= 1.0:
        raise ValueError(f"fpr must be in [0, 1], got {fpr}")
    s = np.asarray(normal_scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    n = len(s)
    if n == 0:
        return NAN
    allowed = int(math.floor(fpr * n + 1e-9))  # rows allowed above the threshold
    if allowed >= n:
        return float("-inf")
    k = n - allowed - 1
    return float(np.partition(s, k)[k])


def recall_at_fpr(labels: Any, scores: Any, fpr: float = 0.01) -> float:
    """Share of event rows scoring above the threshold that lets ``fpr`` of the normal rows through."""
    pos, sc = _clean(labels, scores)
    if not pos.any() or pos.all():
        return NAN
    thr = threshold_for_fpr(sc[~pos], fpr)
    return float(np.mean(sc[pos] > thr))


def roc_auc(labels: Any, scores: Any) -> float:
    from sklearn.metrics import roc_auc_score

    pos, sc = _clean(labels, scores)
    if not pos.any() or pos.all():
        return NAN
    return float(roc_auc_score(pos, sc))


def pr_auc(labels: Any, scores: Any) -> float:
    """Average precision (area under the precision-recall curve); NaN without event rows."""
    from sklearn.metrics import average_precision_score

    pos, sc = _clean(labels, scores)
    if not pos.any():
        return NAN
    return float(average_precision_score(pos, sc))


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else NAN


def observation_metrics(labels: Any, alarms: Any) -> dict[str, float]:
    """precision, recall, F1, FPR of 0/1 alarms over rows with a known label (NaN where undefined)."""
    lab = pd.array(labels, dtype="Int64")
    al = np.asarray(pd.array(alarms, dtype="Int64").fillna(0), dtype=bool)
    known = ~np.asarray(lab.isna())
    pos = np.asarray(lab[known] != schema.NORMAL, dtype=bool)
    al = al[known]
    tp = int(np.sum(pos & al))
    fp = int(np.sum(~pos & al))
    fn = int(np.sum(pos & ~al))
    tn = int(np.sum(~pos & ~al))
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "fpr": _ratio(fp, fp + tn),
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
    }


# ----------------------------------------------------------------------------------------------- event level


def _seconds(df: pd.DataFrame) -> np.ndarray:
    """Time of each row in seconds (from ``timestamp`` column/index; row order at 1 Hz otherwise)."""
    if schema.TIMESTAMP in df.columns:
        ts = pd.to_datetime(df[schema.TIMESTAMP])
    elif df.index.name == schema.TIMESTAMP:
        ts = pd.Series(pd.DatetimeIndex(df.index), index=df.index)
    else:
        return np.arange(len(df), dtype=np.float64)
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return (ts - pd.Timestamp(0)).dt.total_seconds().to_numpy(dtype=np.float64)


def per_instance(df: pd.DataFrame, alarm_col: str = "is_anomaly", label_col: str = LABEL) -> pd.DataFrame:
    """One row per instance: event_class, has_event, onset, detected, delay_s, normal_rows, false_alarm_episodes,
    event_rows, event_rows_alarmed."""
    if len(df) == 0:
        dtypes = {KEY: object, EVENT_CLASS: np.int64, "has_event": bool, "detected": bool, "delay_s": np.float64,
                  "normal_rows": np.int64, "false_alarm_episodes": np.int64, "event_rows": np.int64,
                  "event_rows_alarmed": np.int64}
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})
    key = df[KEY].to_numpy() if KEY in df.columns else np.zeros(len(df), dtype=np.int64)
    codes, uniques = pd.factorize(key)
    t = _seconds(df)
    order = np.lexsort((t, codes))
    codes, t = codes[order], t[order]
    lab = pd.array(df[label_col], dtype="Int64")[order]
    known = ~np.asarray(lab.isna())
    labv = np.asarray(lab.fillna(-1), dtype=np.int64)
    pos = known & (labv != schema.NORMAL)
    normal = known & (labv == schema.NORMAL)
    al = np.asarray(pd.array(df[alarm_col], dtype="Int64").fillna(0), dtype=bool)[order]
    n_inst = len(uniques)
    idx = np.arange(len(codes))

    onset = np.full(n_inst, len(codes))  # row of the first event label per instance
    np.minimum.at(onset, codes[pos], idx[pos])
    has_event = onset < len(codes)
    after = al & has_event[codes] & (idx >= onset[codes])
    first_alarm = np.full(n_inst, len(codes))
    np.minimum.at(first_alarm, codes[after], idx[after])
    detected = first_alarm < len(codes)
    delay = np.full(n_inst, np.nan)
    delay[detected] = t[first_alarm[detected]] - t[onset[detected]]

    starts = al & np.r_[True, (~al[:-1]) | (codes[1:] != codes[:-1])]  # first alarm of each run
    episodes = np.bincount(codes[starts & normal], minlength=n_inst)
    normal_rows = np.bincount(codes[normal], minlength=n_inst)
    event_rows = np.bincount(codes[pos], minlength=n_inst)
    event_alarmed = np.bincount(codes[pos & al], minlength=n_inst)

    if EVENT_CLASS in df.columns:
        ec = pd.array(df[EVENT_CLASS], dtype="Int64")[order]
        first_row = np.full(n_inst, len(codes))
        np.minimum.at(first_row, codes, idx)
        cls = np.asarray(ec[first_row].fillna(-1), dtype=np.int64)
    else:
        cls = np.full(n_inst, -1, dtype=np.int64)
    onset_label = np.where(has_event, labv[np.minimum(onset, len(codes) - 1)], 0)
    derived = np.where(onset_label >= schema.TRANSIENT_OFFSET, onset_label - schema.TRANSIENT_OFFSET, onset_label)
    cls = np.where(cls >= 0, cls, derived)  # instance class given, else the class of the first event label
    return pd.DataFrame({
        KEY: uniques,
        EVENT_CLASS: cls,
        "has_event": has_event,
        "detected": detected,
        "delay_s": delay,
        "normal_rows": normal_rows,
        "false_alarm_episodes": episodes,
        "event_rows": event_rows,
        "event_rows_alarmed": event_alarmed,
    })


def per_class(instances: pd.DataFrame) -> pd.DataFrame:
    """class -> instances, detected, detection_rate, median_delay_s, obs_recall (instances with an event)."""
    ev = instances[instances["has_event"]]
    cols = ["event_class", "name", "instances", "detected", "detection_rate", "median_delay_s", "obs_recall"]
    if ev.empty:
        return pd.DataFrame(columns=cols)
    g = ev.groupby(EVENT_CLASS)
    out = pd.DataFrame({
        "instances": g.size(),
        "detected": g["detected"].sum().astype(int),
        "median_delay_s": g["delay_s"].median(),
        "event_rows": g["event_rows"].sum(),
        "event_rows_alarmed": g["event_rows_alarmed"].sum(),
    })
    out["detection_rate"] = out["detected"] / out["instances"]
    out["obs_recall"] = out["event_rows_alarmed"] / out["event_rows"].where(out["event_rows"] > 0)
    out = out.reset_index()
    out["name"] = [schema.event_name(int(c)) for c in out[EVENT_CLASS]]
    return out[cols].sort_values(EVENT_CLASS, ignore_index=True)


# ----------------------------------------------------------------------------------------------- report


@dataclass
class EvaluationReport:
    obs_precision: float = NAN
    obs_recall: float = NAN
    obs_f1: float = NAN
    obs_fpr: float = NAN
    roc_auc: float = NAN
    pr_auc: float = NAN
    recall_at_1pct_fpr: float = NAN
    event_detection_rate: float = NAN
    median_detection_delay_s: float = NAN
    mean_detection_delay_s: float = NAN
    false_alarms_per_hour: float = NAN
    n_rows: int = 0
    n_labelled: int = 0
    n_event_rows: int = 0
    n_normal_rows: int = 0
    n_instances: int = 0
    n_event_instances: int = 0
    n_detected: int = 0
    normal_hours: float = 0.0
    false_alarm_episodes: int = 0
    per_class: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    per_instance: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    def to_dict(self) -> dict[str, float]:
        """Flat numeric metrics (MLflow-ready; NaN where undefined)."""
        d = asdict(self)
        d.pop("per_class")
        d.pop("per_instance")
        return {k: float(v) for k, v in d.items()}

    def per_class_dict(self) -> dict[str, float]:
        """Flat per-class metrics, e.g. ``class_2_detection_rate`` (MLflow-ready)."""
        out: dict[str, float] = {}
        for row in self.per_class.itertuples(index=False):
            for m in ("detection_rate", "median_delay_s", "obs_recall"):
                out[f"class_{row.event_class}_{m}"] = float(getattr(row, m))
        return out


def evaluate(df: pd.DataFrame, score_col: str = "anomaly_score", alarm_col: str = "is_anomaly",
             label_col: str = LABEL, fpr: float = 0.01) -> EvaluationReport:
    """Observation- and event-level evaluation of scored rows.

    ``df`` columns: ``instance_id``, ``timestamp`` (column or index; absent = 1 Hz row order), ``label``
    (Int64, NA = unlabelled), optional ``event_class`` (the instance's class), scores and 0/1 alarms.
    """
    missing = [c for c in (label_col, score_col, alarm_col) if c not in df.columns]
    if missing:
        raise ValueError(f"evaluate: missing columns {missing} (have {list(df.columns)})")
    labels = df[label_col]
    obs = observation_metrics(labels, df[alarm_col])
    inst = per_instance(df, alarm_col, label_col)
    ev = inst[inst["has_event"]]
    normal_rows = int(inst["normal_rows"].sum())
    hours = normal_rows / SECONDS_PER_HOUR
    episodes = int(inst["false_alarm_episodes"].sum())
    delays = ev["delay_s"].dropna()
    known = labels.notna()
    return EvaluationReport(
        obs_precision=obs["precision"],
        obs_recall=obs["recall"],
        obs_f1=obs["f1"],
        obs_fpr=obs["fpr"],
        roc_auc=roc_auc(labels, df[score_col]),
        pr_auc=pr_auc(labels, df[score_col]),
        recall_at_1pct_fpr=recall_at_fpr(labels, df[score_col], fpr),
        event_detection_rate=_ratio(int(ev["detected"].sum()), len(ev)),
        median_detection_delay_s=float(delays.median()) if len(delays) else NAN,
        mean_detection_delay_s=float(delays.mean()) if len(delays) else NAN,
        false_alarms_per_hour=episodes / hours if hours > 0 else NAN,
        n_rows=len(df),
        n_labelled=int(known.sum()),
        n_event_rows=int(obs["tp"] + obs["fn"]),
        n_normal_rows=int(obs["fp"] + obs["tn"]),
        n_instances=len(inst),
        n_event_instances=len(ev),
        n_detected=int(ev["detected"].sum()),
        normal_hours=hours,
        false_alarm_episodes=episodes,
        per_class=per_class(inst),
        per_instance=inst,
    )
