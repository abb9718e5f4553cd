"""Champion resolution and hot reload.

Where the champion comes from, in order:

1. the S3 export manifest ``s3://<models_bucket>/<model_name>/champion.json`` (written last by
   ``petrostream.model_store.export``): files are pulled and verified against their sha256
   (``model_store.pull``) before the model is loaded;
2. when there is no manifest and the MLflow registry is reachable: ``models:/<name>@champion``.

``ModelHolder`` polls the manifest every ``poll_s`` seconds. A change (another version, or other file
checksums) is loaded in the background; the new model becomes ``current()`` atomically, and scorers
pick it up between micro-batches (``inference.scoring.ShardScorer.ensure_model``). A model that fails
to load or verify is not used: the previous one keeps serving and the error is reported on ``/ready``
and ``/model`` and in ``petrostream_model_load_errors_total``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.metrics import Metrics, default_metrics
from petrostream.settings import Settings, get_settings

log = logging.getLogger(__name__)

ALIAS = "champion"


def manifest_identity(manifest: dict) -> str:
    files = json.dumps(manifest.get("files") or {}, sort_keys=True)
    return f"{manifest.get('version')}:{hashlib.sha256(files.encode()).hexdigest()[:16]}"


@dataclass
class LoadedModel:
    model: Any  # petrostream.model.AnomalyModel
    name: str
    version: str
    source: str  # "s3-manifest" | "mlflow-registry" | "local"
    alias: str = ALIAS
    manifest: dict = field(default_factory=dict)
    identity: str = ""
    loaded_at: float = field(default_factory=time.time)

    def describe(self) -> dict:
        m = self.manifest
        return {
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "source": self.source,
            "run_id": m.get("run_id"),
            "metrics": m.get("metrics") or {},
            "exported_at": m.get("exported_at"),
            "exported_by": m.get("exported_by"),
            "uri": f"s3://{m['bucket']}/{m['prefix']}" if m.get("bucket") and m.get("prefix") else m.get("uri"),
            "threshold": float(self.model.threshold),
            "feature_config": self.model.feature_config.to_dict(),
            "metadata": self.model.metadata or {},
            "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at)),
        }


class ModelHolder:
    """The model this process scores with; ``current()`` is lock-free and never half-loaded."""

    def __init__(self, settings: Settings | None = None, poll_s: float = 30.0, metrics: Metrics | None = None,
                 cache_dir: Path | None = None, use_mlflow: bool = True):
        self.settings = settings or get_settings()
        self.name = self.settings.model_name
        self.poll_s = poll_s
        self.metrics = metrics or default_metrics()
        self.cache_dir = cache_dir
        self.use_mlflow = use_mlflow
        self._current: LoadedModel | None = None
        self._lock = threading.Lock()  # one load at a time
        self.last_error: str | None = None
        self._logged_error: str | None = None
        self.last_check = 0.0
        self._thread: threading.Thread | None = None

    def current(self) -> LoadedModel | None:
        return self._current

    def set(self, loaded: LoadedModel) -> None:
        """Install a model directly (tests, local tools)."""
        old = self._current
        self._current = loaded
        if old is not None:
            self.metrics.model_info.remove(name=old.name, version=old.version)
        self.metrics.model_info.set(1, name=loaded.name, version=loaded.version)

    # ------------------------------------------------------------------ resolution

    def refresh(self) -> bool:
        """Check the champion once; load it if it changed. True when a new model was installed."""
        with self._lock:
            self.last_check = time.monotonic()
            self.last_error = None
            try:
                loaded = self._resolve()
                if loaded is not None:
                    loaded.model.self_check()  # a model that cannot score never serves (and the kernel compiles now)
            except Exception as exc:
                msg = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
                if msg != self._logged_error:
                    log.error("champion load failed; keeping the current model",
                              extra={"error": msg, "current": self._current.version if self._current else None})
                self.last_error = self._logged_error = msg
                self.metrics.model_errors.inc()
                return False
            self._logged_error = None
            if loaded is None:
                return False
            first = self._current is None
            self.set(loaded)
            if not first:
                self.metrics.model_reloads.inc()
            log.info("champion loaded" if first else "champion changed: hot reload",
                     extra={"model": loaded.name, "version": loaded.version, "source": loaded.source})
            return True

    def _resolve(self) -> LoadedModel | None:
        from petrostream import model_store

        manifest = model_store.read_manifest(self.name, self.settings, alias=ALIAS)
        if manifest is not None:
            ident = manifest_identity(manifest)
            if self._current is not None and self._current.identity == ident:
                return None
            cache = self.cache_dir or model_store.default_cache_dir()
            local = model_store.pull(manifest, Path(cache), self.settings)  # verifies every sha256
            from petrostream import pyfunc

            model = pyfunc.load(local)
            return LoadedModel(model, manifest.get("name") or self.name, str(manifest["version"]), "s3-manifest",
                               manifest.get("alias") or ALIAS, manifest, ident)
        if self.use_mlflow and self._mlflow_reachable():
            return self._resolve_mlflow()
        if self._current is None:
            self.last_error = "no champion exported yet"
        return None

    def _mlflow_reachable(self) -> bool:
        uri = self.settings.mlflow_tracking_uri
        if uri.startswith("sqlite:///"):
            return Path(uri[len("sqlite:///"):]).is_file()  # never create an empty registry by looking
        if uri.startswith(("http://", "https://", "databricks")):
            return True
        return False

    def _resolve_mlflow(self) -> LoadedModel | None:
        import mlflow
        from mlflow.exceptions import MlflowException

        mlflow.set_tracking_uri(self.settings.mlflow_tracking_uri)
        client = mlflow.MlflowClient()
        try:
            mv = client.get_model_version_by_alias(self.name, ALIAS)
        except MlflowException:
            return None
        ident = f"mlflow:{mv.version}:{mv.run_id}"
        if self._current is not None and self._current.identity == ident:
            return None
        from petrostream import pyfunc

        uri = f"models:/{self.name}@{ALIAS}"
        model = pyfunc.load(uri)
        manifest = {"name": self.name, "version": str(mv.version), "run_id": mv.run_id, "alias": ALIAS, "uri": uri,
                    "metrics": _run_metrics(client, mv.run_id)}
        return LoadedModel(model, self.name, str(mv.version), "mlflow-registry", ALIAS, manifest, ident)

    # ------------------------------------------------------------------ polling

    def start(self, stop: threading.Event) -> threading.Thread:
        """Load now (retrying every few seconds until a champion exists), then poll every ``poll_s``."""

        def loop() -> None:
            while not stop.is_set():
                self.refresh()
                wait = self.poll_s if self._current is not None else min(self.poll_s, 5.0)
                stop.wait(wait)

        self._thread = threading.Thread(target=loop, name="model-poller", daemon=True)
        self._thread.start()
        return self._thread

    def maybe_refresh(self) -> bool:
        """Refresh if ``poll_s`` has passed since the last check (for callers without a thread: Lambda)."""
        if self._current is None or time.monotonic() - self.last_check >= self.poll_s:
            return self.refresh()
        return False

    def wait_loaded(self, timeout: float, stop: threading.Event | None = None) -> bool:
        deadline = time.monotonic() + timeout
        while self._current is None and time.monotonic() < deadline:
            if stop is not None and stop.is_set():
                break
            time.sleep(0.1)
        return self._current is not None


def _run_metrics(client, run_id: str | None) -> dict:
    if not run_id:
        return {}
    try:
        return dict(client.get_run(run_id).data.metrics)
    except Exception:
        return {}
