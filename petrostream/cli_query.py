"""``petrostream query`` (SQL over the lake, Athena or DuckDB) and ``petrostream powerbi export``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from petrostream.errors import UserError

FORMATS = ("table", "csv", "json")
TABLE_ROWS = 200  # rows shown by --format table without --limit


def _backend(name: str | None):
    from petrostream.query import get_backend
    from petrostream.settings import get_settings

    s = get_settings()
    if name and name != s.query_backend:
        if name not in ("auto", "athena", "duckdb"):
            raise UserError(f"--backend must be auto, athena or duckdb, not {name!r}")
        s = s.model_copy(update={"query_backend": name})
    return get_backend(s)


def _cell(v) -> str:
    import pandas as pd

    if v is None or (not isinstance(v, (list, dict)) and pd.isna(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _print(df, fmt: str, shown_limit: int | None) -> None:
    if fmt == "csv":
        sys.stdout.write(df.to_csv(index=False))
        return
    if fmt == "json":
        sys.stdout.write(df.to_json(orient="records", date_format="iso", date_unit="ms") + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    total = len(df)
    if shown_limit is None and total > TABLE_ROWS:
        df = df.head(TABLE_ROWS)
    cells = [[_cell(v) for v in row] for row in df.itertuples(index=False, name=None)]
    headers = [str(c) for c in df.columns]
    console = Console() if sys.stdout.isatty() else Console(width=100_000, soft_wrap=True)
    widths = [max([len(h), *(len(r[i]) for r in cells)]) + 3 for i, h in enumerate(headers)]
    if sum(widths) > console.width and len(headers) > 1:
        # too wide for the terminal: one block per row, "column  value" lines (like psql \x)
        for n, row in enumerate(cells):
            block = Table(title=f"row {n + 1}", show_header=False, box=None, title_justify="left")
            block.add_column(style="bold")
            block.add_column(overflow="fold")
            for h, v in zip(headers, row, strict=True):
                block.add_row(h, v)
            console.print(block)
    else:
        table = Table(header_style="bold")
        for h in headers:
            table.add_column(h, overflow="fold")
        for row in cells:
            table.add_row(*row)
        console.print(table)
    more = f" (showing {len(df)}; use --limit or --format csv)" if len(df) < total else ""
    Console(stderr=True).print(f"{total} row{'s' if total != 1 else ''}{more}", style="dim")


def query(
    sql: str = typer.Argument(None, help="SQL (Athena/Trino dialect; runs unchanged on DuckDB)."),
    file: Path = typer.Option(None, "--file", "-f", help="Read the SQL from a file."),
    view: str = typer.Option(None, "--view", "-v", help="SELECT * FROM this view (e.g. v_well_status)."),
    where: str = typer.Option(None, "--where", help="With --view: a WHERE condition, e.g. \"well = 'WELL-00001'\"."),
    fmt: str = typer.Option("table", "--format", help="table, csv or json."),
    limit: int = typer.Option(None, "--limit", min=0, help="At most N rows."),
    backend: str = typer.Option(None, "--backend", help="auto, athena or duckdb (default: settings)."),
    deploy: bool = typer.Option(False, "--deploy", help="Create the Athena tables and views (make up), then exit."),
    list_tables: bool = typer.Option(False, "--tables", help="List tables and views, then exit."),
) -> None:
    """Query the lake: views, tables and ad-hoc SQL on Athena (AWS) or DuckDB (emulator/local lake)."""
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if deploy:
        from petrostream.aws import endpoint_url
        from petrostream.query.athena_backend import deploy_sql
        from petrostream.settings import get_settings

        s = get_settings()
        done = deploy_sql(s)
        where = f" at {endpoint_url()}" if endpoint_url() else ""
        typer.echo(f"deployed {len(done)} objects to Athena{where} (workgroup {s.athena_workgroup}, "
                   f"database {s.glue_database}): {', '.join(done)}")
        return
    qb = _backend(backend)
    if list_tables:
        for name in qb.tables():
            typer.echo(name)
        return
    given = [x for x in (sql, file, view) if x]
    if len(given) != 1:
        raise UserError('give exactly one of: "SQL", --file F, --view NAME')
    if where and not view:
        raise UserError("--where goes with --view")
    if view:
        df = qb.view(view, where=where, limit=limit)
    else:
        if file:
            try:
                sql = Path(file).read_text()
            except OSError as exc:
                raise UserError(f"{file}: {exc.strerror or exc}") from None
        df = qb.query(sql)
        if limit is not None:
            df = df.head(limit)
    _print(df, fmt, limit)


def export(
    dest: Path = typer.Option(..., "--dest", help="Folder for the files (created if missing)."),
    fmt: str = typer.Option("parquet", "--format", help="parquet or csv."),
    view: list[str] = typer.Option(None, "--view", help="Only these views (repeatable). Default: the report's."),
    backend: str = typer.Option(None, "--backend", help="auto, athena or duckdb (default: settings)."),
) -> None:
    """Write the executive views to files for Power BI Desktop without AWS (Get data > Parquet/Folder)."""
    from petrostream.query.export import POWERBI_VIEWS, export_views

    entries = export_views(dest, fmt, tuple(view) if view else POWERBI_VIEWS, _backend(backend))
    for e in entries.values():
        typer.echo(f"  {e['file']:<32} {e['rows']:>8,} rows")
    typer.echo(f"exported {len(entries)} views to {dest}")


def register(app: typer.Typer) -> None:
    app.command("query")(query)
    powerbi = typer.Typer(help="Power BI: export the report's views to files.", no_args_is_help=True)
    powerbi.command("export")(export)
    app.add_typer(powerbi, name="powerbi")
