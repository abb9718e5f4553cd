-- anomaly_events: One row per closed anomaly episode (consecutive anomalous rows of one instance); dt is the start day.
-- Columns mirror petrostream/lake.py and infra/lake_schema.json; the partition column dt lives only in
-- the object path (s3://<bucket>/events/dt=YYYY-MM-DD/<batch>.parquet); well is a column (one object
-- per flush holds every well of a shard: no small object per well). dt is a date projection (no partition
-- registration, no MSCK REPAIR): filter on dt to prune, on well to select wells.
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
  closed_at     timestamp,
  well          string
)
PARTITIONED BY (dt string)
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
  'storage.location.template' = 's3://${curated_bucket}/events/dt=${dt}/'
)
