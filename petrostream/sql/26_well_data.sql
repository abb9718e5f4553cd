-- well_data: the simple flat table the project brief's example queries were written against; they
-- run unchanged on Athena and DuckDB:
--   SELECT * FROM well_data WHERE anomaly_flag = 1;
--   SELECT well_id, AVG(pressure) FROM well_data GROUP BY well_id;
-- pressure = p_tpt (pressure at the TPT, the wet christmas tree transducer): present in every 3W
-- instance and never a frozen-at-zero gauge, unlike p_pdg (downhole, 0 Pa in half the real rows),
-- which stays available as downhole_pressure. temperature = t_tpt. anomaly_flag = is_anomaly (0/1).
CREATE OR REPLACE VIEW well_data AS
SELECT
  well AS well_id,
  ts,
  dt,
  instance_id,
  source,
  p_tpt AS pressure,
  t_tpt AS temperature,
  p_pdg AS downhole_pressure,
  p_mon_ckp AS choke_upstream_pressure,
  t_jus_ckp AS choke_downstream_temperature,
  qgl AS gas_lift_flow,
  anomaly_score,
  is_anomaly AS anomaly_flag,
  threshold,
  model_version,
  label,
  event_class
FROM v_scored
