-- v_anomalies: everything the detector flagged, at two grains in one feed:
--   kind = 'row'     one anomalous reading (is_anomaly = 1) of v_scored
--   kind = 'episode' one closed episode of v_events (consecutive anomalous rows of an instance)
-- with the well, time, score (the row's score or the episode's peak), model version and the 3W label
-- that travelled with the data (is_event: label <> 0, i.e. the detector agreed with 3W).
CREATE OR REPLACE VIEW v_anomalies AS
WITH flagged AS (
  SELECT
    'row' AS kind,
    well,
    dt,
    instance_id,
    CAST(NULL AS varchar) AS episode_id,
    ts,
    ts AS end_ts,
    CAST(NULL AS double) AS duration_s,
    CAST(1 AS bigint) AS n_rows,
    anomaly_score AS score,
    threshold,
    model_version,
    label,
    event_class,
    source
  FROM v_scored
  WHERE is_anomaly = 1
  UNION ALL
  SELECT
    'episode' AS kind,
    well,
    dt,
    instance_id,
    episode_id,
    start_ts AS ts,
    end_ts,
    duration_s,
    n_rows,
    peak_score AS score,
    CAST(NULL AS double) AS threshold,
    model_version,
    label,
    event_class,
    source
  FROM v_events
)
SELECT
  f.kind,
  f.well,
  f.dt,
  f.instance_id,
  f.episode_id,
  f.ts,
  f.end_ts,
  f.duration_s,
  f.n_rows,
  f.score,
  f.threshold,
  f.model_version,
  f.label,
  c.event_name AS label_name,
  f.label <> 0 AS is_event,
  f.event_class,
  f.source
FROM flagged AS f
LEFT JOIN v_event_classes AS c ON c.label = f.label
