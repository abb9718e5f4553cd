"""Cost estimate: hand-computed expectations on known configurations."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from petrostream.cost import BUDGET_USD, CostConfig, estimate, knob_deltas, load_prices

H = 730  # hours per month in the price table
RECORDS = 10 * 3600 * H  # default 10 records/s for a month = 26.28 M
INGEST_GB = RECORDS * 2 / 1024 / 1024  # 2 KB records = 50.125 GB


def test_price_table_is_dated_and_marked_as_estimates():
    p = load_prices()
    assert p["region"] == "us-east-1" and p["currency"] == "USD"
    assert len(p["taken"]) == 10 and p["taken"][4] == "-"
    assert "estimate" in p["note"].lower()
    assert p["hours_per_month"] == H


def test_default_stays_under_budget_by_hand():
    e = estimate()
    kinesis = 2 * 0.015 * H + 0.014 * RECORDS / 1e6  # 21.90 + 0.368
    firehose = INGEST_GB * (0.029 + 0.018 + 0.02)
    fargate = H * ((0.5 + 0.25 + 0.25) * 0.01334053 + (1 + 0.5 + 0.5) * 0.00146489)
    alb = H * (0.0225 + 0.008)
    ipv4 = H * 5 * 0.005  # 2 ALB nodes + 3 tasks
    s3 = 20 * 0.023 + 700 * 0.005  # 700k PUTs: one object per shard flush, not per well
    athena = 0.05 * 5
    cloudwatch = 2 * 0.5 + 3 * 0.1
    dynamodb = 2 * 6 * 60 * H / 1e6 * 0.625
    ecr = 1.8 * 0.1
    expected = {
        "kinesis": kinesis,
        "firehose": firehose,
        "fargate": fargate,
        "alb": alb,
        "public_ipv4": ipv4,
        "s3": s3,
        "athena": athena,
        "cloudwatch": cloudwatch,
        "dynamodb": dynamodb,
        "ecr": ecr,
    }
    assert set(e.items) == set(expected)
    for k, v in expected.items():
        assert e.items[k] == pytest.approx(v, abs=0.005), k
    assert e.total == pytest.approx(sum(expected.values()), abs=0.01)
    assert e.total == pytest.approx(84.04, abs=0.01)
    assert e.under_budget and e.total < BUDGET_USD == 120


def test_fargate_on_demand_single_task_by_hand():
    c = CostConfig(spot=False, vcpu=1, memory_gb=2, dashboard_tasks=0, producer_tasks=0, inference_tasks=1)
    assert estimate(c).items["fargate"] == pytest.approx(H * (0.04048 + 2 * 0.004445), abs=0.001)  # 36.04


def test_kinesis_on_demand_by_hand():
    e = estimate(CostConfig(shards=0))
    expected = 0.04 * H + 0.08 * INGEST_GB + 0.04 * 2 * INGEST_GB  # 29.20 + 4.01 + 4.01
    assert e.items["kinesis"] == pytest.approx(expected, abs=0.001)
    assert e.items["kinesis"] == pytest.approx(37.22, abs=0.01)


def test_more_shards_add_shard_hours():
    one = estimate(CostConfig(shards=1)).items["kinesis"]
    four = estimate(CostConfig(shards=4)).items["kinesis"]
    assert four - one == pytest.approx(3 * 0.015 * H)


def test_hours_per_day_scales_hourly_items_only():
    full, half = estimate(), estimate(CostConfig(hours_per_day=12))
    for item in ["kinesis", "firehose", "fargate", "alb", "public_ipv4", "dynamodb"]:
        assert half.items[item] == pytest.approx(full.items[item] / 2, rel=1e-9), item
    for item in ["s3", "athena", "cloudwatch", "ecr"]:
        assert half.items[item] == pytest.approx(full.items[item]), item


def test_athena_per_tb():
    assert estimate(CostConfig(athena_tb_per_month=2)).items["athena"] == pytest.approx(10.0)


def test_lambda_by_hand():
    e = estimate(CostConfig(lambda_enabled=True))
    invocations = RECORDS / 500  # 52,560
    expected = invocations * 1.0 * 1.0 * 0.0000166667 + invocations / 1e6 * 0.2
    assert e.items["lambda"] == pytest.approx(expected, abs=1e-4)  # ~0.89
    assert "lambda" not in estimate().items


def test_nat_by_hand():
    e = estimate(CostConfig(nat=True))
    assert e.items["nat_gateway"] == pytest.approx(0.045 * H + 2 * INGEST_GB * 0.045, abs=0.001)  # 32.85 + 4.51
    assert e.items["public_ipv4"] == pytest.approx(H * 3 * 0.005)  # 2 ALB + NAT EIP, tasks private


def test_big_configuration_goes_over_budget():
    big = estimate(CostConfig(spot=False, inference_tasks=3, vcpu=2, memory_gb=4, shards=4))
    assert big.total > BUDGET_USD and not big.under_budget


def test_knob_deltas():
    rows = {r["knob"]: r for r in knob_deltas()}
    base = estimate().total
    assert set(rows) >= {
        "shards",
        "stream mode",
        "inference tasks",
        "vcpu",
        "memory",
        "spot",
        "hours per day",
        "athena",
        "lambda",
        "nat",
    }
    for r in rows.values():
        assert r["delta"] == pytest.approx(r["total"] - base, abs=0.011)
    assert rows["shards"]["delta"] == pytest.approx(0.015 * H + 6 * 60 * H / 1e6 * 0.625, abs=0.01)
    assert rows["athena"]["delta"] == pytest.approx(5.0)
    assert rows["hours per day"]["delta"] < 0
    assert rows["spot"]["delta"] > 0 and rows["nat"]["delta"] > 0


@pytest.mark.parametrize("bad", [{"hours_per_day": 25}, {"shards": -1}, {"vcpu": -0.5}, {"lambda_batch_size": 0}])
def test_invalid_configurations(bad):
    with pytest.raises(ValueError):
        estimate(CostConfig(**bad))


def test_cost_cli_json_and_table():
    from petrostream.cli_infra import build_app

    runner = CliRunner()
    app = build_app()
    res = runner.invoke(app, ["cost", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["total"] == pytest.approx(84.04, abs=0.01) and doc["under_budget"] is True
    assert doc["budget"] == 120 and doc["knobs"] and doc["prices_taken"]
    res = runner.invoke(
        app,
        [
            "cost",
            "--json",
            "--no-spot",
            "--inference-tasks",
            "3",
            "--vcpu",
            "2",
            "--memory-gb",
            "4",
            "--shards",
            "4",
            "--lambda",
        ],
    )
    doc = json.loads(res.output)
    assert doc["under_budget"] is False and "lambda" in doc["items"]
    table = runner.invoke(app, ["cost", "--hours-per-day", "8"])
    assert table.exit_code == 0 and "under the $120/month budget" in table.output and "knob" in table.output
    bad = runner.invoke(app, ["cost", "--hours-per-day", "30"])
    assert bad.exit_code != 0
