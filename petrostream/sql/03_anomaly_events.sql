-- anomaly_events: One row per closed anomaly episode (consecutive anomalous rows of one instance); dt is the start day.
-- Columns mirror petrostream/lake.py and infra/lake_schema.json; partition
-- columns live only in the object path (s3://<bucket>/events/dt=YYYY-MM-DD/well=<well>/<batch>.parquet).
-- Partition projection: dt is a date projection (no partition registration, no MSCK REPAIR);
-- well is `injected`: Athena REQUIRES a static `WHERE well = '...'` (or IN (...)) on this table,
-- which makes per-well lookups cheap. Fleet-wide views read anomaly_events_all instead (dt-only projection).
CREATE EXTERNAL TABLE IF NOT EXISTS ${database}.${events_table} (
  episode_id    string,
  instance_id   string,
  source        string,
  event_class   int,
  start_ts      timestamp,
  end_ts        timestamp,
  duration_s    double,
  n_rows        bigint,
  peak_score    double,
  mean_score    double,
  model_version string,
  label         int,
  closed_at     timestamp
)
PARTITIONED BY (dt string, well string)
STORED AS PARQUET
LOCATION 's3://${curated_bucket}/events/'
TBLPROPERTIES (
  'classification' = 'parquet',
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '${projection_start},NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'projection.well.type' = 'injected',
  'storage.location.template' = 's3://${curated_bucket}/events/dt=${dt}/well=${well}/'
)
