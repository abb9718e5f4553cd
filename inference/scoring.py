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
Where an episode lives in the lake (``EpisodeTracker.touched_frame``, column ``own_object``): an episode
that was open at a flush (or was restored from a checkpoint, or closed on wall time) has its own object
named by its id, re-written as it changes; an episode that opened and closed on rows between two flushes
(most of them when a backlog is replayed) is written once, closed, in that flush's batch object. Both are
decided by the data alone, so a flush replayed after a crash puts every episode in the same place again.

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
    # where and when it is written (in memory only, not part of the checkpointed state):
    own_object: bool = field(default=False, compare=False)  # lives in <episode_id>.parquet (see EpisodeTracker)
    next_write: float = field(default=float("-inf"), compare=False)  # wall clock before which an open one waits

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


@dataclass
class _Groups:
    """One micro-batch sorted by (instance, time), cut per instance: what ``EpisodeTracker`` needs as arrays."""

    keys: list[str]  # instance id per group
    bounds: np.ndarray  # group g is rows bounds[g]:bounds[g + 1]
    t: np.ndarray  # int64 ms per row
    alarm: np.ndarray  # bool per row
    score: np.ndarray  # float64 per row
    label: np.ndarray  # int64 per row, -1 = none
    version: np.ndarray  # model version per row
    meta: Callable[[int], tuple[str, str, int]]  # group -> (well_id, source, event_class) of its first row


def _groups(scored: pd.DataFrame, codes: np.ndarray | None = None, t: np.ndarray | None = None) -> _Groups:
    """``scored`` sorted by (instance_id, timestamp); ``codes`` (one int per instance) and ``t`` (ms) if known."""
    if codes is None:
        codes = pd.factorize(scored["instance_id"], use_na_sentinel=False)[0]
    bounds = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1], True])
    starts = bounds[:-1]
    keys = [str(k) for k in scored["instance_id"].iloc[starts].tolist()]
    if "label" in scored.columns:
        label = scored["label"].astype("Int64").fillna(-1).to_numpy(dtype="int64")
    else:
        label = np.full(len(scored), -1, dtype=np.int64)
    alarm = scored["is_anomaly"].to_numpy()
    cache: dict[str, list] = {}

    def column(name: str, default: Any) -> list:
        if name not in cache:
            cache[name] = (scored[name].iloc[starts].tolist() if name in scored.columns else [default] * len(starts))
        return cache[name]

    def meta(g: int) -> tuple[str, str, int]:
        return str(column("well_id", "")[g]), str(column("source", "")[g]), int(column("event_class", -1)[g])

    return _Groups(keys, bounds, ts_ms(scored["timestamp"]) if t is None else t,
                   alarm if alarm.dtype == bool else alarm.astype(bool),
                   scored["anomaly_score"].to_numpy(dtype="float64"), label, scored["model_version"].to_numpy(),
                   meta)


def _episode_frame(eps: list[Episode]) -> pd.DataFrame:
    """``Episode.row()`` of each episode, built column-wise, plus ``own_object``."""
    def ms(values: list) -> np.ndarray:
        return np.array(values, dtype="float64").astype("datetime64[ms]")

    labels = [max(ep.labels.items(), key=lambda kv: (kv[1], int(kv[0])))[0] if ep.labels else None for ep in eps]
    return pd.DataFrame({
        "episode_id": [ep.id for ep in eps],
        "instance_id": [ep.instance_id for ep in eps],
        "well_id": [ep.well_id for ep in eps],
        "source": [ep.source for ep in eps],
        "event_class": np.array([int(ep.event_class) for ep in eps], dtype=np.int64),
        "start_ts": np.array([ep.start for ep in eps], dtype="int64").astype("datetime64[ms]"),
        "end_ts": np.array([ep.last for ep in eps], dtype="int64").astype("datetime64[ms]"),
        "duration_s": np.array([(ep.last - ep.start) / 1000.0 for ep in eps], dtype="float64"),
        "n_rows": np.array([int(ep.n) for ep in eps], dtype=np.int64),
        "peak_score": np.array([float(ep.peak) for ep in eps], dtype="float64"),
        "mean_score": np.array([ep.total / ep.n if ep.n else np.nan for ep in eps], dtype="float64"),
        "model_version": [ep.version for ep in eps],
        "label": np.array([np.nan if v is None else int(v) for v in labels], dtype="float64"),
        "closed_at": ms([np.nan if ep.closed_at is None else round(ep.closed_at * 1000) for ep in eps]),
        "own_object": np.array([ep.own_object or ep.closed_at is None for ep in eps], dtype=bool),
    })


