"""Infrastructure commands of the ``petrostream`` CLI: empty-buckets, cost, ecs-redeploy, ecr-login-password.

``register(app)`` adds them to the main Typer app; ``python -m petrostream.cli_infra`` runs them
standalone (project_up.sh / project_down.sh use that, so they do not depend on the CLI wiring).
"""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console
from rich.table import Table

from petrostream.settings import get_settings


def default_buckets() -> list[str]:
    s = get_settings()
    return [s.raw_bucket, s.curated_bucket, s.models_bucket, s.athena_results_bucket]


def empty_buckets(
    buckets: list[str] = typer.Argument(None, help="Buckets to empty (default: the four from settings)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be deleted; delete nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete ALL object versions and delete markers from buckets (before terraform destroy)."""
    from petrostream.buckets import bucket_exists, count_versions, empty_bucket

    names = list(buckets) if buckets else default_buckets()
    console = Console(stderr=True)
    if not dry_run and not yes:
        typer.confirm(f"Permanently delete every object version in {', '.join(names)}?", abort=True)
    failed = False
    for name in names:
        try:
            if not bucket_exists(name):
                console.print(f"s3://{name}: does not exist, skipped")
                continue
            if dry_run:
                console.print(f"s3://{name}: would delete {count_versions(name)} versions/delete markers")
            else:
                console.print(f"s3://{name}: deleted {empty_bucket(name)} versions/delete markers")
        except Exception as exc:  # report every bucket, fail at the end
            failed = True
            console.print(f"[red]s3://{name}: {exc}[/red]")
    if failed:
        raise typer.Exit(1)


def cost(
    shards: int = typer.Option(2, help="Kinesis shards (0 = on-demand mode)."),
    inference_tasks: int = typer.Option(1, help="Inference tasks (autoscaling minimum)."),
    vcpu: float = typer.Option(0.5, help="vCPU per inference task."),
    memory_gb: float = typer.Option(1.0, help="Memory (GB) per inference task."),
    hours_per_day: float = typer.Option(24.0, help="Hours a day the stack is switched on."),
    athena_tb_per_month: float = typer.Option(0.05, help="TB scanned by Athena per month."),
    lambda_: bool = typer.Option(False, "--lambda/--no-lambda", help="Optional Lambda inference path."),
    spot: bool = typer.Option(True, "--spot/--no-spot", help="Fargate Spot (default) or on-demand."),
    nat: bool = typer.Option(False, "--nat/--no-nat", help="Tasks in private subnets behind a NAT gateway."),
    records_per_second: float = typer.Option(10.0, help="Kinesis records per second from the producer."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Estimated monthly cost of the configured deployment and what each knob changes."""
    from petrostream.cost import BUDGET_USD, CostConfig, estimate, knob_deltas

    try:
        config = CostConfig(
            shards=shards,
            inference_tasks=inference_tasks,
            vcpu=vcpu,
            memory_gb=memory_gb,
            hours_per_day=hours_per_day,
            athena_tb_per_month=athena_tb_per_month,
            lambda_enabled=lambda_,
            spot=spot,
            nat=nat,
            records_per_second=records_per_second,
        )
        est = estimate(config)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    knobs = knob_deltas(config)
    if as_json:
        typer.echo(json.dumps({**est.to_dict(), "knobs": knobs}, indent=2))
        return

    doc = est.to_dict()
    console = Console()
    items = Table(title="Monthly cost estimate", caption=f"{doc['region']} list prices of {doc['prices_taken']}")
    items.add_column("item")
    items.add_column("USD/month", justify="right")
    for name, usd in sorted(est.items.items(), key=lambda kv: -kv[1]):
        items.add_row(name, f"{usd:,.2f}")
    items.add_row("[bold]total[/bold]", f"[bold]{est.total:,.2f}[/bold]")
    console.print(items)
    verdict = "under" if est.under_budget else "OVER"
    console.print(f"{verdict} the ${BUDGET_USD:.0f}/month budget")
    table = Table(title="What each knob changes")
    table.add_column("knob")
    table.add_column("change")
    table.add_column("total", justify="right")
    table.add_column("delta", justify="right")
    for row in knobs:
        table.add_row(row["knob"], row["change"], f"{row['total']:,.2f}", f"{row['delta']:+,.2f}")
    console.print(table)
    console.print(f"[dim]{doc['note']}[/dim]")


def ecs_redeploy(
    services: list[str] = typer.Argument(..., help="ECS service names."),
    cluster: str = typer.Option(None, help="ECS cluster (default: the project name)."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait until the services are stable."),
) -> None:
    """Force a new deployment of ECS services (picks up a new image or model) and wait for them."""
    from petrostream.aws import client

    ecs = client("ecs")
    cluster = cluster or get_settings().project
    for name in services:
        ecs.update_service(cluster=cluster, service=name, forceNewDeployment=True)
        typer.echo(f"redeploying {cluster}/{name}")
    if wait:
        ecs.get_waiter("services_stable").wait(cluster=cluster, services=list(services))
        typer.echo("services stable")


def ecr_login_password() -> None:
    """Print a docker login password for ECR (pipe to `docker login --password-stdin`)."""
    import base64

    from petrostream.aws import client

    data = client("ecr").get_authorization_token()["authorizationData"][0]
    typer.echo(base64.b64decode(data["authorizationToken"]).decode().split(":", 1)[1])


def register(app: typer.Typer) -> None:
    """Add the infrastructure commands to ``app``."""
    app.command("empty-buckets")(empty_buckets)
    app.command("cost")(cost)
    app.command("ecs-redeploy")(ecs_redeploy)
    app.command("ecr-login-password")(ecr_login_password)


def build_app() -> typer.Typer:
    app = typer.Typer(add_completion=False, no_args_is_help=True, help="PetroStream infrastructure commands.")
    register(app)
    return app


def main(argv: list[str] | None = None) -> None:
    build_app()(args=argv if argv is not None else sys.argv[1:], prog_name="petrostream")


if __name__ == "__main__":
    main()
