-- v_model_performance: detection quality per model version per day, against the 3W labels that
-- travel with the data (positive = label <> 0, transients 101..109 included; unlabelled rows count
-- in n_rows only). Row level: tp/fp/fn/tn, precision, recall, false-positive rate, f1.
-- Alarms: an alarm is the START of a run of anomalous rows (is_anomaly goes 0 -> 1 within one
-- instance scored by one model version). false_alarms = alarms that start on a normal row (label = 0).
-- normal_hours = time spent in normal operation: each normal row counts the time to the next
-- reading of its instance, capped at ${max_gap_seconds} s (the last reading counts 1 s, the 3W sampling
-- period), so gaps in a replay do not inflate it. false_alarms_per_hour = false_alarms / normal_hours.
-- Ratios are NULL when their denominator is 0.
CREATE OR REPLACE VIEW v_model_performance AS
WITH s AS (
  SELECT
    model_version,
    dt,
    well,
    ts,
    is_anomaly,
    label,
    CASE
      WHEN is_anomaly = 1
        AND coalesce(lag(is_anomaly) OVER (PARTITION BY model_version, well, instance_id ORDER BY ts), 0) = 0
      THEN 1
      ELSE 0
    END AS alarm_start,
    coalesce(
      least(
        CAST(date_diff('millisecond', ts, lead(ts) OVER (PARTITION BY model_version, well, instance_id ORDER BY ts)) AS double) / 1000.0,
        CAST(${max_gap_seconds} AS double)
      ),
      1.0
    ) AS dwell_s
  FROM v_scored
),
agg AS (
  SELECT
    model_version,
    dt,
    count(DISTINCT well) AS wells,
    count(*) AS n_rows,
    count(label) AS labelled_rows,
    count_if(label <> 0) AS positives,
    count_if(label = 0) AS negatives,
    count_if(is_anomaly = 1 AND label <> 0) AS tp,
    count_if(is_anomaly = 1 AND label = 0) AS fp,
    count_if(is_anomaly = 0 AND label <> 0) AS fn,
    count_if(is_anomaly = 0 AND label = 0) AS tn,
    count_if(is_anomaly = 1) AS anomaly_rows,
    sum(alarm_start) AS alarms,
    sum(CASE WHEN label = 0 THEN alarm_start ELSE 0 END) AS false_alarms,
    sum(CASE WHEN label = 0 THEN dwell_s ELSE 0.0 END) / 3600.0 AS normal_hours,
    min(ts) AS first_ts,
    max(ts) AS last_ts
  FROM s
  GROUP BY model_version, dt
)
SELECT
  model_version,
  dt,
  CAST(dt AS date) AS day,
  wells,
  n_rows,
  labelled_rows,
  positives,
  negatives,
  tp,
  fp,
  fn,
  tn,
  anomaly_rows,
  CAST(tp AS double) / nullif(tp + fp, 0) AS precision,
  CAST(tp AS double) / nullif(tp + fn, 0) AS recall,
  CAST(fp AS double) / nullif(fp + tn, 0) AS false_positive_rate,
  CAST(2 * tp AS double) / nullif(2 * tp + fp + fn, 0) AS f1,
  alarms,
  false_alarms,
  normal_hours,
  CAST(false_alarms AS double) / nullif(normal_hours, 0) AS false_alarms_per_hour,
  first_ts,
  last_ts
FROM agg
