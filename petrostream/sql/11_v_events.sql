-- v_events: every anomaly episode of every well, open ones included (closed_at IS NULL while the alarm lasts).
CREATE OR REPLACE VIEW v_events AS
SELECT
  episode_id,
  instance_id,
  source,
  event_class,
  start_ts,
  end_ts,
  duration_s,
  n_rows,
  peak_score,
  mean_score,
  model_version,
  label,
  closed_at,
  dt,
  well
FROM ${events_table}
