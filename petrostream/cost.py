"""Monthly cost estimate of the deployed stack (pure logic: no AWS calls).

Prices come from ``cost_prices.json`` (us-east-1 list prices, dated, estimates). The default
configuration mirrors ``infra/envs/dev.tfvars`` and must stay under the $120 budget;
:func:`knob_deltas` shows what each main knob changes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from importlib import resources
from typing import Any

BUDGET_USD = 120.0
SECONDS_PER_HOUR = 3600


@lru_cache(maxsize=1)
def load_prices() -> dict[str, Any]:
    """The price table shipped with the package."""
    text = resources.files("petrostream").joinpath("cost_prices.json").read_text(encoding="utf-8")
    return json.loads(text)


@dataclass(frozen=True)
class CostConfig:
    """The knobs of a deployment (defaults = infra/envs/dev.tfvars)."""

    # Streaming: shards=0 means Kinesis on-demand mode.
    shards: int = 2
    records_per_second: float = 10.0  # producer PutRecords rate (rows are aggregated into records)
    record_kb: float = 2.0
    # ECS (per task); the inference service autoscales from inference_tasks upwards.
    inference_tasks: int = 1
    vcpu: float = 0.5
    memory_gb: float = 1.0
    dashboard_tasks: int = 1
    dashboard_vcpu: float = 0.25
    dashboard_memory_gb: float = 0.5
    producer_tasks: int = 1
    producer_vcpu: float = 0.25
    producer_memory_gb: float = 0.5
    spot: bool = True
    # How many hours a day the stack is switched on (project_up / project_down).
    hours_per_day: float = 24.0
    # Network
    nat: bool = False
    alb_public_ips: int = 2  # one per AZ of the ALB
    alb_lcu: float = 1.0
    # Data and queries
    lake_gb: float = 20.0  # average Parquet stored over the month (S3 Standard, all buckets)
    # one scored object per shard flush (2 shards, 10 s: ~520k) + episodes + Firehose raw objects; the lake is
    # partitioned by day only, so this does not grow with the number of wells (lake.py)
    s3_puts_per_month: int = 700_000
    athena_tb_per_month: float = 0.05
    # Optional Lambda inference path
    lambda_enabled: bool = False
    lambda_memory_gb: float = 1.0
    lambda_batch_size: int = 500
    lambda_seconds_per_batch: float = 1.0
    # Observability and the rest
    log_gb_per_month: float = 2.0
    alarms: int = 3
    lease_writes_per_shard_per_minute: float = 6.0
    ecr_gb: float = 1.8

    @property
    def on_demand_stream(self) -> bool:
        return self.shards == 0

    def validate(self) -> None:
        numbers = {k: v for k, v in asdict(self).items() if isinstance(v, int | float) and not isinstance(v, bool)}
        negative = [k for k, v in numbers.items() if v < 0]
        if negative:
            raise ValueError(f"negative values: {', '.join(negative)}")
        if not 0 <= self.hours_per_day <= 24:
            raise ValueError("hours_per_day must be between 0 and 24")
        if self.lambda_batch_size < 1:
            raise ValueError("lambda_batch_size must be >= 1")


@dataclass
class Estimate:
    config: CostConfig
    items: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return round(sum(self.items.values()), 2)

    @property
    def under_budget(self) -> bool:
        return self.total <= BUDGET_USD

    def to_dict(self) -> dict[str, Any]:
        prices = load_prices()
        return {
            "config": asdict(self.config),
            "items": {k: round(v, 2) for k, v in self.items.items()},
            "total": self.total,
            "budget": BUDGET_USD,
            "under_budget": self.under_budget,
            "prices_taken": prices["taken"],
            "region": prices["region"],
            "note": prices["note"],
        }


def estimate(config: CostConfig | None = None, prices: dict[str, Any] | None = None) -> Estimate:
    """Monthly cost, per line item, of ``config`` at ``prices``."""
    c = config or CostConfig()
    c.validate()
    p = prices or load_prices()
    hours = p["hours_per_month"] * c.hours_per_day / 24.0  # hours the stack is up per month
    seconds = hours * SECONDS_PER_HOUR
    records = c.records_per_second * seconds
    ingest_gb = records * c.record_kb / 1024 / 1024

    items: dict[str, float] = {}

    # Kinesis Data Streams
    k = p["kinesis"]
    if c.on_demand_stream:
        # two consumers read everything: the inference service and Firehose
        items["kinesis"] = (
            k["on_demand_stream_hour"] * hours
            + k["on_demand_ingest_per_gb"] * ingest_gb
            + k["on_demand_retrieval_per_gb"] * ingest_gb * 2
        )
    else:
        put_units = records * max(1.0, -(-c.record_kb // 25))  # 25 KB payload units
        items["kinesis"] = k["shard_hour"] * c.shards * hours + k["put_payload_unit_per_million"] * put_units / 1e6

    # Firehose (ingest + Parquet conversion + dynamic partitioning)
    f = p["firehose"]
    items["firehose"] = ingest_gb * (
        f["ingest_per_gb"] + f["format_conversion_per_gb"] + f["dynamic_partitioning_per_gb"]
    )

    # Fargate
    fp = p["fargate_spot"] if c.spot else p["fargate"]
    vcpu_hours = hours * (
        c.inference_tasks * c.vcpu + c.dashboard_tasks * c.dashboard_vcpu + c.producer_tasks * c.producer_vcpu
    )
    gb_hours = hours * (
        c.inference_tasks * c.memory_gb
        + c.dashboard_tasks * c.dashboard_memory_gb
        + c.producer_tasks * c.producer_memory_gb
    )
    items["fargate"] = vcpu_hours * fp["vcpu_hour"] + gb_hours * fp["gb_hour"]

    # ALB and public IPv4 addresses (ALB nodes; tasks too unless they sit behind a NAT)
    items["alb"] = hours * (p["alb"]["hour"] + c.alb_lcu * p["alb"]["lcu_hour"])
    tasks = c.inference_tasks + c.dashboard_tasks + c.producer_tasks
    public_ips = c.alb_public_ips + (1 if c.nat else tasks)  # the NAT gateway's Elastic IP
    items["public_ipv4"] = hours * public_ips * p["public_ipv4"]["hour"]
    if c.nat:
        # tasks reach AWS APIs through the NAT: the stream is read (inference) and written (producer)
        items["nat_gateway"] = hours * p["nat_gateway"]["hour"] + 2 * ingest_gb * p["nat_gateway"]["per_gb"]

    # Storage, queries, functions, logs
    items["s3"] = c.lake_gb * p["s3"]["standard_gb_month"] + c.s3_puts_per_month / 1000 * p["s3"]["put_per_1000"]
    items["athena"] = c.athena_tb_per_month * p["athena"]["per_tb_scanned"]
    if c.lambda_enabled:
        invocations = records / c.lambda_batch_size
        items["lambda"] = (
            invocations * c.lambda_seconds_per_batch * c.lambda_memory_gb * p["lambda"]["gb_second"]
            + invocations / 1e6 * p["lambda"]["per_million_requests"]
        )
    items["cloudwatch"] = (
        c.log_gb_per_month * p["cloudwatch"]["logs_ingest_per_gb"] + c.alarms * p["cloudwatch"]["alarm_month"]
    )
    shards_for_leases = c.shards if c.shards else 2
    lease_writes = shards_for_leases * c.lease_writes_per_shard_per_minute * 60 * hours
    items["dynamodb"] = lease_writes / 1e6 * p["dynamodb"]["write_request_per_million"]
    items["ecr"] = c.ecr_gb * p["ecr"]["storage_gb_month"]
    return Estimate(config=c, items=items)


# The main knobs: (name, description, change applied to a config)
KNOBS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("shards", "+1 Kinesis shard", {"shards": "+1"}),
    ("stream mode", "Kinesis on-demand instead of provisioned shards", {"shards": 0}),
    ("inference tasks", "+1 inference task", {"inference_tasks": "+1"}),
    ("vcpu", "inference task vCPU x2", {"vcpu": "x2"}),
    ("memory", "inference task memory x2", {"memory_gb": "x2"}),
    ("spot", "Fargate on-demand instead of Spot", {"spot": False}),
    ("hours per day", "stack switched on 8 h/day instead of 24", {"hours_per_day": 8.0}),
    ("athena", "+1 TB scanned per month", {"athena_tb_per_month": "+1"}),
    ("lambda", "Lambda inference path on", {"lambda_enabled": True}),
    ("nat", "private subnets behind a NAT gateway", {"nat": True}),
)


def _apply(config: CostConfig, change: dict[str, Any]) -> CostConfig:
    values: dict[str, Any] = {}
    for key, how in change.items():
        current = getattr(config, key)
        if isinstance(how, str) and how.startswith("+"):
            values[key] = type(current)(current + float(how[1:]))
        elif isinstance(how, str) and how.startswith("x"):
            values[key] = type(current)(current * float(how[1:]))
        else:
            values[key] = how
    return replace(config, **values)


def knob_deltas(config: CostConfig | None = None, prices: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Monthly delta (USD) of each main knob relative to ``config``."""
    base = config or CostConfig()
    base_total = estimate(base, prices).total
    rows = []
    for name, description, change in KNOBS:
        changed = _apply(base, change)
        if changed == base:
            continue
        total = estimate(changed, prices).total
        rows.append({"knob": name, "change": description, "total": total, "delta": round(total - base_total, 2)})
    return rows
