-- scored_readings_all: the SAME objects as scored_readings, seen by every fleet-wide view.
-- Why a second table: `injected` projection on well (see scored_readings) makes Athena reject any query
-- without a static well filter, so "all wells" views cannot read scored_readings. This table projects
-- only dt (a partition is s3://.../scored/dt=<day>/; Athena reads every object below it, i.e. all
-- wells of that day) and recovers well from the object path: regexp_extract("$path", '/well=([^/]+)/', 1)
-- (see v_scored.sql). Trade-off: a filter on well does not prune here (dt does).
-- No enum of wells to maintain, no partition registration, new wells appear immediately.
CREATE EXTERNAL TABLE IF NOT EXISTS ${database}.${scored_table}_all (
  instance_id     string,
  source          string,
  event_class     int,
  ts              timestamp,
  aber_ckgl       double,
  aber_ckp        double,
  estado_dhsv     double,
  estado_m1       double,
  estado_m2       double,
  estado_pxo      double,
  estado_sdv_gl   double,
  estado_sdv_p    double,
  estado_w1       double,
  estado_w2       double,
  estado_xo       double,
  p_anular        double,
  p_jus_bs        double,
  p_jus_ckgl      double,
  p_jus_ckp       double,
  p_mon_ckgl      double,
  p_mon_ckp       double,
  p_mon_sdv_p     double,
  p_pdg           double,
  pt_p            double,
  p_tpt           double,
  qbs             double,
  qgl             double,
  t_jus_ckp       double,
  t_mon_ckp       double,
  t_pdg           double,
  t_tpt           double,
  label           int,
  anomaly_score   double,
  is_anomaly      int,
  threshold       double,
  model_version   string,
  shard_id        string,
  sequence_number string,
  sent_at         timestamp,
  scored_at       timestamp
)
PARTITIONED BY (dt string)
STORED AS PARQUET
LOCATION 's3://${curated_bucket}/scored/'
TBLPROPERTIES (
  'classification' = 'parquet',
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '${projection_start},NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://${curated_bucket}/scored/dt=${dt}/'
)
