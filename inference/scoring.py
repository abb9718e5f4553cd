"""Micro-batch scoring of one shard's rows: per-instance stream state, duplicates, episodes (pure logic).

``ShardScorer.score(rows)`` takes the decoded rows of one micro-batch (``petrostream.wire`` layout) and

1. orders them by (instance, time) and drops rows already seen: an exact (instance_id, timestamp)
   repeat inside the batch ("duplicate"), and any row whose timestamp is not newer than the last
   scored timestamp of its instance ("stale": a redelivered record or a late row). Feature windows
   are causal, so a row arriving after newer rows of its instance cannot be scored consistently;
   it is counted and dropped (the raw archive keeps it);
2. scores what is left with ONE ``StreamScorer.score`` call (the model keeps per-instance windows);
3. stamps ``model_version`` / ``threshold`` and updates episodes.

Hot reload: the scorer checks the model source between micro-batches. A new version gets a fresh
``StreamScorer`` warmed by scoring the retained tail of each instance (the last ``max_window - 1``
rows, exactly what the feature windows need), so its first scores use full windows.

Episodes: consecutive alarms of one instance, merged while the gap between alarms is < ``gap_s``
(data time). An episode closes when a row of that instance arrives ``gap_s`` after its last alarm,
or when the instance has been silent for ``idle_close_s`` (wall time). ``episode_id`` is derived from
(instance_id, start ts), so re-writing an episode (partial, then final) overwrites the same object.

The state that must survive a restart (watermarks and open episodes) is ``state()`` / ``restore()``,
kept with the shard checkpoint.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from petrostream.schema import VARIABLE_NAMES

if TYPE_CHECKING:
    from petrostream.model import StreamScorer

log = logging.getLogger(__name__)

MAX_INSTANCES_IN_STATE = 2000  # the lease item (DynamoDB, 400 KB) holds this state
FORGET_AFTER_S = 6 * 3600.0  # drop feature state of instances silent this long (wall time)


@dataclass
class ModelRef:
    """What the scorer needs from a loaded model (see ``inference.model_loader.LoadedModel``)."""

    model: Any  # petrostream.model.AnomalyModel
    version: str


class ModelSource(Protocol):
    """Anything with ``model`` and ``version``: ``ModelRef`` or ``inference.model_loader.LoadedModel``."""

    model: Any
    version: str


def ts_ms(series: pd.Series) -> np.ndarray:
    return pd.to_datetime(series).to_numpy().astype("datetime64[ms]").astype("int64")


def episode_id(instance_id: str, start_ms: int) -> str:
    return hashlib.sha1(f"{instance_id}|{int(start_ms)}".encode()).hexdigest()[:20]


@dataclass
class Episode:
    instance_id: str
    well_id: str
    source: str
    event_class: int
    start: int  # ms
    last: int  # ms of the last alarm
    n: int = 0
    peak: float = float("-inf")
    total: float = 0.0
    labels: dict[str, int] = field(default_factory=dict)
    version: str = ""
    closed_at: float | None = None  # wall-clock seconds

    @property
    def id(self) -> str:
        return episode_id(self.instance_id, self.start)

    def add(self, ts: np.ndarray, scores: np.ndarray, labels: np.ndarray, version: str) -> None:
        self.last = int(ts.max())
        self.n += len(ts)
        self.peak = max(self.peak, float(scores.max()))
        self.total += float(scores.sum())
        self.version = version
        vals, counts = np.unique(labels[labels >= 0], return_counts=True)
        for v, c in zip(vals.tolist(), counts.tolist(), strict=True):
            self.labels[str(v)] = self.labels.get(str(v), 0) + int(c)

    def to_state(self) -> dict:
        return {k: getattr(self, k) for k in ("instance_id", "well_id", "source", "event_class", "start", "last",
                                              "n", "peak", "total", "labels", "version")}

    @classmethod
    def from_state(cls, d: dict) -> Episode:
        return cls(**d)

    def row(self) -> dict:
        label = max(self.labels.items(), key=lambda kv: (kv[1], int(kv[0])))[0] if self.labels else None
        return {
            "episode_id": self.id,
            "instance_id": self.instance_id,
            "well_id": self.well_id,
            "source": self.source,
            "event_class": int(self.event_class),
            "start_ts": pd.Timestamp(self.start, unit="ms"),
            "end_ts": pd.Timestamp(self.last, unit="ms"),
            "duration_s": (self.last - self.start) / 1000.0,
            "n_rows": int(self.n),
            "peak_score": float(self.peak),
            "mean_score": self.total / self.n if self.n else float("nan"),
            "model_version": self.version,
            "label": None if label is None else int(label),
            "closed_at": None if self.closed_at is None else pd.Timestamp(round(self.closed_at * 1000), unit="ms"),
        }


class EpisodeTracker:
    def __init__(self, gap_s: float = 60.0, idle_close_s: float = 120.0, clock: Callable[[], float] = time.time):
        self.gap_ms = int(gap_s * 1000)
        self.idle_close_s = idle_close_s
        self.clock = clock
        self.open: dict[str, Episode] = {}
        self.last_seen: dict[str, float] = {}  # wall clock of the last row per instance with an open episode
        self.touched: dict[str, Episode] = {}  # episode id -> episode changed since the last drain
        self.closed_count = 0

    def update(self, scored: pd.DataFrame) -> None:
        """``scored`` sorted by (instance_id, timestamp); columns is_anomaly, anomaly_score, label, ..."""
        if scored.empty:
            return
        now = self.clock()
        inst = scored["instance_id"].to_numpy()
        bounds = np.flatnonzero(np.r_[True, inst[1:] != inst[:-1], True])
        t_all = ts_ms(scored["timestamp"])
        alarm_all = scored["is_anomaly"].to_numpy().astype(bool)
        score_all = scored["anomaly_score"].to_numpy(dtype="float64")
        label_all = scored["label"].astype("Int64").fillna(-1).to_numpy(dtype="int64")
        version_all = scored["model_version"].to_numpy()
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):  # per instance, not per row
            key = str(inst[a])
            t, alarm = t_all[a:b], alarm_all[a:b]
            ep = self.open.get(key)
            if ep is not None:
                self.last_seen[key] = now
            if alarm.any():
                at, sc, lb = t[alarm], score_all[a:b][alarm], label_all[a:b][alarm]
                vers = version_all[a:b][alarm]
                cuts = np.flatnonzero(np.diff(at) >= self.gap_ms) + 1
                for k, (s, e) in enumerate(zip(np.r_[0, cuts], np.r_[cuts, len(at)], strict=True)):
                    if not (k == 0 and ep is not None and at[0] - ep.last < self.gap_ms):
                        if ep is not None:
                            self._close(ep, now)
                        row = scored.iloc[a]
                        ep = Episode(key, str(row.get("well_id", "")), str(row.get("source", "")),
                                     int(row.get("event_class", -1)), int(at[s]), int(at[s]))
                        self.open[key] = ep
                    ep.add(at[s:e], sc[s:e], lb[s:e], str(vers[e - 1]))
                    self.touched[ep.id] = ep
                self.last_seen[key] = now
            if ep is not None and int(t.max()) - ep.last >= self.gap_ms:
                self._close(ep, now)
                ep = None

    def _close(self, ep: Episode, now: float) -> None:
        ep.closed_at = now
        self.touched[ep.id] = ep
        if self.open.get(ep.instance_id) is ep:
            del self.open[ep.instance_id]
        self.last_seen.pop(ep.instance_id, None)
        self.closed_count += 1

    def close_idle(self) -> int:
        """Close episodes whose instance has been silent for ``idle_close_s`` (wall clock)."""
        now = self.clock()
        idle = [k for k, ep in self.open.items() if now - self.last_seen.get(k, now) >= self.idle_close_s]
        for k in idle:
            self._close(self.open[k], now)
        return len(idle)

    def touched_frame(self) -> pd.DataFrame:
        return pd.DataFrame([ep.row() for ep in self.touched.values()])

    def clear_touched(self) -> None:
        self.touched.clear()

    def state(self) -> dict:
        return {k: ep.to_state() for k, ep in self.open.items()}

    def restore(self, state: dict | None) -> None:
        self.open = {k: Episode.from_state(v) for k, v in (state or {}).items()}
        now = self.clock()
        self.last_seen = {k: now for k in self.open}
        self.touched.clear()


@dataclass
class ScoreResult:
    scored: pd.DataFrame  # rows kept, sorted by (instance_id, timestamp), with anomaly_score/is_anomaly/...
    duplicates: int = 0
    stale: int = 0
    model_version: str = ""


class ShardScorer:
    """The scoring state of one shard (instances hash to one shard, so this is per-instance state)."""

    def __init__(self, models: Callable[[], ModelSource | None], gap_s: float = 60.0, idle_close_s: float = 120.0,
                 tail_rows: int | None = None, clock: Callable[[], float] = time.time):
        self.models = models
        self.clock = clock
        self.episodes = EpisodeTracker(gap_s, idle_close_s, clock)
        self.watermarks: dict[str, int] = {}  # instance -> last scored timestamp (ms)
        self.seen_wall: dict[str, float] = {}
        self.tails: pd.DataFrame | None = None
        self._tail_rows_fixed = tail_rows
        self.ref: ModelSource | None = None
        self.scorer: StreamScorer | None = None
        self.swaps = 0

    # ------------------------------------------------------------------ model

    @property
    def tail_rows(self) -> int:
        if self._tail_rows_fixed is not None:
            return self._tail_rows_fixed
        if self.ref is not None:
            return max(0, int(self.ref.model.feature_config.max_window) - 1)
        return 0

    def ensure_model(self) -> ModelSource:
        """Swap to the current champion if it changed (called between micro-batches only)."""
        ref = self.models()
        if ref is None:
            raise RuntimeError("no model loaded")
        if self.ref is None or ref.version != self.ref.version or ref.model is not self.ref.model:
            old = self.ref.version if self.ref is not None else None
            self.ref = ref
            self.scorer = ref.model.stream_scorer()
            if old is not None:
                self.swaps += 1
                warmed = self._warm_from_tails()
                log.info("model swapped between micro-batches",
                         extra={"from": old, "to": ref.version, "warmed_rows": warmed})
        return self.ref

    def _warm_from_tails(self) -> int:
        if self.tails is None or self.tails.empty:
            return 0
        tails = self.tails.groupby("instance_id", sort=False).tail(self.tail_rows) if self.tail_rows else None
        if tails is None or tails.empty:
            return 0
        assert self.scorer is not None  # set together with self.ref in ensure_model
        self.scorer.score(tails)  # outputs discarded: only the feature windows matter
        return len(tails)

    # ------------------------------------------------------------------ scoring

    def warm(self, rows: pd.DataFrame) -> None:
        """Feed rows that were scored before (re-read after a restart) through the windows only."""
        if rows.empty:
            return
        self.ensure_model()
        rows = rows.sort_values(["instance_id", "timestamp"], kind="stable")
        rows = rows[~rows.duplicated(["instance_id", "timestamp"])]
        assert self.scorer is not None  # ensure_model set it
        self.scorer.score(rows)
        self._keep_tails(rows)

    def score(self, rows: pd.DataFrame) -> ScoreResult:
        ref = self.ensure_model()
        if rows.empty:
            return ScoreResult(rows.assign(anomaly_score=[], is_anomaly=[], threshold=[], model_version=[]),
                               model_version=ref.version)
        rows = rows.sort_values(["instance_id", "timestamp"], kind="stable")
        dup = rows.duplicated(["instance_id", "timestamp"], keep="first").to_numpy()
        t = ts_ms(rows["timestamp"])
        wm = rows["instance_id"].map(self.watermarks).to_numpy(dtype="float64", na_value=-np.inf)
        stale = (t <= wm) & ~dup
        keep = ~dup & ~stale
        if not keep.all():
            rows = rows[keep]
            t = t[keep]
        assert self.scorer is not None  # ensure_model set it
        out = self.scorer.score(rows) if len(rows) else None
        if out is None:
            scored = rows.assign(anomaly_score=pd.Series(dtype="float64"), is_anomaly=pd.Series(dtype="int32"))
        else:
            scored = rows.assign(anomaly_score=out["anomaly_score"].to_numpy(),
                                 is_anomaly=out["is_anomaly"].to_numpy().astype("int32"))
        scored["threshold"] = float(ref.model.threshold)
        scored["model_version"] = ref.version
        if len(scored):
            last = pd.Series(t, index=scored.index).groupby(scored["instance_id"].to_numpy()).max()
            self.watermarks.update({str(k): int(v) for k, v in last.items()})
            now = self.clock()
            for k in last.index:
                self.seen_wall[str(k)] = now
            self._keep_tails(rows)
            self.episodes.update(scored)
        return ScoreResult(scored, int(dup.sum()), int(stale.sum()), ref.version)

    def _keep_tails(self, rows: pd.DataFrame) -> None:
        n = self.tail_rows
        if n <= 0:
            return
        cols = [c for c in ("instance_id", "timestamp", *VARIABLE_NAMES) if c in rows.columns]
        new = rows[cols]
        both = new if self.tails is None or self.tails.empty else pd.concat([self.tails, new], ignore_index=True)
        self.tails = both.groupby("instance_id", sort=False).tail(n).reset_index(drop=True)

    # ------------------------------------------------------------------ housekeeping + persistence

    def maintain(self) -> bool:
        """Close idle episodes, forget long-silent instances. True if episodes changed."""
        closed = self.episodes.close_idle()
        now = self.clock()
        silent = [k for k, t in self.seen_wall.items() if now - t >= FORGET_AFTER_S]
        for k in silent:
            self.seen_wall.pop(k, None)
            if self.scorer is not None:
                self.scorer.forget(k)
        if silent and self.tails is not None:
            self.tails = self.tails[~self.tails["instance_id"].isin(silent)]
        return closed > 0

    def state(self) -> dict:
        wm = self.watermarks
        if len(wm) > MAX_INSTANCES_IN_STATE:  # keep the most recently active instances
            recent = sorted(wm, key=lambda k: self.seen_wall.get(k, 0.0))[-MAX_INSTANCES_IN_STATE:]
            wm = {k: wm[k] for k in recent}
        return {"v": 1, "watermarks": wm, "episodes": self.episodes.state()}

    def restore(self, state: dict | None) -> None:
        state = state or {}
        self.watermarks = {str(k): int(v) for k, v in (state.get("watermarks") or {}).items()}
        self.episodes.restore(state.get("episodes"))
