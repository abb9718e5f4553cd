-- v_daily_well_summary: one row per well per day (dt).
-- Sensor statistics for the five core 3W process variables (avg/min/max/stddev over non-null readings).
-- p_pdg: a downhole pressure of exactly 0 Pa is a frozen/faulty gauge (half of the real 3W rows), so
-- its statistics ignore zeros and p_pdg_dead_rows counts them.
-- anomaly_rate = anomaly_rows / n_rows; event_rows = rows the 3W label marks as an event (label <> 0);
-- episodes = anomaly episodes that started that day (v_events).
CREATE OR REPLACE VIEW v_daily_well_summary AS
WITH daily AS (
  SELECT
    well,
    dt,
    count(*) AS n_rows,
    count(label) AS labelled_rows,
    count_if(label <> 0) AS event_rows,
    count_if(is_anomaly = 1) AS anomaly_rows,
    count(DISTINCT instance_id) AS instances,
    count(DISTINCT model_version) AS model_versions,
    min(ts) AS first_ts,
    max(ts) AS last_ts,
    avg(anomaly_score) AS mean_score,
    max(anomaly_score) AS max_score,
    avg(CASE WHEN p_pdg <> 0 THEN p_pdg END) AS p_pdg_avg,
    min(CASE WHEN p_pdg <> 0 THEN p_pdg END) AS p_pdg_min,
    max(CASE WHEN p_pdg <> 0 THEN p_pdg END) AS p_pdg_max,
    stddev_samp(CASE WHEN p_pdg <> 0 THEN p_pdg END) AS p_pdg_std,
    count_if(p_pdg = 0) AS p_pdg_dead_rows,
    avg(p_tpt) AS p_tpt_avg,
    min(p_tpt) AS p_tpt_min,
    max(p_tpt) AS p_tpt_max,
    stddev_samp(p_tpt) AS p_tpt_std,
    avg(t_tpt) AS t_tpt_avg,
    min(t_tpt) AS t_tpt_min,
    max(t_tpt) AS t_tpt_max,
    stddev_samp(t_tpt) AS t_tpt_std,
    avg(p_mon_ckp) AS p_mon_ckp_avg,
    min(p_mon_ckp) AS p_mon_ckp_min,
    max(p_mon_ckp) AS p_mon_ckp_max,
    stddev_samp(p_mon_ckp) AS p_mon_ckp_std,
    avg(t_jus_ckp) AS t_jus_ckp_avg,
    min(t_jus_ckp) AS t_jus_ckp_min,
    max(t_jus_ckp) AS t_jus_ckp_max,
    stddev_samp(t_jus_ckp) AS t_jus_ckp_std
  FROM v_scored
  GROUP BY well, dt
),
episodes AS (
  SELECT well, dt, count(*) AS episodes, sum(duration_s) AS episode_seconds
  FROM v_events
  GROUP BY well, dt
)
SELECT
  d.well,
  d.dt,
  CAST(d.dt AS date) AS day,
  d.n_rows,
  d.labelled_rows,
  d.event_rows,
  d.anomaly_rows,
  CAST(d.anomaly_rows AS double) / d.n_rows AS anomaly_rate,
  coalesce(e.episodes, 0) AS episodes,
  coalesce(e.episode_seconds, 0.0) AS episode_seconds,
  d.instances,
  d.model_versions,
  d.first_ts,
  d.last_ts,
  d.mean_score,
  d.max_score,
  d.p_pdg_avg,
  d.p_pdg_min,
  d.p_pdg_max,
  d.p_pdg_std,
  d.p_pdg_dead_rows,
  d.p_tpt_avg,
  d.p_tpt_min,
  d.p_tpt_max,
  d.p_tpt_std,
  d.t_tpt_avg,
  d.t_tpt_min,
  d.t_tpt_max,
  d.t_tpt_std,
  d.p_mon_ckp_avg,
  d.p_mon_ckp_min,
  d.p_mon_ckp_max,
  d.p_mon_ckp_std,
  d.t_jus_ckp_avg,
  d.t_jus_ckp_min,
  d.t_jus_ckp_max,
  d.t_jus_ckp_std
FROM daily AS d
LEFT JOIN episodes AS e ON e.well = d.well AND e.dt = d.dt
