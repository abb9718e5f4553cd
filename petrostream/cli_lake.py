"""``petrostream compact``: rewrite quiet day partitions of the lake into a few large objects sorted by well."""

from __future__ import annotations

import typer

from petrostream.errors import UserError

TABLE_NAMES = ("scored_readings", "raw_readings")


def compact(
    table: str = typer.Option("scored_readings", "--table", help="scored_readings or raw_readings."),
    day: list[str] = typer.Option(None, "--day", help="Only this dt (YYYY-MM-DD); repeatable. Default: every day."),
    quiet_hours: float = typer.Option(6.0, "--quiet-hours",
                                      help="Leave a day alone if the service wrote to it this recently."),
    target_mb: int = typer.Option(128, "--target-mb", help="Size of the objects to write (Parquet MB)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be compacted; write nothing."),
) -> None:
    """Compact the lake: each quiet day's flush objects -> objects of ~--target-mb, rows sorted by well (run
    daily; per-well reads then skip other wells' row groups)."""
    import re

    from petrostream import compaction, lake
    from petrostream.progress import Progress

    if table not in TABLE_NAMES:
        raise UserError(f"--table must be one of {', '.join(TABLE_NAMES)}, not {table!r}")
    bad = [d for d in day or [] if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", d)]
    if bad:
        raise UserError(f"--day must be YYYY-MM-DD, got {bad[0]!r}")
    if quiet_hours < 0 or target_mb <= 0:
        raise UserError("--quiet-hours must be >= 0 and --target-mb > 0")
    progress = Progress(f"compact {table}", unit="objects", interval=5.0)
    results = compaction.compact(lake.TABLES[table], quiet_s=quiet_hours * 3600, days=day or None,
                                 target_bytes=target_mb * 1024 * 1024, dry_run=dry_run, progress=progress)
    if results:
        progress.close()
    if not results:
        typer.echo(f"{table}: no objects to compact")
        return
    done = 0
    for r in results:
        if r.skipped:
            typer.echo(f"{table} dt={r.dt}: {r.sources} objects, skipped ({r.skipped})")
        elif dry_run:
            typer.echo(f"{table} dt={r.dt}: {r.sources} objects -> {len(r.outputs)} (dry run)")
        else:
            done += 1
            typer.echo(f"{table} dt={r.dt}: {r.sources} objects ({r.bytes_before / 2**20:.1f} MiB) -> "
                       f"{len(r.outputs)} ({r.bytes_after / 2**20:.1f} MiB), {r.rows:,} rows")
    if not dry_run:
        typer.echo(f"{done} of {len(results)} days compacted")


def register(app: typer.Typer) -> None:
    app.command("compact")(compact)
