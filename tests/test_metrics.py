"""Metrics: hand-made cases with answers worked out on paper."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from petrostream.metrics import (
    evaluate,
    observation_metrics,
    pr_auc,
    recall_at_fpr,
    roc_auc,
    threshold_for_fpr,
)

NA = pd.NA


def _inst(iid, labels, alarms, cls, seconds=None):
    n = len(labels)
    t = pd.Timestamp("2020-01-01") + pd.to_timedelta(seconds if seconds is not None else range(n), unit="s")
    return pd.DataFrame({
        "instance_id": iid,
        "timestamp": t,
        "label": pd.array(labels, dtype="Int64"),
        "event_class": cls,
        "anomaly_score": np.asarray(alarms, dtype=float),  # scores = alarms here; AUCs tested separately
        "is_anomaly": alarms,
    })


@pytest.fixture
def scored():
    """Four instances; the expected numbers are worked out in the test below.

    a: normal 4 rows then event 4 (4 rows); alarms on rows 1, 2 (normal) and 6, 7 (event): delay 2 s.
    b: normal 2 rows, transient 102 then 2; timestamps jump (row 5 is t=10 s); alarm at 0 and 5: delay 8 s.
    c: no event; an alarm run over rows 1-3 (row 3 unlabelled): one false-alarm episode.
    d: unlabelled first row with an alarm (not a false alarm), event from row 1, alarmed at once: delay 0.
    """
    return pd.concat([
        _inst("a", [0, 0, 0, 0, 4, 4, 4, 4], [0, 1, 1, 0, 0, 0, 1, 1], 4),
        _inst("b", [0, 0, 102, 102, 2, 2], [1, 0, 0, 0, 0, 1], 2, seconds=[0, 1, 2, 3, 4, 10]),
        _inst("c", [0, 0, 0, NA, 0], [0, 1, 1, 1, 0], 0),
        _inst("d", [NA, 4, 4], [1, 1, 0], 4),
    ], ignore_index=True)


def test_observation_level(scored):
    m = observation_metrics(scored["label"], scored["is_anomaly"])
    # event rows: a 4 (2 alarmed), b 4 (1), d 2 (1) -> TP 4, FN 6; normal rows: a 4 (2), b 2 (1), c 4 (2) -> FP 5, TN 5
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (4, 6, 5, 5)
    assert m["precision"] == pytest.approx(4 / 9)
    assert m["recall"] == pytest.approx(4 / 10)
    assert m["f1"] == pytest.approx(2 * (4 / 9) * 0.4 / (4 / 9 + 0.4))
    assert m["fpr"] == pytest.approx(0.5)


def test_event_level_and_report(scored):
    r = evaluate(scored)
    assert r.n_event_instances == 3 and r.n_detected == 3 and r.event_detection_rate == 1.0
    inst = r.per_instance.set_index("instance_id")
    assert inst.loc["a", "delay_s"] == 2.0 and inst.loc["b", "delay_s"] == 8.0 and inst.loc["d", "delay_s"] == 0.0
    assert r.median_detection_delay_s == 2.0
    # episodes starting on a label-0 row: a row 1, b row 0, c row 1 (d's starts on an unlabelled row)
    assert r.false_alarm_episodes == 3
    assert r.normal_hours == pytest.approx(10 / 3600)
    assert r.false_alarms_per_hour == pytest.approx(3 / (10 / 3600))
    pc = r.per_class.set_index("event_class")
    assert pc.loc[2, "instances"] == 1 and pc.loc[2, "median_delay_s"] == 8.0
    assert pc.loc[2, "obs_recall"] == pytest.approx(1 / 4)
    assert pc.loc[4, "instances"] == 2 and pc.loc[4, "detected"] == 2 and pc.loc[4, "median_delay_s"] == 1.0
    assert pc.loc[4, "obs_recall"] == pytest.approx(3 / 6)
    assert 0 not in pc.index
    d = r.to_dict()
    for key in ("obs_precision", "obs_recall", "obs_f1", "obs_fpr", "roc_auc", "pr_auc", "recall_at_1pct_fpr",
                "event_detection_rate", "median_detection_delay_s", "false_alarms_per_hour"):
        assert key in d and isinstance(d[key], float)
    assert d["obs_recall"] == pytest.approx(0.4)


def test_undetected_event_and_alarm_before_onset():
    """An alarm before the onset does not count as detection; the event below is missed."""
    df = _inst("e", [0, 0, 1, 1, 101, 1], [1, 1, 0, 0, 0, 0], 1)
    r = evaluate(df)
    assert r.n_event_instances == 1 and r.n_detected == 0 and r.event_detection_rate == 0.0
    assert math.isnan(r.median_detection_delay_s)
    assert r.false_alarm_episodes == 1
    assert r.per_class.iloc[0]["detection_rate"] == 0.0


def test_row_order_does_not_matter(scored):
    shuffled = scored.sample(frac=1.0, random_state=1)
    a, b = evaluate(scored).to_dict(), evaluate(shuffled).to_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert (math.isnan(a[k]) and math.isnan(b[k])) or a[k] == pytest.approx(b[k]), k


def test_auc_hand_case():
    labels = [0, 0, 1, 1]
    scores = [0.1, 0.4, 0.35, 0.8]
    assert roc_auc(labels, scores) == pytest.approx(0.75)  # 3 of 4 (pos, neg) pairs ordered right
    assert pr_auc(labels, scores) == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)
    # transient labels count as events, unlabelled rows and NaN scores are ignored
    assert roc_auc(pd.array([0, 0, 102, 4, NA], dtype="Int64"), [0.1, 0.4, 0.35, 0.8, 9.0]) == pytest.approx(0.75)
    assert roc_auc([0, 0, 1, 1, 0], [0.1, 0.4, 0.35, 0.8, np.nan]) == pytest.approx(0.75)


def test_threshold_and_recall_at_fpr():
    normal = np.arange(1, 101, dtype=float)  # 1..100
    assert threshold_for_fpr(normal, 0.01) == 99.0  # only 100 is above: 1 %
    assert threshold_for_fpr(normal, 0.0) == 100.0
    assert threshold_for_fpr(normal, 0.05) == 95.0
    assert math.isnan(threshold_for_fpr([], 0.01))
    labels = [0] * 100 + [1] * 4
    scores = list(normal) + [150.0, 99.5, 50.0, 100.0]
    assert recall_at_fpr(labels, scores, 0.01) == pytest.approx(3 / 4)


def test_nan_safe_when_a_class_is_absent():
    only_normal = _inst("n", [0, 0, 0, 0], [0, 1, 0, 0], 0)
    r = evaluate(only_normal)
    assert math.isnan(r.roc_auc) and math.isnan(r.pr_auc) and math.isnan(r.recall_at_1pct_fpr)
    assert math.isnan(r.obs_recall) and math.isnan(r.event_detection_rate)
    assert r.obs_fpr == 0.25 and r.false_alarm_episodes == 1
    only_events = _inst("x", [3, 3, 3], [0, 0, 0], 3)
    r = evaluate(only_events)
    assert math.isnan(r.roc_auc) and math.isnan(r.obs_fpr) and math.isnan(r.false_alarms_per_hour)
    assert math.isnan(r.obs_precision) and r.obs_recall == 0.0 and r.obs_f1 == 0.0
    assert r.pr_auc == pytest.approx(1.0)
    empty = evaluate(only_events.iloc[:0])
    assert empty.n_rows == 0 and math.isnan(empty.obs_f1) and empty.per_class.empty
    with pytest.raises(ValueError, match="missing columns"):
        evaluate(only_events.drop(columns="label"))
