-- v_exec_yearly: executive trend per calendar year (of the data's own timestamps) over all wells.
-- Volumes and rates from v_daily_well_summary, detection quality from v_model_performance (all model
-- versions pooled), and year-over-year changes (NULL for the first year).
CREATE OR REPLACE VIEW v_exec_yearly AS
WITH d AS (
  SELECT
    substr(dt, 1, 4) AS period,
    count(DISTINCT well) AS wells,
    count(*) AS well_days,
    sum(n_rows) AS n_rows,
    sum(labelled_rows) AS labelled_rows,
    sum(event_rows) AS event_rows,
    sum(anomaly_rows) AS anomaly_rows,
    sum(episodes) AS episodes,
    sum(episode_seconds) / 3600.0 AS episode_hours,
    max(max_score) AS max_score
  FROM v_daily_well_summary
  GROUP BY substr(dt, 1, 4)
),
p AS (
  SELECT
    substr(dt, 1, 4) AS period,
    sum(tp) AS tp,
    sum(fp) AS fp,
    sum(fn) AS fn,
    sum(tn) AS tn,
    sum(false_alarms) AS false_alarms,
    sum(normal_hours) AS normal_hours
  FROM v_model_performance
  GROUP BY substr(dt, 1, 4)
),
m AS (
  SELECT
    d.period,
    d.wells,
    d.well_days,
    d.n_rows,
    d.labelled_rows,
    d.event_rows,
    d.anomaly_rows,
    CAST(d.anomaly_rows AS double) / d.n_rows AS anomaly_rate,
    d.episodes,
    d.episode_hours,
    CAST(d.episodes AS double) / d.well_days AS episodes_per_well_day,
    d.max_score,
    CAST(p.tp AS double) / nullif(p.tp + p.fp, 0) AS precision,
    CAST(p.tp AS double) / nullif(p.tp + p.fn, 0) AS recall,
    CAST(p.fp AS double) / nullif(p.fp + p.tn, 0) AS false_positive_rate,
    p.false_alarms,
    CAST(p.false_alarms AS double) / nullif(p.normal_hours, 0) AS false_alarms_per_hour
  FROM d
  LEFT JOIN p ON p.period = d.period
)
SELECT
  period AS year,
  CAST(period || '-01-01' AS date) AS year_start,
  wells,
  well_days,
  n_rows,
  labelled_rows,
  event_rows,
  anomaly_rows,
  anomaly_rate,
  episodes,
  episode_hours,
  episodes_per_well_day,
  max_score,
  precision,
  recall,
  false_positive_rate,
  false_alarms,
  false_alarms_per_hour,
  anomaly_rate - lag(anomaly_rate) OVER (ORDER BY period) AS anomaly_rate_change,
  episodes - lag(episodes) OVER (ORDER BY period) AS episodes_change,
  n_rows - lag(n_rows) OVER (ORDER BY period) AS n_rows_change
FROM m
