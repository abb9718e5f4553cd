"""Wire format v2 (binary): round trip against v1 on the real 3W sample, mixed batches, poison records, and the
producer emitting v2 on the (emulated) stream.

The layout is rebuilt here by hand from its documentation (``pack``), so the tests pin the format itself,
not only ``encode``/``decode`` agreeing with each other.
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pandas as pd
import pytest
from stream_helpers import shard_records

from petrostream import wire
from petrostream.dataset import parse_instance_path, read_instance
from petrostream.wire import MAGIC, WireError, decode_batch, decode_one, encode

# real instances: NA labels + all-NaN columns; four all-NaN columns; partly-NaN columns; a drawn one
REAL = (
    "6/WELL-00004_20171031193025.parquet",
    "2/WELL-00011_20140530100015.parquet",
    "4/WELL-00004_20140805120107.parquet",
    "1/DRAWN_00003.parquet",
)
PREFIX = struct.Struct("<4sIId")  # magic, header length, n, sent_at


def pack(header: dict, ts, label, values: dict, *, n: int | None = None, sent_at: float = 1.7e9,
         magic: bytes = MAGIC, raw_header: bytes | None = None) -> bytes:
    """A v2 record built from the documented layout (``values``: carried variables, in order)."""
    ts = np.asarray(ts, dtype="<i8")
    head = json.dumps(header).encode() if raw_header is None else raw_header
    body = [ts.tobytes(), np.asarray(label, dtype="<i2").tobytes()]
    body += [np.asarray(v, dtype="<f8").tobytes() for v in values.values()]
    return b"".join([PREFIX.pack(magic, len(head), len(ts) if n is None else n, sent_at), head, *body])


HEADER = {"instance_id": "4_x", "well_id": "W", "source": "REAL", "event_class": 4, "vars": ["P-PDG", "QGL"]}
TS = [1_600_000_000_000 + 1000 * i for i in range(5)]


def good_record(**header) -> bytes:
    return pack({**HEADER, **header}, TS, [0, 0, 4, -1, 4], {"P-PDG": [1.0, np.nan, 3, 4, 5], "QGL": [1.0] * 5})


def frames(threew_dir, rows: int | None = None) -> list[tuple]:
    out = []
    for rel in REAL:
        info = parse_instance_path(threew_dir / rel)
        df = read_instance(info)
        out.append((info, df.iloc[:rows] if rows else df))
    return out


def records(parts, rows_per_record: int, version: int) -> list[bytes]:
    """Records of every part, instances interleaved (as a live stream)."""
    per = [[encode(instance_id=info.instance_id, well_id=info.well_id, source=info.source,
                   event_class=info.event_class, frame=df.iloc[i : i + rows_per_record], sent_at=1.7e9 + i,
                   version=version) for i in range(0, len(df), rows_per_record)] for info, df in parts]
    return [r for k in range(max(map(len, per))) for p in per if k < len(p) for r in p[k : k + 1]]


# ------------------------------------------------------------------ round trip on real data


def test_v2_decodes_to_the_same_rows_as_v1_on_real_data_and_is_smaller(threew_dir):
    parts = frames(threew_dir, rows=3000)
    v1 = records(parts, 20, version=1)
    v2 = records(parts, 20, version=2)
    assert all(r.startswith(b"{") for r in v1) and all(r.startswith(MAGIC) for r in v2)
    a, b = decode_batch(v1), decode_batch(v2)
    assert not a.rejected and not b.rejected
    pd.testing.assert_frame_equal(b.rows, a.rows, check_exact=True)  # values, NaN positions, labels, ts, dtypes
    # ... and both are the source rows
    rows = b.rows
    for info, df in parts:
        got = rows[rows["instance_id"] == info.instance_id]
        assert got["timestamp"].tolist() == df.index.tolist()
        np.testing.assert_array_equal(got[list(df.columns.drop("class"))].to_numpy(),
                                      df.drop(columns="class").to_numpy())  # NaN == NaN here
        assert got["label"].isna().tolist() == df["class"].isna().tolist()
        assert got["label"].dropna().tolist() == df["class"].dropna().tolist()
        assert set(got["well_id"]) == {info.well_id} and set(got["event_class"]) == {info.event_class}
    assert rows["label"].isna().any()  # the sample's unlabeled rows came through as <NA>
    assert list(rows.columns[:8]) == ["record", "instance_id", "well_id", "source", "event_class", "timestamp",
                                      "label", "sent_at"]
    # bytes per row: v2 carries no all-NaN column and no text numbers
    n = len(rows)
    assert sum(map(len, v2)) / n < 0.8 * sum(map(len, v1)) / n


def test_all_nan_variables_are_named_not_carried(threew_dir):
    info = parse_instance_path(threew_dir / REAL[1])  # P-MON-CKP, T-JUS-CKP, P-JUS-CKGL, QGL all NaN
    df = read_instance(info).iloc[:60]
    data = encode(instance_id=info.instance_id, well_id=info.well_id, source=info.source,
                  event_class=info.event_class, frame=df)
    head = json.loads(data[PREFIX.size : PREFIX.size + PREFIX.unpack_from(data)[1]])
    assert head["vars"] == list(df.columns.drop("class"))
    assert set(head["nan_vars"]) == {"P-MON-CKP", "T-JUS-CKP", "P-JUS-CKGL", "QGL"}
    assert len(data) == PREFIX.size + len(json.dumps(head, separators=(",", ":"))) + 60 * (8 + 2 + 8 * 3)
    rows = decode_batch([data]).rows
    assert list(rows.columns[8:]) == head["vars"] and rows["QGL"].isna().all()


def test_hand_packed_record_decodes_like_the_encoder_writes():
    idx = pd.to_datetime(TS, unit="ms")
    frame = pd.DataFrame({"P-PDG": [1.0, np.nan, 3, 4, 5], "QGL": [1.0] * 5,
                          "class": pd.array([0, 0, 4, None, 4], "Int64")}, idx)
    ours = decode_batch([good_record()]).rows
    theirs = decode_batch([encode(instance_id="4_x", well_id="W", source="REAL", event_class=4, frame=frame,
                                  sent_at=1.7e9)]).rows
    pd.testing.assert_frame_equal(ours, theirs)
    assert ours["label"].tolist()[:3] == [0, 0, 4] and ours["label"].isna().tolist() == [0, 0, 0, 1, 0]


def test_mixed_v1_and_v2_batch_keeps_record_order_and_fills_missing_variables():
    idx = pd.date_range("2020-01-01", periods=3, freq="s")
    only_pdg = pd.DataFrame({"P-PDG": [1.0, 2.0, 3.0]}, idx)
    qgl_first = pd.DataFrame({"QGL": [7.0, np.nan, 9.0], "P-PDG": [4.0, 5.0, 6.0]}, idx + pd.Timedelta("3s"))
    all_nan = pd.DataFrame({"T-TPT": [np.nan] * 3, "P-PDG": [0.0] * 3}, idx + pd.Timedelta("6s"))
    meta = {"instance_id": "4_x", "well_id": "W", "source": "REAL", "event_class": 4, "sent_at": 1.7e9}
    mixed = [encode(**meta, frame=only_pdg, version=1), encode(**meta, frame=qgl_first),
             encode(**meta, frame=all_nan, version=1), encode(**meta, frame=all_nan)]
    plain = [encode(**meta, frame=f, version=1) for f in (only_pdg, qgl_first, all_nan, all_nan)]
    got, ref = decode_batch(mixed).rows, decode_batch(plain).rows
    pd.testing.assert_frame_equal(got, ref, check_exact=True)
    assert list(got.columns[8:]) == ["P-PDG", "QGL", "T-TPT"]  # order of first appearance
    assert got["record"].tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    assert got["QGL"].isna().tolist() == [True] * 3 + [False, True, False] + [True] * 6
    assert got["T-TPT"].isna().all()


# ------------------------------------------------------------------ poison


def _mutate_header(**changes) -> bytes:
    h = {**HEADER, **changes}
    return pack({k: v for k, v in h.items() if v is not ...}, TS, [0] * 5, {"P-PDG": [1.0] * 5, "QGL": [1.0] * 5})


POISON = {
    "bad magic": (b"PSW9" + good_record()[4:], "unsupported binary wire version b'PSW9'"),
    "garbage": (b"\x00 not a record", "not a v2 record either"),
    "empty": (b"", "not valid JSON"),
    "not bytes": (None, "record is NoneType, not bytes"),
    "short prefix": (good_record()[:10], "shorter than its 20-byte prefix"),
    "header cut": (good_record()[:40], "truncated v2 record: header of"),
    "body cut": (good_record()[:-1], "truncated or corrupt"),
    "extra bytes": (good_record() + b"\x00", "truncated or corrupt"),
    "n larger than arrays": (pack(HEADER, TS, [0] * 5, {"P-PDG": [1.0] * 5, "QGL": [1.0] * 5}, n=6),
                             "announces 6 rows x 2 variables"),
    "n = 0": (pack(HEADER, [], [], {"P-PDG": [], "QGL": []}), "n = 0"),
    "header not JSON": (pack(HEADER, TS, [0] * 5, {}, raw_header=b"{nope"), "v2 header is not valid JSON"),
    "header not object": (pack(HEADER, TS, [0] * 5, {}, raw_header=b"[1, 2]"), "not a JSON object"),
    "header NaN": (pack(HEADER, TS, [0] * 5, {}, raw_header=b'{"instance_id": NaN}'), "non-finite number NaN"),
    "header not UTF-8": (pack(HEADER, TS, [0] * 5, {}, raw_header=b"\xff\xfe"), "v2 header is not valid JSON"),
    "missing instance_id": (_mutate_header(instance_id=...), "missing field 'instance_id'"),
    "missing vars": (_mutate_header(vars=...), "missing field 'vars'"),
    "empty instance_id": (_mutate_header(instance_id=""), "instance_id must be a non-empty string"),
    "well_id with slash": (_mutate_header(well_id="a/b"), "well_id must be a non-empty string without '/'"),
    "unknown source": (_mutate_header(source="MARS"), "unknown source 'MARS'"),
    "event_class 42": (_mutate_header(event_class=42), "event_class 42 is not a 3W event class"),
    "event_class bool": (_mutate_header(event_class=True), "event_class True"),
    "unknown variable": (_mutate_header(vars=["P-PDG", "FOO"]), "unknown variable 'FOO'"),
    "vars not a list": (_mutate_header(vars="P-PDG"), "vars must be a list"),
    "variable twice": (_mutate_header(vars=["P-PDG", "P-PDG"]), "listed twice"),
    "nan_vars not in vars": (_mutate_header(nan_vars=["T-TPT"]), "nan_vars must list variables of vars"),
    "sent_at inf": (pack(HEADER, TS, [0] * 5, {"P-PDG": [1.0] * 5, "QGL": [1.0] * 5}, sent_at=float("inf")),
                    "sent_at inf is not epoch seconds"),
    "inf value": (pack(HEADER, TS, [0] * 5, {"P-PDG": [1.0] * 5, "QGL": [1, 2, -np.inf, 4, 5]}),
                  "values['QGL'] holds a non-finite number"),
    "ts out of range": (pack(HEADER, [10**15 + i for i in range(5)], [0] * 5,
                             {"P-PDG": [1.0] * 5, "QGL": [1.0] * 5}), "ts out of range"),
    "label 42": (pack(HEADER, TS, [0, 0, 42, 0, 0], {"P-PDG": [1.0] * 5, "QGL": [1.0] * 5}),
                 "label 42 is not a 3W label"),
    "label -2": (pack(HEADER, TS, [0, -2, 0, 0, 0], {"P-PDG": [1.0] * 5, "QGL": [1.0] * 5}),
                 "label -2 is not a 3W label"),
}


@pytest.mark.parametrize("case", sorted(POISON))
def test_poison_record_is_rejected_with_a_reason_and_the_batch_goes_on(case):
    bad, reason = POISON[case]
    good = good_record()
    batch = decode_batch([good, bad, good])
    assert [i for i, _ in batch.rejected] == [1], batch.rejected
    msg = batch.rejected[0][1]
    assert reason in msg and "\n" not in msg
    assert len(batch.rows) == 10 and set(batch.rows["record"]) == {0, 2}
    with pytest.raises(WireError, match="."):
        decode_one(bad)


def test_many_poison_records_in_a_real_batch(threew_dir):
    """Array-level rejects (found over the whole batch at once) and header rejects, mixed with 600 real records:
    exactly the bad ones are refused, in record order, and every good row is as if they were never there."""
    good = records(frames(threew_dir, rows=3000), 10, version=2)[:600]
    assert len(good) == 600
    poison = {5: POISON["inf value"][0], 77: POISON["label 42"][0], 78: POISON["ts out of range"][0],
              300: POISON["unknown source"][0], 599: POISON["body cut"][0], 0: b"{not json"}
    batch_in = list(good)
    for i, bad in poison.items():
        batch_in[i] = bad
    batch = decode_batch(batch_in)
    assert [i for i, _ in batch.rejected] == sorted(poison)
    kept = [i for i in range(len(good)) if i not in poison]
    ref = decode_batch([good[i] for i in kept]).rows
    ref["record"] = np.asarray(kept)[ref["record"].to_numpy()]
    pd.testing.assert_frame_equal(batch.rows, ref, check_exact=True)
    assert "non-finite" in dict(batch.rejected)[5] and "label 42" in dict(batch.rejected)[77]


def test_a_batch_of_only_bad_records_gives_no_rows():
    batch = decode_batch([POISON["label 42"][0], b"{not json"])
    assert len(batch.rows) == 0 and [i for i, _ in batch.rejected] == [0, 1]
    assert list(batch.rows.columns[:8]) == ["record", "instance_id", "well_id", "source", "event_class",
                                            "timestamp", "label", "sent_at"]


def test_v1_json_still_decoded_and_v1_rules_unchanged():
    doc = json.loads(encode(instance_id="4_x", well_id="W", source="REAL", event_class=4, version=1,
                            frame=pd.DataFrame({"P-PDG": [1.0, 2.0]}, pd.date_range("2020-01-01", periods=2))))
    assert doc["v"] == 1 and decode_one(json.dumps(doc).encode())["values"] == {"P-PDG": [1.0, 2.0]}
    doc["v"] = 2  # JSON is v1 only: v2 is binary
    assert "schema version 2" in decode_batch([json.dumps(doc).encode()]).rejected[0][1]


# ------------------------------------------------------------------ decode_one, encode


def test_decode_one_v2_gives_arrays():
    doc = decode_one(good_record())
    assert doc["v"] == 2 and doc["instance_id"] == "4_x" and doc["sent_at"] == 1.7e9
    assert doc["ts"].tolist() == TS
    assert list(doc["values"]) == ["P-PDG", "QGL"] and np.isnan(doc["values"]["P-PDG"][1])
    assert doc["label"].tolist()[:3] == [0, 0, 4] and doc["label"].isna().tolist() == [0, 0, 0, 1, 0]


@pytest.mark.parametrize(
    "frame, reason",
    [
        (pd.DataFrame({"P-PDG": [1.0, np.inf]}), "P-PDG holds a non-finite value"),
        (pd.DataFrame({"P-PDG": [1.0, 2.0], "class": [0, -1]}), "label -1 cannot be carried"),
        (pd.DataFrame({"P-PDG": [1.0, 2.0], "class": [0.5, 1]}), "label 0.5 cannot be carried"),
    ],
)
def test_encode_refuses_what_the_format_cannot_carry(frame, reason):
    frame.index = pd.date_range("2020-01-01", periods=len(frame))
    with pytest.raises(WireError, match=reason):
        encode(instance_id="4_x", well_id="W", source="REAL", event_class=4, frame=frame)
    with pytest.raises(ValueError, match="unknown wire version"):
        encode(instance_id="4_x", well_id="W", source="REAL", event_class=4, frame=frame, version=3)


def test_header_cache_does_not_leak_between_records():
    """Same header bytes, different n / sent_at / arrays: each record decodes to its own rows."""
    a = pack(HEADER, TS[:2], [0, 0], {"P-PDG": [1.0, 2.0], "QGL": [3.0, 4.0]}, sent_at=1.0)
    b = pack(HEADER, TS, [4] * 5, {"P-PDG": [5.0] * 5, "QGL": [6.0] * 5}, sent_at=2.0)
    rows = decode_batch([a, b, a]).rows
    assert rows["sent_at"].tolist() == [1.0, 1.0] + [2.0] * 5 + [1.0, 1.0]
    assert rows["P-PDG"].tolist() == [1.0, 2.0] + [5.0] * 5 + [1.0, 2.0]
    wire._HEADERS.clear()
    assert decode_batch([a]).rows["QGL"].tolist() == [3.0, 4.0]


# ------------------------------------------------------------------ the producer emits v2


def test_producer_puts_v2_records_that_decode_to_the_source(fresh_stream, threew_dir):
    from producer.kinesis_writer import MAX_BYTES_PER_RECORD, KinesisWriter
    from producer.replay import replay

    stream = fresh_stream(1)
    paths = [threew_dir / REAL[0], threew_dir / REAL[2]]
    summary = replay(paths, stream=stream, speed="max", max_rows_per_instance=300, rows_per_record=60,
                     checkpoint=False, progress=False, seed=1)
    assert summary.rows == 600
    # a frame too big for one record is split into records <= 1 MiB (v2 is ~50 B/row: 21,600 rows > 1 MiB)
    info = parse_instance_path(threew_dir / REAL[3])
    big = KinesisWriter(stream, rows_per_record=30_000, linger_ms=0)
    big.add(info, read_instance(info))
    big.close()
    assert big.stats.records >= 2 and big.stats.rows == 21_600

    data = [d for records in shard_records(stream).values() for d in records]
    assert data and all(d.startswith(MAGIC) for d in data)
    assert max(map(len, data)) <= MAX_BYTES_PER_RECORD
    batch = decode_batch(data)
    assert not batch.rejected and len(batch.rows) == 600 + 21_600
    for p in (*paths, threew_dir / REAL[3]):
        info = parse_instance_path(p)
        src = read_instance(info)
        got = batch.rows[batch.rows["instance_id"] == info.instance_id].sort_values("timestamp")
        src = src.iloc[: len(got)]
        assert got["timestamp"].tolist() == src.index.tolist()
        np.testing.assert_array_equal(got["P-TPT"].to_numpy(), src["P-TPT"].to_numpy())
        assert got["label"].fillna(-1).tolist() == src["class"].fillna(-1).tolist()
