"""``petrostream produce``: replay 3W instances into Kinesis as if live."""

from __future__ import annotations

from pathlib import Path

import typer

from petrostream.errors import UserError


def _parse_classes(text: str | None) -> list[int] | None:
    if text is None or not text.strip():
        return None
    try:
        classes = sorted({int(x) for x in text.replace(" ", "").split(",") if x})
    except ValueError:
        raise UserError(f"--classes must be comma-separated class numbers (e.g. 2,3), not {text!r}") from None
    bad = [c for c in classes if not 0 <= c <= 9]
    if bad:
        raise UserError(f"--classes: {bad} are not 3W event classes (0-9)")
    return classes


def produce(
    sources: list[Path] = typer.Argument(
        None, help="3W directory (<class>/<instance>.parquet), class folder(s) or instance files. "
        "Default: PETROSTREAM_DATA_DIR.", show_default=False),
    stream: str = typer.Option(None, "--stream", help="Kinesis stream (default: settings stream_name)."),
    speed: str = typer.Option("1", "--speed", help="1 = real time, N = N times faster, 'max' = as fast as possible."),
    align: str = typer.Option("start", "--align",
                              help="start: all instances start together on the replay clock; "
                              "original: keep the original relative times (idle gaps skipped)."),
    classes: str = typer.Option(None, "--classes", help="Only these event classes, e.g. 2,3."),
    limit_instances: int = typer.Option(None, "--limit-instances", min=1,
                                        help="At most N instances (round-robin over classes)."),
    max_rows_per_instance: int = typer.Option(None, "--max-rows-per-instance", min=1,
                                              help="Send only the first N rows of each instance."),
    rows_per_record: int = typer.Option(60, "--rows-per-record", min=1,
                                        help="Rows of one instance aggregated into one Kinesis record."),
    linger_ms: float = typer.Option(1000.0, "--linger-ms", min=0.0,
                                    help="Longest time a row waits in the producer before it is sent."),
    max_open: int = typer.Option(32, "--max-open", min=1, help="Instances replaying (held in memory) at once."),
    resume: bool = typer.Option(False, "--resume", help="Skip rows the checkpoint says Kinesis acknowledged."),
    checkpoint_path: Path = typer.Option(None, "--checkpoint",
                                         help="Checkpoint file (default: <state_dir>/producer/<stream>.json)."),
    checkpoint_every: float = typer.Option(2.0, "--checkpoint-every", min=0.0,
                                           help="Seconds between checkpoint writes (and one at exit)."),
    max_attempts: int = typer.Option(8, "--max-attempts", min=1, help="Attempts per record before giving up."),
    budget: bool = typer.Option(True, "--budget/--no-budget",
                                help="Respect per-shard limits (1,000 records/s, 1 MiB/s) client-side."),
    strict_order: bool = typer.Option(False, "--strict-order",
                                      help="At most one record per well per call: order kept even across retries."),
    json_summary: bool = typer.Option(False, "--json-summary", help="Print the final summary as JSON on stdout."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress (rows/s) on stderr."),
) -> None:
    """Replay 3W instances into Kinesis as if live (aggregated, batched, budgeted, resumable)."""
    import json

    from petrostream.settings import get_settings
    from producer.replay import replay

    if not sources:
        data_dir = get_settings().data_dir
        if data_dir is None:
            raise UserError("no input: pass a 3W directory or instance files (or set PETROSTREAM_DATA_DIR)")
        sources = [data_dir]

    def on_bad(path: str, reason: str) -> None:
        typer.echo(f"skipped bad input: {reason}", err=True)

    summary = replay(
        sources,
        stream=stream,
        speed=speed,
        align=align,
        classes=_parse_classes(classes),
        limit_instances=limit_instances,
        max_rows_per_instance=max_rows_per_instance,
        rows_per_record=rows_per_record,
        linger_ms=linger_ms,
        max_open=max_open,
        resume=resume,
        checkpoint_path=checkpoint_path,
        checkpoint_every_s=checkpoint_every,
        max_attempts=max_attempts,
        shard_budget=budget,
        strict_order=strict_order,
        progress=progress,
        handle_signals=True,
        on_bad_file=on_bad,
    )
    if json_summary:
        typer.echo(json.dumps(summary.to_dict()))
    else:
        typer.echo(summary.text())
    if summary.bad_files:
        typer.echo(f"error: {len(summary.bad_files)} input file(s) could not be used (see above); "
                   "the others were sent", err=True)
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    app.command("produce")(produce)
