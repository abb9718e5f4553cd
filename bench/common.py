"""What every benchmark section shares: sizes, clocks, the run context (temp dir, local emulator, data,
the served model and the reference forest), child processes with memory sampling, machine facts."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_NAME = "petrostream-bench"
MODEL_VERSION = "1"


def say(section: str, msg: str) -> None:
    """One progress line on stderr."""
    print(f"[bench {section}] {msg}", file=sys.stderr, flush=True)


def rnd(x: float | None, digits: int = 3) -> float | None:
    if x is None:
        return None
    x = float(x)
    if x != x or x in (float("inf"), float("-inf")):
        return None
    return round(x, digits)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return rnd(a / b, 2)


def detector_facts(model) -> dict[str, Any]:
    """What an ``AnomalyModel``'s detector is (class, forest size) and what it reads (features, windows)."""
    det = model.detector
    facts: dict[str, Any] = {"detector": type(det).__name__, "features": len(model.feature_names),
                             "windows": list(model.feature_config.windows)}
    for attr, key in (("n_estimators", "trees"), ("_max_samples", "max_samples"), ("max_features", "max_features")):
        if hasattr(det, attr):
            facts[key] = getattr(det, attr)
    return facts


def describe_model(facts: dict[str, Any]) -> str:
    """``detector_facts`` in a few words: "IsolationForest, 200 trees x 512 samples, 41 features"."""
    forest = (f", {facts['trees']} trees x {facts.get('max_samples', '?')} samples" if "trees" in facts else "")
    return f"{facts['detector']}{forest}, {facts['features']} features"


def export_facts(manifest: dict[str, Any]) -> dict[str, int]:
    """Size of a ``model_store`` export, from its manifest."""
    files = manifest["files"].values()
    return {"export_bytes": int(sum(f["bytes"] for f in files)), "export_files": len(files)}


# ---------------------------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class Sizes:
    """How much work each section does (full run vs ``--smoke``)."""

    producer_per_row_instances: int = 3
    producer_per_row_rows: int = 500  # per instance (3 x 500 = 1,500 rows: moto slows as a stream fills)
    producer_batched_instances: int = 24
    producer_batched_rows: int | None = None  # per instance (None: whole instances)
    inference_instances: int = 24
    inference_rows: int | None = None
    inference_runs: int = 3  # service path runs (best counts, as for the bare model)
    inference_per_row_rows: int = 1_000
    inference_per_record_rows: int = 6_000
    serve_1x_seconds: int = 90  # replay window at real time (every sample instance interleaved)
    serve_1x_instances: int | None = None  # None: all
    serve_max_instances: int = 24
    serve_max_rows: int | None = None
    serve_flush_s: float = 10.0  # the service default
    serve_poll_s: float = 1.0
    serve_idle_exit_s: float = 15.0
    feature_instances: int = 40
    feature_rows: int | None = None
    naive_feature_rows: int = 1_500
    query_rows: int = 10_000_000
    query_wells: int = 12
    query_repeats: int = 3
    pandas_repeats: int = 2
    model_load_repeats: int = 3
    train_in_run: bool = True
    # --smoke instead: a tiny real training (2 trials, short instances), only to serve what it registers
    tiny_train_args: tuple[str, ...] = ("--trials", "2", "--families", "iforest",
                                        "--max-rows-per-instance", "600", "--eval-stride", "10")


FULL = Sizes()
SMOKE = Sizes(
    producer_per_row_instances=2, producer_per_row_rows=50, producer_batched_instances=3, producer_batched_rows=1_000,
    inference_instances=3, inference_rows=1_500, inference_runs=2, inference_per_row_rows=60,
    inference_per_record_rows=600,
    serve_1x_seconds=6, serve_1x_instances=6, serve_max_instances=3, serve_max_rows=1_000, serve_flush_s=1.0,
    serve_poll_s=0.2, serve_idle_exit_s=2.0, feature_instances=2, feature_rows=3_000, naive_feature_rows=80,
    query_rows=50_000, query_wells=4, query_repeats=1, pandas_repeats=1, model_load_repeats=1, train_in_run=False,
)


# ---------------------------------------------------------------------------------------------- clocks


@dataclass
class Measured:
    wall: float = 0.0
    cpu: float = 0.0  # CPU seconds of this process (all threads): the per-core clock


class measure:
    """``with measure() as m: ...`` -> m.wall, m.cpu (seconds)."""

    def __enter__(self) -> Measured:
        self.m = Measured()
        self._w, self._c = time.perf_counter(), time.process_time()
        return self.m

    def __exit__(self, *exc) -> None:
        self.m.wall = time.perf_counter() - self._w
        self.m.cpu = time.process_time() - self._c


