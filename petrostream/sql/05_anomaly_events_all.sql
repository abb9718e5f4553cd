-- anomaly_events_all: the SAME objects as anomaly_events, seen by every fleet-wide view.
-- Why a second table: `injected` projection on well (see anomaly_events) makes Athena reject any query
-- without a static well filter, so "all wells" views cannot read anomaly_events. This table projects
-- only dt (a partition is s3://.../events/dt=<day>/; Athena reads every object below it, i.e. all
-- wells of that day) and recovers well from the object path: regexp_extract("$path", '/well=([^/]+)/', 1)
-- (see v_events.sql). Trade-off: a filter on well does not prune here (dt does).
-- No enum of wells to maintain, no partition registration, new wells appear immediately.
CREATE EXTERNAL TABLE IF NOT EXISTS ${database}.${events_table}_all (
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
