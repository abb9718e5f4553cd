"""Reading a (moto) Kinesis stream back in tests: every record of every shard, from the start."""

from __future__ import annotations

from petrostream.aws import client


def shard_records(stream: str) -> dict[str, list[bytes]]:
    """shard id -> the Data of every record in that shard, in order."""
    k = client("kinesis")
    out: dict[str, list[bytes]] = {}
    for sh in k.list_shards(StreamName=stream)["Shards"]:
        it = k.get_shard_iterator(StreamName=stream, ShardId=sh["ShardId"], ShardIteratorType="TRIM_HORIZON")
        it = it["ShardIterator"]
        data: list[bytes] = []
        while True:
            r = k.get_records(ShardIterator=it, Limit=1000)
            data += [x["Data"] for x in r["Records"]]
            if not r["Records"]:
                break
            it = r["NextShardIterator"]
        out[sh["ShardId"]] = data
    return out