def percentiles(values, qs: Iterable[float] = (50, 95, 99)) -> dict[str, float | None]:
    import numpy as np

    arr = np.asarray(values, dtype="float64")
    arr = arr[~np.isnan(arr)]
    out: dict[str, float | None] = {}
    for q in qs:
        out[f"p{int(q)}"] = rnd(float(np.percentile(arr, q))) if len(arr) else None
    out["max"] = rnd(float(arr.max())) if len(arr) else None
    out["mean"] = rnd(float(arr.mean())) if len(arr) else None
    return out


# ---------------------------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _version(mod: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(mod)
    except Exception:
        return None


def machine_facts() -> dict[str, Any]:
    load = None
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_avg_at_start": load,
        "versions": {m: _version(m) for m in ("numpy", "pandas", "pyarrow", "scikit-learn", "duckdb", "mlflow",
                                              "boto3", "moto")},
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# ---------------------------------------------------------------------------------------------- child processes


def _status_kb(pid: int) -> dict[str, int]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0])
    except (OSError, ValueError):
        pass
    return out


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a live process (from /proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **{k: str(v) for k, v in extra.items()}}
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def cli(*args: str) -> list[str]:
    """The ``petrostream`` command of this checkout (run with cwd = repository root)."""
    return [sys.executable, "-m", "petrostream.cli", *args]


class Child:
    """A child process (own session) whose memory is sampled from /proc until it exits, reaped with wait4 for
    its CPU seconds. stderr goes to ``log``, stdout to ``log`` with suffix .out.

    Peak memory is the sampled VmHWM (peak RSS since exec), not ``ru_maxrss``: on Linux a child's ru_maxrss
    also counts the parent's pages it had before exec (the fork copy), so it reports the parent's size."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None, sample_s: float = 0.5,
                 tree: bool = False):
        self.args, self.log, self.sample_s, self.tree = args, log, sample_s, tree
        self.out_path = log.with_suffix(".out")
        self._err = open(log, "wb")  # noqa: SIM115 - closed when the child is reaped
        self._out = open(self.out_path, "wb")  # noqa: SIM115
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=self._out, stderr=self._err, env=env or child_env(),
                                     cwd=REPO_ROOT, start_new_session=True)
        self.pid = self.proc.pid
        self.samples: list[tuple[float, int, int]] = []  # (t, rss kB of the process, rss kB of its tree)
        self.hwm_kb = 0
        self.tree_peak_kb = 0
        self.returncode: int | None = None
        self.rusage = None
        self.wall = 0.0
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"child-{self.pid}", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        st = _status_kb(self.pid)
        if not st:
            return
        rss = st.get("VmRSS", 0)
        self.hwm_kb = max(self.hwm_kb, st.get("VmHWM", 0), rss)
        total = rss
        if self.tree:
            total += sum(_status_kb(p).get("VmRSS", 0) for p in _descendants(self.pid))
        self.tree_peak_kb = max(self.tree_peak_kb, total)
        self.samples.append((time.monotonic() - self.t0, rss, total))

    def _loop(self) -> None:
        while True:
            try:
                pid, status, ru = os.wait4(self.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status, ru = self.pid, 0, None
            if pid:
                self.wall = time.monotonic() - self.t0
                self.returncode = os.waitstatus_to_exitcode(status) if ru is not None else -1
                self.rusage = ru
                self.proc.returncode = self.returncode  # reaped here: keep Popen quiet
                self._err.close()
                self._out.close()
                self.done.set()
                return
            self._sample()
            time.sleep(self.sample_s)

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM the child's session, SIGKILL after ``grace`` seconds."""
        if self.done.is_set():
            return
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        if not self.wait(grace):
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait(10)

    @property
    def cpu_s(self) -> float | None:
        return None if self.rusage is None else self.rusage.ru_utime + self.rusage.ru_stime

    def stdout(self) -> str:
        try:
            return self.out_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, n: int = 5) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(lines[-n:])[-800:]

    def memory(self) -> dict[str, Any]:
        rss = [s[1] for s in self.samples]
        return {
            "peak_rss_mib": rnd(max(self.hwm_kb, self.tree_peak_kb) / 1024, 1),  # VmHWM (+ children if tree)
            "mean_rss_mib": rnd(sum(rss) / len(rss) / 1024, 1) if rss else None,
            "samples": len(rss),
            **({"process_peak_rss_mib": rnd(self.hwm_kb / 1024, 1)} if self.tree else {}),
        }


# ---------------------------------------------------------------------------------------------- run context


def _has_instances(d: Path) -> bool:
    return d.is_dir() and any(p.parent.name.isdigit() for p in d.glob("*/*.parquet"))