class EpisodeTracker:
    """Episodes of one shard's instances, and which of them to write when.

    ``touched_frame()`` / ``clear_touched()`` drain the episodes to write at a flush, one row each, with
    ``own_object``: True -> the episode's own object ``<episode_id>.parquet`` (overwritten by each later
    version); False -> the flush's batch object (only for an episode that opened and closed on rows since the
    previous flush: it was never written before and will never change again). An episode still open when a
    flush ends gets its own object from then on, as does one restored from a checkpoint or closed on wall time
    (``close_idle``): none of them can ever be in a batch object, so the lake holds every episode once.

    ``write_interval_s`` throttles the writes of OPEN episodes (constructor default 0: every flush writes every
    episode that changed; the service passes its flush interval, ``petrostream serve --episode-write-s``). With
    an interval, a new episode is written at the next flush (an alarm is never held back) and its later open
    versions at most once per interval (wall clock); the lake shows the previous version until then. Closed
    episodes are never held back (written at the next flush), and ``maintain`` asks for a write
    (``has_due_writes``) when a held-back version falls due without new records. A graceful stop (lease
    released or handed over, shard end, service shutdown) writes everything held back after its final flush:
    ``touched_frame(drain=True)`` (``ScoringProcessor.drain``); the versions written then are those of the
    state just checkpointed, as no row was scored since. After ``restore`` (a restart, a new lease owner) the
    restored open episodes are written at the first flush, as a previous owner that crashed may have held
    their latest version back.
    """

    def __init__(self, gap_s: float = 60.0, idle_close_s: float = 120.0, clock: Callable[[], float] = time.time,
                 write_interval_s: float = 0.0):
        self.gap_ms = int(gap_s * 1000)
        self.idle_close_s = idle_close_s
        self.clock = clock
        self.write_interval_s = float(write_interval_s)
        self.open: dict[str, Episode] = {}
        self.last_seen: dict[str, float] = {}  # wall clock of the last row per instance with an open episode
        self.touched: dict[str, Episode] = {}  # episode id -> episode changed since it was last written
        self.closed_count = 0
        self._draining: list[Episode] | None = None

    def update(self, scored: pd.DataFrame) -> None:
        """``scored`` sorted by (instance_id, timestamp); columns is_anomaly, anomaly_score, label, ..."""
        if scored.empty:
            return
        self._update(_groups(scored))

    def _update(self, g: _Groups) -> None:
        now = self.clock()
        gap = self.gap_ms
        bounds = g.bounds
        for i, key in enumerate(g.keys):  # per instance, not per row
            a, b = int(bounds[i]), int(bounds[i + 1])
            t, alarm = g.t[a:b], g.alarm[a:b]
            ep = self.open.get(key)
            if ep is not None:
                self.last_seen[key] = now
            if alarm.any():
                at, sc, lb = t[alarm], g.score[a:b][alarm], g.label[a:b][alarm]
                vers = g.version[a:b][alarm]
                cuts = np.flatnonzero(np.diff(at) >= gap) + 1
                for k, (s, e) in enumerate(zip(np.r_[0, cuts].tolist(), np.r_[cuts, len(at)].tolist(), strict=True)):
                    if not (k == 0 and ep is not None and at[0] - ep.last < gap):
                        if ep is not None:
                            self._close(ep, now)
                        well, source, event_class = g.meta(i)
                        # a new alarm is news: its first version goes out at the next flush, unthrottled
                        ep = Episode(key, well, source, event_class, int(at[s]), int(at[s]))
                        self.open[key] = ep
                    ep.add(at[s:e], sc[s:e], lb[s:e], str(vers[e - 1]))
                    self.touched[ep.id] = ep
                self.last_seen[key] = now
            if ep is not None and int(t.max()) - ep.last >= gap:
                self._close(ep, now)
                ep = None

    def _close(self, ep: Episode, now: float, idle: bool = False) -> None:
        ep.closed_at = now
        if idle:  # wall time, not data: a replay could close it elsewhere, so it never goes to a batch object
            ep.own_object = True
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
            self._close(self.open[k], now, idle=True)
        return len(idle)

    def _due(self, now: float) -> list[Episode]:
        return [ep for ep in self.touched.values() if ep.closed_at is not None or now >= ep.next_write]

    def has_due_writes(self) -> bool:
        """True if a held-back open version is due (throttled re-writes only; closed ones go at the next flush)."""
        if self.write_interval_s <= 0 or not self.touched:
            return False
        now = self.clock()
        return any(ep.closed_at is None and now >= ep.next_write for ep in self.touched.values())

    def unwritten(self) -> int:
        """Episodes changed since they were last written (held back, or not flushed yet)."""
        return len(self.touched)

    def touched_frame(self, drain: bool = False) -> pd.DataFrame:
        """The episodes to write now (one row each, ``own_object`` says where); ``clear_touched`` marks them
        written. Open episodes whose write is held back (``write_interval_s``) are not in it, unless ``drain``
        (a graceful stop: every changed episode, held back or not)."""
        eps = self._draining = list(self.touched.values()) if drain else self._due(self.clock())
        if not eps:
            return pd.DataFrame()
        return _episode_frame(eps)

    def clear_touched(self) -> None:
        """The episodes of the last ``touched_frame`` are written; every episode still open now has its own
        object from here on (it may have been written as open, or will be)."""
        now = self.clock()
        eps = self._draining if self._draining is not None else self._due(now)
        self._draining = None
        for ep in eps:
            if self.touched.get(ep.id) is ep:
                del self.touched[ep.id]
            if ep.closed_at is None:
                ep.next_write = now + self.write_interval_s
        for ep in self.open.values():
            ep.own_object = True

    def state(self) -> dict:
        return {k: ep.to_state() for k, ep in self.open.items()}

    def restore(self, state: dict | None) -> None:
        self.open = {k: Episode.from_state(v) for k, v in (state or {}).items()}
        now = self.clock()
        self.last_seen = {k: now for k in self.open}
        self.touched.clear()
        self._draining = None
        for ep in self.open.values():
            ep.own_object = True  # it was open at the checkpoint: it has (or may have) its own object
            if self.write_interval_s > 0:  # the previous owner may have held its latest version back
                self.touched[ep.id] = ep


