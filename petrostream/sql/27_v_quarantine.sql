-- v_quarantine: records the inference service set aside (inference/sink.py quarantine_entry), one
-- JSON object per line. The common fields are extracted; record keeps the whole line (including
-- the base64 payload) for anything else. Fields a record does not carry are NULL.
CREATE OR REPLACE VIEW v_quarantine AS
SELECT
  dt,
  json_extract_scalar(line, '$.reason') AS reason,
  json_extract_scalar(line, '$.consumer') AS consumer,
  json_extract_scalar(line, '$.shard_id') AS shard_id,
  json_extract_scalar(line, '$.sequence_number') AS sequence_number,
  json_extract_scalar(line, '$.partition_key') AS partition_key,
  json_extract_scalar(line, '$.arrived_at') AS arrived_at,
  CAST(json_extract_scalar(line, '$.size') AS bigint) AS size_bytes,
  line AS record
FROM quarantine