def find_sample(explicit: Path | None = None) -> Path | None:
    """The real 3W sample: --data, $PETROSTREAM_SAMPLE_DIR, or ../shared/data/3w next to the repository."""
    cands = [explicit] if explicit else []
    env = os.environ.get("PETROSTREAM_SAMPLE_DIR")
    cands += [Path(env)] if env else []
    cands += [REPO_ROOT.parent / "shared" / "data" / "3w", REPO_ROOT.parent.parent / "shared" / "data" / "3w"]
    for c in cands:
        if c is not None and _has_instances(Path(c)):
            return Path(c).resolve()
    return None


@dataclass
class BenchModel:
    name: str
    version: str
    model: Any  # petrostream.model.AnomalyModel
    model_dir: Path
    manifest: dict
    facts: dict = field(default_factory=dict)


class Context:
    """One benchmark run: temp dir, the local emulator, the data, the models, shared results."""

    def __init__(self, smoke: bool, data: Path | None = None, full_training: bool = False, keep_tmp: bool = False):
        self.smoke = smoke
        self.sizes = SMOKE if smoke else FULL
        self.full_training = full_training
        self.keep_tmp = keep_tmp
        self.tmp = Path(tempfile.mkdtemp(prefix="petrostream-bench-"))
        self.notes: list[str] = []
        self.emulator = None
        self._data_arg = data
        self._data: Path | None = None
        self.data_facts: dict[str, Any] = {}
        self._infos: list | None = None
        self._reference: BenchModel | None = None
        self._served: BenchModel | None = None
        self.cache: dict[str, Any] = {}  # results shared between sections (e.g. the serve runs)

    # ------------------------------------------------------------------ environment + emulator

    def setup(self) -> None:
        from petrostream import aws, local
        from petrostream.settings import get_settings

        for k in ("PETROSTREAM_LAKE_DIR", "PETROSTREAM_QUERY_BACKEND", "AWS_PROFILE", "AWS_ENDPOINT_URL_S3",
                  "PETROSTREAM_STREAM_NAME", "PETROSTREAM_CURATED_BUCKET"):
            os.environ.pop(k, None)
        os.environ.update({
            "PETROSTREAM_STATE_DIR": str(self.tmp / "state"),
            "PETROSTREAM_MODEL_NAME": MODEL_NAME,
            # a registry that does not exist: the service must take the exported (S3) champion
            "PETROSTREAM_MLFLOW_TRACKING_URI": f"sqlite:///{self.tmp / 'no-registry' / 'mlflow.db'}",
            "PETROSTREAM_MODEL_CACHE": str(self.tmp / "model-cache"),
            "PETROSTREAM_LOG_FORMAT": "json",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "GX_ANALYTICS_ENABLED": "false",
        })
        get_settings.cache_clear()
        self.emulator = local.start(port=local.free_port(), state_dir=self.tmp / "emulator")
        aws.use_local_endpoint(self.emulator.endpoint)
        get_settings.cache_clear()
        local.bootstrap()

    def close(self) -> None:
        from petrostream import local

        if self.emulator is not None:
            local.stop(state_dir=self.tmp / "emulator")
            self.emulator = None
        if not self.keep_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def fresh_stream(self, prefix: str, shards: int = 2) -> str:
        from petrostream import local

        name = f"bench-{prefix}-{uuid.uuid4().hex[:6]}"
        local.ensure_stream(name, shards)
        return name

    def fresh_bucket(self, prefix: str) -> str:
        from petrostream.aws import client

        name = f"bench-{prefix}-{uuid.uuid4().hex[:6]}"
        client("s3").create_bucket(Bucket=name)
        return name

    # ------------------------------------------------------------------ data

    @property
    def data(self) -> Path:
        if self._data is None:
            if self._data_arg is not None and not _has_instances(Path(self._data_arg)):
                raise SystemExit(f"--data {self._data_arg}: no 3W instances (<class>/<instance>.parquet) there")
            found = find_sample(self._data_arg)
            if found is not None:
                self._data = found
                self.data_facts = {"kind": "real 3W sample", "dir": str(found)}
            else:
                dest = self.tmp / "synth"
                args = ["data", "synth", "--dest", str(dest)] + (["-k", "2", "--hours", "0.5"] if self.smoke else [])
                say("setup", f"real 3W sample not found: synthesising a SYNTHETIC set in {dest}")
                subprocess.run(cli(*args), cwd=REPO_ROOT, check=True, capture_output=True, env=child_env())
                self._data = dest
                self.data_facts = {"kind": "SYNTHETIC (petrostream data synth): real 3W sample not found",
                                   "dir": str(dest)}
                self.notes.append("The real 3W sample was not found: every figure comes from SYNTHETIC data "
                                  "(`petrostream data synth`).")
            infos = self.infos
            self.data_facts.update({"instances": len(infos), "classes": sorted({i.event_class for i in infos}),
                                    "wells": len({i.well_id for i in infos if i.source == "REAL"})})
            rows = _count_rows([i.path for i in infos])
            if rows is not None:
                self.data_facts["rows"] = rows
        return self._data

    @property
    def infos(self) -> list:
        if self._infos is None:
            from petrostream.dataset import discover

            self._infos = discover(self.data)
        return self._infos

    def pick(self, n: int | None, classes: Iterable[int] | None = None) -> list:
        """``n`` instances taken round-robin over the event classes (deterministic), or all of them."""
        infos = [i for i in self.infos if classes is None or i.event_class in set(classes)]
        if n is None or n >= len(infos):
            return infos
        by_class: dict[int, list] = {}
        for i in infos:
            by_class.setdefault(i.event_class, []).append(i)
        out: list = []
        while len(out) < n:
            for c in sorted(by_class):
                if by_class[c] and len(out) < n:
                    out.append(by_class[c].pop(0))
        return out

    # ------------------------------------------------------------------ the models

    def served_model(self) -> BenchModel:
        """The model the product serves: what ``petrostream train`` registers (``make train``'s quick profile;
        ``--smoke``: a tiny training), exported to the emulator's models bucket by ``petrostream export`` and
        loaded from there as the service loads its champion. Every service figure uses it. Built once per run;
        if training fails, the reference forest stands in (said so in the results)."""
        if self._served is None:
            from bench.training import served_model

            self._served = served_model(self)
        return self._served

    def reference_model(self, export: bool = False) -> BenchModel:
        """The reference forest: sklearn's defaults (100 trees x 256 samples) on every feature, fit on normal
        rows. The cheapest forest per row, so the one where the service's own work weighs most. ``export``: also
        export it as the champion (only when it stands in for the served model)."""
        if self._reference is None:
            self._reference = _build_reference(self)
        if export and not self._reference.manifest:
            from petrostream import model_store

            ref = self._reference
            ref.manifest = model_store.export(ref.model_dir, name=MODEL_NAME, version=MODEL_VERSION, run_id=None,
                                              metrics={})
            ref.facts.update(export_facts(ref.manifest))
        return self._reference


