"""The inference process: model holder + Kinesis consumer threads + HTTP API, with a graceful stop.

SIGTERM (ECS stop, Fargate Spot interruption) or SIGINT: stop reading, flush every shard's buffer,
checkpoint, write the open-episode versions held back by ``--episode-write-s``, release the leases (other
workers take them at once), stop the API, exit 0 — all within ``shutdown_s`` (default 90 s, inside the
120 s stopTimeout / Spot notice). ``--exit-when-idle`` ends the same way.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from inference.consumer import Consumer, ConsumerConfig, default_worker_id
from inference.metrics import Metrics, default_metrics
from inference.model_loader import ModelHolder
from petrostream.errors import UserError
from petrostream.settings import Settings, get_settings

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)


@dataclass
class ServeOptions:
    worker_id: str = field(default_factory=default_worker_id)
    stream: str | None = None
    flush_s: float = 10.0
    max_rows: int = 5000
    limit: int = 1000
    api: bool = True
    host: str | None = None
    port: int | None = None
    exit_when_idle: float | None = None
    model_poll_s: float = 30.0
    lease_s: float = 10.0
    poll_s: float = 1.0
    shard_sync_s: float = 30.0
    gap_s: float = 60.0
    episode_idle_s: float = 120.0
    episode_write_s: float | None = None  # re-write an open episode at most every S s; None: flush_s; 0: every flush
    shutdown_s: float = 90.0
    max_leases: int = 0

    def episode_write_interval(self) -> float:
        """``episode_write_s`` (default: the flush interval), validated: a finite number >= 0."""
        value = self.flush_s if self.episode_write_s is None else self.episode_write_s
        if not (math.isfinite(value) and value >= 0):
            raise UserError(f"--episode-write-s must be a number >= 0 (0: at every flush), got {value}")
        return float(value)


class Service:
    """One process: ``run()`` blocks until stopped (signal, ``stop()``, or idle exit); returns an exit code."""

    def __init__(self, opts: ServeOptions, settings: Settings | None = None, metrics: Metrics | None = None,
                 archive: bool = False):
        self.opts = opts
        self.settings = settings or get_settings()
        self.metrics = metrics or default_metrics()
        self.archive = archive
        self.stop_event = threading.Event()
        self.holder: ModelHolder | None = None
        self.consumer: Consumer | None = None
        self.server: uvicorn.Server | None = None
        self._server_thread: threading.Thread | None = None
        self.exit_reason = ""

    @property
    def stream(self) -> str:
        return self.opts.stream or self.settings.stream_name

    def stop(self, reason: str = "stop requested") -> None:
        if not self.stop_event.is_set():
            self.exit_reason = reason
            log.info("stopping", extra={"reason": reason})
        self.stop_event.set()

    def _signals(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}
        old = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            old[sig] = signal.signal(sig, lambda signum, _frame: self.stop(signal.Signals(signum).name))
        return old

    # ------------------------------------------------------------------ wiring

    def _check_lease_table(self) -> None:
        from botocore.exceptions import EndpointConnectionError, NoCredentialsError

        from petrostream.aws import client, endpoint_url

        try:
            client("dynamodb", self.settings).describe_table(TableName=self.settings.lease_table)
        except (NoCredentialsError, EndpointConnectionError) as exc:
            where = endpoint_url() or "AWS"
            raise UserError(f"cannot reach {where} ({type(exc).__name__}); start the emulator (petrostream local up "
                            "and export AWS_ENDPOINT_URL) or configure AWS credentials") from None
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                raise UserError(f"lease table {self.settings.lease_table!r} does not exist "
                                "(petrostream local up, or the Terraform stack)") from None
            raise

    def build(self) -> None:
        from inference.scoring import ShardScorer
        from inference.sink import ArchiveProcessor, LakeSink, ScoringProcessor

        o = self.opts
        episode_write_s = o.episode_write_interval()
        self._check_lease_table()
        sink = LakeSink()
        cfg = ConsumerConfig(
            stream=self.stream, worker_id=o.worker_id, limit=o.limit, flush_s=o.flush_s, max_rows=o.max_rows,
            lease_s=o.lease_s, poll_s=o.poll_s, shard_sync_s=o.shard_sync_s, shutdown_s=o.shutdown_s,
            max_leases=o.max_leases,
        )
        if self.archive:
            cfg.namespace, cfg.consumer = "archive:", "archive"
            self.consumer = Consumer(cfg, lambda shard: ArchiveProcessor(shard, sink, self.metrics), self.metrics,
                                     self.settings)
            return
        holder = self.holder = ModelHolder(self.settings, poll_s=o.model_poll_s, metrics=self.metrics)

        def factory(shard: str) -> ScoringProcessor:
            scorer = ShardScorer(holder.current, gap_s=o.gap_s, idle_close_s=o.episode_idle_s,
                                 episode_write_s=episode_write_s)
            return ScoringProcessor(shard, scorer, sink, self.metrics)

        self.consumer = Consumer(cfg, factory, self.metrics, self.settings,
                                 ready=lambda: holder.current() is not None)

    def status(self) -> dict:
        c = self.consumer
        if c is None:
            return {"enabled": False, "running": False, "status": "disabled"}
        lag = c.lag_ms()
        return {
            "enabled": True,
            "running": c.running,
            "status": c.status,
            "worker_id": c.cfg.worker_id,
            "stream": c.cfg.stream,
            "leases": c.held(),
            "lag_ms": lag,
            "idle_s": round(c.idle_for(), 1),
            "error": c.error,
        }

    def _start_api(self) -> None:
        import uvicorn

        from inference.api import create_app

        assert self.holder is not None
        app = create_app(self.holder, self.status, self.metrics)
        host = self.opts.host or self.settings.api_host
        port = self.opts.port if self.opts.port is not None else self.settings.api_port
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
        server = self.server = uvicorn.Server(config)
        self._server_thread = threading.Thread(target=server.run, name="api", daemon=True)
        self._server_thread.start()
        deadline = time.monotonic() + 15
        while not server.started and self._server_thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not server.started:
            raise UserError(f"HTTP API could not listen on {host}:{port} (port in use? use --port)")
        log.info("API listening", extra={"url": f"http://{host}:{port}"})

    # ------------------------------------------------------------------ run

    def run(self) -> int:
        old_handlers = self._signals()
        code = 0
        try:
            self.build()
            assert self.consumer is not None
            if self.holder is not None:
                self.holder.start(self.stop_event)
            if self.opts.api and not self.archive:
                self._start_api()
            self.consumer.start()
            log.info("consuming", extra={"stream": self.stream, "worker": self.opts.worker_id,
                                         "consumer": self.consumer.cfg.consumer})
            code = self._wait()
        finally:
            self.stop_event.set()
            if self.consumer is not None:
                self.consumer.stop()
                if not self.consumer.join(self.opts.shutdown_s + 5):
                    log.warning("consumer did not stop in time")
            if self.server is not None:
                self.server.should_exit = True
                if self._server_thread is not None:
                    self._server_thread.join(5)
            m = self.metrics
            log.info("stopped", extra={"reason": self.exit_reason, "rows_out": int(m.rows_out.total()),
                                       "quarantined": int(m.quarantined.total())})
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
        return code

    def _wait(self) -> int:
        c = self.consumer
        assert c is not None
        started = time.monotonic()
        while not self.stop_event.wait(0.25):
            if c._thread is not None and not c._thread.is_alive():
                log.error("consumer stopped unexpectedly", extra={"error": c.error})
                self.exit_reason = "consumer died"
                return 1
            idle = self.opts.exit_when_idle
            if idle is None:
                continue
            model_ok = self.holder is None or self.holder.current() is not None
            if not model_ok and time.monotonic() - started >= max(idle, 30.0):
                self.exit_reason = "no model"
                assert self.holder is not None  # model_ok is False only with a holder
                log.error("no champion model could be loaded", extra={"error": self.holder.last_error})
                return 1
            if model_ok and c.idle_for() >= idle and c.suspects == 0 and not c.busy():
                self.stop(f"idle for {idle:g} s")
        return 0
