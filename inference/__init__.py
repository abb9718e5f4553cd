"""PetroStream inference: the ECS service (Kinesis consumer with DynamoDB shard leases, micro-batch
scoring, exactly-once lake sink, hot-reloaded champion, HTTP API) and its Lambda alternative.

Modules: ``leases`` (DynamoDB lease table), ``consumer`` (coordinator + shard workers, checkpoints),
``scoring`` (per-instance stream state, duplicates, episodes; pure), ``sink`` (lake writes, processors),
``model_loader`` (champion + hot reload), ``api`` (FastAPI), ``service`` (wiring, graceful stop),
``lambda_handler`` (Kinesis event-source mapping), ``metrics`` (Prometheus text), ``cli``.
See docs/inference.md.
"""