@dataclass
class ScoreResult:
    scored: pd.DataFrame  # rows kept, sorted by (instance_id, timestamp), with anomaly_score/is_anomaly/...
    duplicates: int = 0
    stale: int = 0
    model_version: str = ""


class ShardScorer:
    """The scoring state of one shard (instances hash to one shard, so this is per-instance state).

    ``episode_write_s``: see ``EpisodeTracker.write_interval_s`` (0: every changed episode at every flush)."""

    def __init__(self, models: Callable[[], ModelSource | None], gap_s: float = 60.0, idle_close_s: float = 120.0,
                 tail_rows: int | None = None, clock: Callable[[], float] = time.time, episode_write_s: float = 0.0):
        self.models = models
        self.clock = clock
        self.episodes = EpisodeTracker(gap_s, idle_close_s, clock, write_interval_s=episode_write_s)
        self.watermarks: dict[str, int] = {}  # instance -> last scored timestamp (ms)
        self.seen_wall: dict[str, float] = {}
        self.tails: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # instance -> (timestamps, values (rows, V))
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
        n = self.tail_rows
        if not self.tails or n <= 0:
            return 0
        tails = self.tail_frame()
        tails = tails[tails.groupby("instance_id", sort=False).cumcount(ascending=False) < n]
        assert self.scorer is not None  # set together with self.ref in ensure_model
        self.scorer.score(tails)  # outputs discarded: only the feature windows matter
        return len(tails)

    # ------------------------------------------------------------------ scoring

    def warm(self, rows: pd.DataFrame) -> None:
        """Feed rows that were scored before (re-read after a restart) through the windows only."""
        if rows.empty:
            return
        self.ensure_model()
        rows, codes, _t, dup = self._arrange(rows)
        if dup.any():
            rows, codes = rows[~dup], codes[~dup]
        assert self.scorer is not None  # ensure_model set it
        self.scorer.score(rows)
        self._keep_tails(rows, codes)

    @staticmethod
    def _arrange(rows: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
        """``rows`` sorted by (instance_id, timestamp) (stable; a copy only if they were not, else ``rows``
        itself), with per row: instance code (in instance order), timestamp (ms) and "exact (instance,
        timestamp) repeat of an earlier row" (the first one is kept). No pandas sort, no string comparisons."""
        codes, uniques = pd.factorize(rows["instance_id"], sort=True)
        if (codes < 0).any():  # a missing id sorts last, as in sort_values
            codes = np.where(codes < 0, len(uniques), codes)
        ts = pd.to_datetime(rows["timestamp"]).to_numpy()
        exact = ts.view("int64")
        if len(codes) > 1 and not bool(np.all((codes[1:] > codes[:-1]) | ((codes[1:] == codes[:-1])
                                                                           & (exact[1:] >= exact[:-1])))):
            order = np.lexsort((exact, codes))
            rows, codes, ts, exact = rows.take(order), codes[order], ts[order], exact[order]
        dup = np.zeros(len(codes), dtype=bool)
        dup[1:] = (codes[1:] == codes[:-1]) & (exact[1:] == exact[:-1])
        return rows, codes, ts.astype("datetime64[ms]").view("int64"), dup

    def score(self, rows: pd.DataFrame) -> ScoreResult:
        ref = self.ensure_model()
        if rows.empty:
            return ScoreResult(rows.assign(anomaly_score=[], is_anomaly=[], threshold=[], model_version=[]),
                               model_version=ref.version)
        given = rows
        rows, codes, t, dup = self._arrange(rows)
        # stale: not newer than the last scored timestamp of its instance (one dict lookup per instance)
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        names = [str(k) for k in rows["instance_id"].iloc[starts].tolist()]
        marks = np.array([self.watermarks.get(k, -np.inf) for k in names], dtype="float64")
        wm = np.repeat(marks, np.diff(np.r_[starts, len(codes)]))
        stale = (t <= wm) & ~dup
        keep = ~dup & ~stale
        n_dup, n_stale = int(dup.sum()), int(stale.sum())
        if not keep.all():
            rows, codes, t = rows[keep], codes[keep], t[keep]
        elif rows is given:
            rows = rows.copy(deep=False)  # the caller's frame: add columns to a (copy-on-write) copy, not to it
        assert self.scorer is not None  # ensure_model set it
        if len(rows):
            out = self.scorer.score(rows)
            rows["anomaly_score"] = out["anomaly_score"].to_numpy()
            rows["is_anomaly"] = out["is_anomaly"].to_numpy().astype("int32")
        else:
            rows["anomaly_score"] = pd.Series(dtype="float64")
            rows["is_anomaly"] = pd.Series(dtype="int32")
        rows["threshold"] = float(ref.model.threshold)
        rows["model_version"] = ref.version
        if len(rows):
            ends = np.flatnonzero(np.r_[codes[1:] != codes[:-1], True])  # last row per instance: its latest time
            last = t[ends].tolist()
            keys = [str(k) for k in rows["instance_id"].iloc[ends].tolist()]
            self.watermarks.update(zip(keys, last, strict=True))
            now = self.clock()
            self.seen_wall.update(dict.fromkeys(keys, now))
            self._keep_tails(rows, codes)
            self.episodes._update(_groups(rows, codes, t))
        return ScoreResult(rows, n_dup, n_stale, ref.version)

    def _keep_tails(self, rows: pd.DataFrame, codes: np.ndarray) -> None:
        """Keep the last ``tail_rows`` rows per instance (``rows`` sorted by instance, then time; ``codes``):
        timestamps and every 3W variable (absent -> NaN) as arrays, gathered once per micro-batch."""
        n = self.tail_rows
        if n <= 0 or not len(rows):
            return
        bounds = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1], True])
        starts, stops = bounds[:-1], bounds[1:]
        lengths = stops - np.maximum(starts, stops - n)
        offsets = np.r_[0, np.cumsum(lengths)]
        take = np.repeat(stops - lengths - offsets[:-1], lengths) + np.arange(offsets[-1])
        ts = rows["timestamp"].to_numpy()[take]
        values = np.full((len(take), len(VARIABLE_NAMES)), np.nan)
        for j, name in enumerate(VARIABLE_NAMES):
            if name in rows.columns:
                values[:, j] = pd.to_numeric(rows[name], errors="coerce").to_numpy(
                    dtype=np.float64, na_value=np.nan)[take]
        keys = [str(k) for k in rows["instance_id"].iloc[starts].tolist()]
        for i, key in enumerate(keys):
            t_new, v_new = ts[offsets[i] : offsets[i + 1]], values[offsets[i] : offsets[i + 1]]
            old = self.tails.get(key)
            if old is not None and len(t_new) < n:  # fewer new rows than the window: the old tail goes on
                t_new = np.concatenate([old[0], t_new])[-n:]
                v_new = np.concatenate([old[1], v_new])[-n:]
            self.tails[key] = (t_new, v_new)

    def tail_frame(self) -> pd.DataFrame:
        """The kept tails as rows (instance_id, timestamp, the 3W variables), instance after instance."""
        if not self.tails:
            return pd.DataFrame(columns=["instance_id", "timestamp", *VARIABLE_NAMES])
        keys = list(self.tails)
        sizes = [len(self.tails[k][0]) for k in keys]
        values = np.concatenate([self.tails[k][1] for k in keys])
        return pd.DataFrame({"instance_id": np.repeat(np.array(keys, dtype=object), sizes),
                             "timestamp": np.concatenate([self.tails[k][0] for k in keys]),
                             **{name: values[:, j] for j, name in enumerate(VARIABLE_NAMES)}})

    # ------------------------------------------------------------------ housekeeping + persistence

    def maintain(self) -> bool:
        """Close idle episodes, forget long-silent instances. True if episodes are to be written."""
        closed = self.episodes.close_idle()
        now = self.clock()
        silent = [k for k, t in self.seen_wall.items() if now - t >= FORGET_AFTER_S]
        for k in silent:
            self.seen_wall.pop(k, None)
            if self.scorer is not None:
                self.scorer.forget(k)
        for k in silent:
            self.tails.pop(k, None)
        return closed > 0 or self.episodes.has_due_writes()

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
