-- v_well_status: one row per well, its latest state.
-- "Now" is the LAKE's latest reading (max ts over all wells), not the wall clock: replayed 3W data
-- carries its historical timestamps (2013..2018), so wall-clock staleness would flag every well.
-- A well is stale when its last reading is more than ${stale_minutes} minutes older than that lake
-- "now"; rows/alarms "in the last hour" count readings within one hour before the lake "now".
-- When several model versions scored the same reading (shadow scoring), the latest scoring wins.
CREATE OR REPLACE VIEW v_well_status AS
WITH s AS (
  SELECT well, ts, instance_id, anomaly_score, threshold, is_anomaly, model_version, label, event_class, scored_at
  FROM v_scored
),
lake AS (
  SELECT max(ts) AS lake_now FROM s
),
totals AS (
  SELECT well, max(ts) AS last_ts, count(*) AS total_rows, min(ts) AS first_ts
  FROM s
  GROUP BY well
),
ranked AS (
  -- the rows at each well's last timestamp (several only if several model versions scored it)
  SELECT
    s.*,
    row_number() OVER (PARTITION BY s.well ORDER BY s.scored_at DESC, s.model_version DESC) AS rn
  FROM s
  JOIN totals ON totals.well = s.well AND totals.last_ts = s.ts
),
recent AS (
  SELECT
    s.well,
    count(*) AS rows_last_hour,
    count_if(s.is_anomaly = 1) AS alarms_last_hour,
    max(s.anomaly_score) AS max_score_last_hour
  FROM s
  CROSS JOIN lake
  WHERE s.ts > lake.lake_now - INTERVAL '1' HOUR
  GROUP BY s.well
)
SELECT
  r.well,
  r.ts AS last_ts,
  r.anomaly_score AS last_score,
  r.threshold AS last_threshold,
  r.is_anomaly = 1 AS alarm_now,
  r.model_version,
  r.instance_id AS last_instance_id,
  r.label AS last_label,
  r.event_class AS last_event_class,
  coalesce(recent.rows_last_hour, 0) AS rows_last_hour,
  coalesce(recent.alarms_last_hour, 0) AS alarms_last_hour,
  recent.max_score_last_hour,
  totals.total_rows,
  totals.first_ts,
  lake.lake_now,
  date_diff('second', r.ts, lake.lake_now) AS seconds_behind,
  r.ts < lake.lake_now - INTERVAL '${stale_minutes}' MINUTE AS is_stale,
  CASE
    WHEN r.ts < lake.lake_now - INTERVAL '${stale_minutes}' MINUTE THEN 'STALE'
    WHEN r.is_anomaly = 1 THEN 'ALARM'
    ELSE 'OK'
  END AS status
FROM ranked AS r
CROSS JOIN lake
JOIN totals ON totals.well = r.well
LEFT JOIN recent ON recent.well = r.well
WHERE r.rn = 1
