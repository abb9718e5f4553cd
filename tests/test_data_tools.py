"""3W data tooling: synthetic data, ``data info`` on the real sample, ``data fetch`` against a local server."""

from __future__ import annotations

import hashlib
import http.server
import io
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from petrostream import schema
from petrostream.dataset import discover, read_instance
from petrostream.errors import UserError
from petrostream.synth import synthesize

SMALL = {"instances_per_class": 2, "hours": 0.5}


def _cli() -> typer.Typer:
    from petrostream import cli_data

    app = typer.Typer()
    cli_data.register(app)
    return app


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------------------------- synth


def test_synth_is_deterministic(tmp_path):
    synthesize(tmp_path / "a", seed=11, **SMALL)
    synthesize(tmp_path / "b", seed=11, **SMALL)
    synthesize(tmp_path / "c", seed=12, **SMALL)
    a, b, c = (_tree_bytes(tmp_path / x) for x in "abc")
    assert a == b  # byte-identical, SYNTHETIC.md included
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a if k.endswith(".parquet"))


def test_synth_instances_are_3w_shaped_labelled_and_plausible(tmp_path):
    files = synthesize(tmp_path, seed=3, **SMALL)
    marker = (tmp_path / "SYNTHETIC.md").read_text()
    assert "SYNTHETIC DATA" in marker and "not the Petrobras 3W dataset" in marker
    infos = discover(tmp_path)
    assert len(infos) == len(files) == 10
    assert {i.source for i in infos} == {"SYNTHETIC"}
    assert {i.event_class for i in infos} == {0, 2, 3, 4, 8}
    assert all(i.path.name.startswith("SYNTHETIC_") and len(i.path.stem) == len("SYNTHETIC_00001") for i in infos)
    for info in infos:
        raw = pd.read_parquet(info.path)  # as written: the 3W v2 conventions themselves
        assert raw.index.name == "timestamp" and str(raw.index.dtype) == "datetime64[ns]"
        assert str(raw["class"].dtype) == "Int64"
        assert all(str(raw[c].dtype) == "float64" for c in raw.columns if c != "class")
        assert set(schema.V1_VARIABLES) < set(raw.columns) and "ESTADO-DHSV" in raw.columns
        df = read_instance(info)
        assert len(df) == 1800 and (df.index.to_series().diff().dropna() == pd.Timedelta(seconds=1)).all()
        k = info.event_class
        labels = df["class"].dropna().astype(int)
        allowed = {0, k} | ({100 + k} if schema.EVENTS[k][2] else set())
        assert set(labels.unique()) <= allowed
        if k:  # a normal stretch first, then the event (and its transient where 3W has one)
            assert labels.iloc[0] == 0 and labels.iloc[-1] == k
            assert set(labels.unique()) == allowed
            first_event = labels[labels != 0].iloc[0]
            assert first_event == (100 + k if schema.EVENTS[k][2] else k)
        else:
            assert set(labels.unique()) == {0}
        for var in schema.V1_VARIABLES:
            s = df[var].dropna()
            kind = schema.VARIABLE_BY_NAME[var].kind
            if kind == "pressure":
                s = s[s != 0]  # one synthetic well imitates 3W's dead P-PDG gauge (0 Pa)
                assert s.empty or (s.min() > 5e5 and s.max() < 3.5e7), var
            elif kind == "temperature":
                assert s.min() > 15 and s.max() < 130, var
            else:
                assert s.min() > 0.5 and s.max() < 3, var
        for valve in ("ESTADO-DHSV", "ESTADO-M1", "ESTADO-W1", "ESTADO-SDV-P"):
            assert set(np.unique(df[valve])) <= {0.0, 0.5, 1.0}


def test_synth_event_signatures(tmp_path):
    """Events move the variables the way the docs say (not just the labels)."""
    synthesize(tmp_path, seed=5, instances_per_class=1, hours=1.0, classes=[2, 3, 8])
    by_class = {i.event_class: read_instance(i) for i in discover(tmp_path)}

    def before_after(df, var):
        lab = df["class"]
        return df.loc[lab == 0, var].median(), df.loc[lab.isin([2, 8]), var].median()

    p0, p1 = before_after(by_class[2], "P-TPT")
    assert p1 < 0.8 * p0  # spurious DHSV closure: the tubing above the valve depressurises
    p0, p1 = before_after(by_class[8], "P-MON-CKP")
    assert p1 < 0.7 * p0  # hydrate plug: pressure downstream of it falls
    slug = by_class[3]
    normal, event = slug.loc[slug["class"] == 0, "P-TPT"], slug.loc[slug["class"] == 3, "P-TPT"]
    assert event.std() > 5 * normal.std()  # severe slugging: large pressure cycles


def test_synth_refuses_to_mix_with_real_data(tmp_path):
    (tmp_path / "4").mkdir()
    (tmp_path / "4" / "WELL-00001_20170316120203.parquet").write_bytes(b"PAR1")
    with pytest.raises(UserError, match="non-synthetic"):
        synthesize(tmp_path, seed=0, **SMALL)


def test_synth_cli_default_set(tmp_path):
    res = CliRunner().invoke(_cli(), ["data", "synth", "--dest", str(tmp_path / "syn"), "--seed", "1"])
    assert res.exit_code == 0, res.output
    assert "SYNTHETIC data: 20 instances" in res.output
    infos = discover(tmp_path / "syn")
    assert len(infos) == 20 and {i.event_class for i in infos} == {0, 2, 3, 4, 8}


