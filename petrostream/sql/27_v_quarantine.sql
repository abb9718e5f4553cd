-- v_quarantine: records the inference service set aside, with their reason (one JSON line each).
-- record is the whole JSON line; well_id/instance_id are NULL when the record did not carry them.
CREATE OR REPLACE VIEW v_quarantine AS
SELECT
  dt,
  json_extract_scalar(line, '$.reason') AS reason,
  json_extract_scalar(line, '$.well_id') AS well_id,
  json_extract_scalar(line, '$.instance_id') AS instance_id,
  line AS record
FROM quarantine
