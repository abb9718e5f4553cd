"""``petrostream serve`` (the ECS inference service) and ``petrostream archive`` (raw records -> raw lake)."""

from __future__ import annotations

import typer


def _common(opts, stream, workers_id, flush_s, max_rows, exit_when_idle, lease_s, limit, poll_s, shard_sync_s,
            shutdown_s):
    if workers_id:
        opts.worker_id = workers_id
    opts.stream = stream
    opts.flush_s, opts.max_rows, opts.exit_when_idle = flush_s, max_rows, exit_when_idle
    opts.lease_s, opts.limit, opts.poll_s = lease_s, limit, poll_s
    opts.shard_sync_s, opts.shutdown_s = shard_sync_s, shutdown_s
    return opts


def _check(flush_s: float, max_rows: int, lease_s: float, limit: int) -> None:
    from petrostream.errors import UserError

    if flush_s <= 0:
        raise UserError(f"--flush-s must be > 0, got {flush_s}")
    if max_rows < 1:
        raise UserError(f"--max-rows must be >= 1, got {max_rows}")
    if lease_s < 1:
        raise UserError(f"--lease-s must be >= 1, got {lease_s}")
    if not 1 <= limit <= 10_000:
        raise UserError(f"--limit must be within 1..10000 (GetRecords), got {limit}")


def serve(
    workers_id: str = typer.Option(None, "--workers-id", help="Worker id for leases (default: host-pid-random)."),
    stream: str = typer.Option(None, help="Kinesis stream (default: settings stream_name)."),
    flush_s: float = typer.Option(10.0, "--flush-s", help="Write a shard's buffer at least this often (s)."),
    max_rows: int = typer.Option(5000, "--max-rows", help="... or as soon as it holds this many rows."),
    no_api: bool = typer.Option(False, "--no-api", help="Consumer only, no HTTP API."),
    exit_when_idle: float = typer.Option(None, "--exit-when-idle", help="Exit after S s without new records."),
    model_poll_s: float = typer.Option(30.0, "--model-poll-s", help="Check the champion manifest every S s."),
    lease_s: float = typer.Option(10.0, "--lease-s", help="Lease expiry (s); heartbeats every third of it."),
    limit: int = typer.Option(1000, help="GetRecords Limit (records per call)."),
    poll_s: float = typer.Option(1.0, "--poll-s", help="Wait between GetRecords on a caught-up shard (s)."),
    shard_sync_s: float = typer.Option(30.0, "--shard-sync-s", help="List shards (resharding) every S s."),
    gap_s: float = typer.Option(60.0, "--gap-s", help="Alarms closer than this (data time) are one episode."),
    episode_idle_s: float = typer.Option(120.0, "--episode-idle-s", help="Close episodes of silent instances."),
    episode_write_s: float = typer.Option(
        None, "--episode-write-s",
        help="Re-write an open episode at most every S s (default: --flush-s; 0: at every flush). Closed ones are "
             "never held back; a graceful stop writes what is held back."),
    shutdown_s: float = typer.Option(90.0, "--shutdown-s", help="Graceful stop budget (Spot notice is 120 s)."),
    max_leases: int = typer.Option(0, "--max-leases", help="Hold at most N shards (0: the fair share)."),
    host: str = typer.Option(None, help="API host (default: settings api_host)."),
    port: int = typer.Option(None, help="API port (default: settings api_port, 8080)."),
) -> None:
    """Run the inference service: Kinesis consumer (shard leases) + scoring + lake sink + HTTP API."""
    from inference.service import ServeOptions, Service

    _check(flush_s, max_rows, lease_s, limit)
    opts = _common(ServeOptions(), stream, workers_id, flush_s, max_rows, exit_when_idle, lease_s, limit, poll_s,
                   shard_sync_s, shutdown_s)
    opts.api, opts.host, opts.port = not no_api, host, port
    opts.model_poll_s, opts.gap_s, opts.episode_idle_s = model_poll_s, gap_s, episode_idle_s
    opts.episode_write_s = episode_write_s
    opts.episode_write_interval()  # validated before anything starts
    opts.max_leases = max(0, max_leases)
    raise typer.Exit(Service(opts).run())


def archive(
    workers_id: str = typer.Option(None, "--workers-id", help="Worker id for leases (default: host-pid-random)."),
    stream: str = typer.Option(None, help="Kinesis stream (default: settings stream_name)."),
    flush_s: float = typer.Option(10.0, "--flush-s", help="Write a shard's buffer at least this often (s)."),
    max_rows: int = typer.Option(20000, "--max-rows", help="... or as soon as it holds this many rows."),
    exit_when_idle: float = typer.Option(None, "--exit-when-idle", help="Exit after S s without new records."),
    lease_s: float = typer.Option(10.0, "--lease-s", help="Lease expiry (s)."),
    limit: int = typer.Option(1000, help="GetRecords Limit (records per call)."),
    poll_s: float = typer.Option(1.0, "--poll-s", help="Wait between GetRecords on a caught-up shard (s)."),
    shard_sync_s: float = typer.Option(30.0, "--shard-sync-s", help="List shards (resharding) every S s."),
    shutdown_s: float = typer.Option(90.0, "--shutdown-s", help="Graceful stop budget (s)."),
) -> None:
    """Archive raw stream records to the raw bucket (raw_readings), exactly once (stands in for Firehose)."""
    from inference.service import ServeOptions, Service

    _check(flush_s, max_rows, lease_s, limit)
    opts = _common(ServeOptions(), stream, workers_id, flush_s, max_rows, exit_when_idle, lease_s, limit, poll_s,
                   shard_sync_s, shutdown_s)
    opts.api = False
    raise typer.Exit(Service(opts, archive=True).run())


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("archive")(archive)
