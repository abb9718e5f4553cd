"""``make bench`` / ``python -m bench.run``: run the benchmarks, write ``results.json`` and ``results.md``.

    python -m bench.run                                # everything, full sizes (several minutes)
    python -m bench.run --smoke --out /tmp/b           # tiny sizes (the test runs this)
    python -m bench.run --sections producer,queries    # a subset
    python -m bench.run --full-training                # also `petrostream train --profile full` (long)

Starts its own local AWS emulator on a free port (stopped at the end) and uses the real 3W sample
(../shared/data/3w, $PETROSTREAM_SAMPLE_DIR or --data), else ``petrostream data synth`` output (said so in
the results).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

from bench.common import REPO_ROOT, Context, machine_facts, say

SECTIONS = ("producer", "inference", "training", "queries", "model")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run",
                                description="PetroStream benchmarks (see docs/benchmarks.md)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks the harness, figures are not meaningful")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "out",
                   help="directory for results.json and results.md (default: bench/out)")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)")
    p.add_argument("--full-training", action="store_true",
                   help="also time `petrostream train --profile full` (up to an hour)")
    p.add_argument("--data", type=Path, default=None, help="3W-layout directory (default: the shared real sample)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory (logs, lake) for inspection")
    args = p.parse_args(argv)
    chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
    bad = [s for s in chosen if s not in SECTIONS]
    if bad or not chosen:
        p.error(f"--sections: unknown {bad or 'empty'}; choose from {','.join(SECTIONS)}")
    args.chosen = [s for s in SECTIONS if s in chosen]
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    from bench import report

    t0 = time.monotonic()
    cmd = "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:])
    ctx = Context(smoke=args.smoke, data=args.data, full_training=args.full_training, keep_tmp=args.keep_tmp)
    results: dict = {"meta": {"command": cmd.strip(), "smoke": args.smoke, "sections": args.chosen,
                              "machine": machine_facts()}}
    say("setup", f"{'SMOKE run, ' if args.smoke else ''}sections {','.join(args.chosen)}; temp dir {ctx.tmp}")
    failed = []
    try:
        ctx.setup()
        say("setup", f"local emulator at {ctx.emulator.endpoint}")
        ctx.data  # noqa: B018 - resolves (or synthesises) the data and records its facts
        results["meta"]["data"] = ctx.data_facts
        say("setup", f"data: {ctx.data_facts.get('kind')}, {ctx.data_facts.get('instances')} instances")
        for name in args.chosen:
            say(name, "--- start")
            ts = time.monotonic()
            try:
                out = importlib.import_module(f"bench.{name}").run(ctx)
            except Exception as exc:  # one broken section must not hide the others
                traceback.print_exc()
                out = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:400] if str(exc) else ''}"}
                failed.append(name)
            out["section_s"] = round(time.monotonic() - ts, 1)
            out["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]  # the machine is shared: say how busy
            results[name] = out
            say(name, f"--- done in {out['section_s']:.0f} s")
    finally:
        ctx.close()
    results["ceiling"] = report.ceiling(results)
    results["headline"] = report.headline(results)
    results["meta"]["elapsed_s"] = round(time.monotonic() - t0, 1)
    results["meta"]["notes"] = ctx.notes
    if args.keep_tmp:
        results["meta"]["tmp_dir"] = str(ctx.tmp)

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write(out_dir / "results.json", json.dumps(results, indent=2, default=str) + "\n")
    md = report.render(results)
    _write(out_dir / "results.md", md)
    print(md.split("\n## ", 2)[0] + "\n## " + md.split("\n## ", 2)[1].rstrip())  # title, machine, headline
    say("done", f"results in {out_dir / 'results.json'} and {out_dir / 'results.md'} "
                f"({results['meta']['elapsed_s']:.0f} s)")
    if failed:
        say("done", f"sections that failed: {', '.join(failed)}")
    return 1 if failed else 0


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