def _count_rows(paths: list[Path]) -> int | None:
    try:
        import pyarrow.parquet as pq

        return int(sum(pq.ParquetFile(p).metadata.num_rows for p in paths))
    except Exception:
        return None


def _build_reference(ctx: Context) -> BenchModel:
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import IsolationForest

    from petrostream import pyfunc
    from petrostream.dataset import read_instance
    from petrostream.features import FeatureConfig, feature_matrix
    from petrostream.model import AnomalyModel

    say("setup", "fitting the reference forest (sklearn defaults, on normal rows of the data) ...")
    per_instance, want_rows, max_instances = 3000, 24_000, 8
    frames, used = [], []
    for info in sorted(ctx.infos, key=lambda i: (i.event_class not in (0, 1, 2, 6), i.event_class, i.path.name)):
        df = read_instance(info)
        normal = df[df["class"].fillna(-1).eq(0)] if "class" in df else df.iloc[0:0]
        if len(normal) < 300:
            continue
        frames.append(normal.head(per_instance).reset_index().assign(instance_id=info.instance_id))
        used.append(info.instance_id)
        if len(frames) >= max_instances or sum(map(len, frames)) >= want_rows:
            break
    fit_on = "normal rows (label 0)"
    if sum(map(len, frames)) < 1000:
        fit_on = "first rows (too few normal rows in the data)"
        frames = [read_instance(i).head(per_instance).reset_index().assign(instance_id=i.instance_id)
                  for i in ctx.pick(4)]
        used = [f["instance_id"].iloc[0] for f in frames]
    train = pd.concat(frames, ignore_index=True)
    config = FeatureConfig()
    X = feature_matrix(train, config)
    det = IsolationForest(n_estimators=100, max_samples=256, random_state=0).fit(X)
    scores = -det.score_samples(X)
    model = AnomalyModel(config, det, float(np.quantile(scores, 0.99)),
                         metadata={"purpose": "benchmark reference", "trained_on": used})
    model_dir = pyfunc.save_model(model, ctx.tmp / "reference-model", input_example_rows=None)
    facts = {
        "source": "reference forest (sklearn defaults, fit by the bench)",
        **detector_facts(model),
        "fit_rows": len(train),
        "fit_on": fit_on,
        "fit_instances": len(used),
    }
    say("setup", f"reference forest: {facts['features']} features, {facts['fit_rows']:,} fit rows")
    return BenchModel(MODEL_NAME, MODEL_VERSION, model, Path(model_dir), {}, facts)


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)
