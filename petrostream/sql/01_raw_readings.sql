-- raw_readings: Every reading as it arrived from the stream (archive sink), before scoring.
-- Columns mirror petrostream/lake.py and infra/lake_schema.json; the partition column dt lives only in
-- the object path (s3://<bucket>/raw/dt=YYYY-MM-DD/<batch>.parquet); well is a column (one object
-- per flush holds every well of a shard: no small object per well). dt is a date projection (no partition
-- registration, no MSCK REPAIR): filter on dt to prune, on well to select wells.
CREATE EXTERNAL TABLE IF NOT EXISTS ${database}.${raw_table} (
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
  shard_id        string,
  sequence_number string,
  sent_at         timestamp,
  arrived_at      timestamp,
  well            string
)
PARTITIONED BY (dt string)
STORED AS PARQUET
LOCATION 's3://${raw_bucket}/raw/'
TBLPROPERTIES (
  'classification' = 'parquet',
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '${projection_start},NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://${raw_bucket}/raw/dt=${dt}/'
)