# ----------------------------------------------------------------------------------------------- info


def test_info_on_real_sample(threew_dir):
    res = CliRunner().invoke(_cli(), ["data", "info", str(threew_dir), "--no-progress"])
    assert res.exit_code == 0, res.output
    out = res.output
    n = len(discover(threew_dir))
    assert f"{n:,} instances" in out
    for text in ("Flow Instability", "Spurious Closure of DHSV", "REAL", "SIMULATED", "DRAWN", "P-JUS-CKGL",
                 "dead P-PDG", "absent from every instance", "NA"):
        assert text in out, text
    assert "unreadable" not in out


def test_info_reports_bad_files_and_carries_on(tmp_path):
    synthesize(tmp_path, seed=0, instances_per_class=1, hours=0.5, classes=[0, 3])
    (tmp_path / "3" / "SYNTHETIC_00099.parquet").write_text("timestamp,P-PDG\n2020-01-01,1\n")
    res = CliRunner().invoke(_cli(), ["data", "info", str(tmp_path), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "2 instances" in res.output and "SYNTHETIC data" in res.output
    assert "1 unreadable file(s)" in res.output and "3/SYNTHETIC_00099.parquet" in res.output


# ----------------------------------------------------------------------------------------------- fetch


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves files from ``root`` with single-range ``Range: bytes=N-`` support; records requests."""

    root: Path
    seen: list[dict]

    def do_GET(self):  # noqa: N802 - http.server API
        self.seen.append({"path": self.path, "range": self.headers.get("Range")})
        path = self.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404, "Not Found")
            return
        data = path.read_bytes()
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            body = data[start:]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            body = data
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def archive_server(tmp_path_factory):
    """A loopback HTTP server serving a zip and a tar.gz of a small 3W-layout tree (like the 3W repository)."""
    base = tmp_path_factory.mktemp("srv")
    data = base / "tree"
    synthesize(data, seed=2, instances_per_class=1, hours=0.2, classes=[0, 4])
    files = sorted(p for p in data.rglob("*.parquet"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("3W-2.0.0/README.md", "3W\n")
        for p in files:
            zf.write(p, f"3W-2.0.0/dataset/{p.relative_to(data).as_posix()}")
    (base / "v2.0.0.zip").write_bytes(buf.getvalue())
    with tarfile.open(base / "3w.tar.gz", "w:gz") as tf:
        for p in files:
            tf.add(p, f"3W-2.0.0/dataset/{p.relative_to(data).as_posix()}")
    handler = type("H", (_RangeHandler,), {"root": base, "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    yield {"url": url, "base": base, "handler": handler, "instances": len(files)}
    server.shutdown()
    server.server_close()


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ["v2.0.0.zip", "3w.tar.gz"])
def test_fetch_full_download(tmp_path, archive_server, name):
    from petrostream.fetch import fetch

    src = archive_server["base"] / name
    res = fetch(tmp_path, url=f"{archive_server['url']}/{name}", sha256=_sha(src), progress=False)
    assert res.archive.read_bytes() == src.read_bytes()
    assert res.downloaded_bytes == src.stat().st_size and res.resumed_from == 0
    assert not list(tmp_path.glob("*.part"))
    assert res.layout_dir.name == "dataset" and res.instances == archive_server["instances"]
    assert len(discover(res.layout_dir)) == archive_server["instances"]


def test_fetch_resumes_a_truncated_part(tmp_path, archive_server):
    from petrostream.fetch import archive_name, fetch

    src = archive_server["base"] / "v2.0.0.zip"
    url = f"{archive_server['url']}/v2.0.0.zip"
    half = src.stat().st_size // 2
    part = tmp_path / (archive_name(url) + ".part")
    part.write_bytes(src.read_bytes()[:half])
    seen = archive_server["handler"].seen
    seen.clear()
    res = fetch(tmp_path, url=url, sha256=_sha(src), progress=False)
    assert seen == [{"path": "/v2.0.0.zip", "range": f"bytes={half}-"}]
    assert res.resumed_from == half and res.downloaded_bytes == src.stat().st_size - half
    assert res.archive.read_bytes() == src.read_bytes() and not part.exists()
    assert res.instances == archive_server["instances"]


def test_fetch_checksum_mismatch_deletes_the_part(tmp_path, archive_server):
    from petrostream.fetch import FetchError, fetch

    with pytest.raises(FetchError, match="checksum mismatch") as err:
        fetch(tmp_path, url=f"{archive_server['url']}/v2.0.0.zip", sha256="0" * 64, progress=False)
    assert "\n" not in str(err.value)
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob("*.zip"))


def test_fetch_errors_are_one_line(tmp_path, archive_server):
    from petrostream.fetch import FetchError, fetch

    with pytest.raises(FetchError, match="HTTP 404"):
        fetch(tmp_path, url=f"{archive_server['url']}/missing.zip", progress=False)
    # a closed port: unreachable, said in one line, exit 1 through the real CLI
    proc = subprocess.run(
        [sys.executable, "-m", "petrostream.cli", "data", "fetch", "--dest", str(tmp_path), "--url",
         "http://127.0.0.1:9/3w.zip", "--no-progress"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == [lines[0]] and lines[0].startswith("error: download failed: 127.0.0.1:9 unreachable"), proc.stderr
    assert "Traceback" not in proc.stderr
