-- quarantine: records the inference service could not use, one JSON object per line, each with a
-- `reason` (s3://<curated bucket>/quarantine/dt=YYYY-MM-DD/<batch>.jsonl, see lake.write_quarantine).
-- Read as whole lines (TEXTFILE, default \001 field delimiter never occurs in JSON): the record shape
-- may change, so fields are extracted in v_quarantine with json_extract_scalar.
CREATE EXTERNAL TABLE IF NOT EXISTS ${database}.quarantine (
  line string
)
PARTITIONED BY (dt string)
STORED AS TEXTFILE
LOCATION 's3://${curated_bucket}/quarantine/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '${projection_start},NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://${curated_bucket}/quarantine/dt=${dt}/'
)
