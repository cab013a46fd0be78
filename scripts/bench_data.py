"""Peak memory and start-up time of `translate train` on a corpus of millions of pairs, against Multi30k's 29k.

    .venv/bin/python scripts/make_big_corpus.py --out /tmp/big-de-en --pairs 3000000
    .venv/bin/python scripts/bench_data.py --big /tmp/big-de-en

Each run is `translate train --max-steps N` in a fresh process with its own empty cache folder the first time
(text to Arrow, SentencePiece, encoding in several processes) and the same folder again (cached). Prints the peak
RSS of the largest process of the run (ru_maxrss: the training process, or a tokenizing worker), the set-up time the
command reports, and the wall time.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(done.stderr[-3000:] if done.returncode else "")
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
print(done.stderr.replace("\\r", "\\n"))
"""


def run(corpus: str, cache: Path, steps: int) -> tuple[int, float, float]:
    """(peak RSS MB, set-up seconds, wall seconds) of one training run."""
    out = Path(tempfile.mkdtemp()) / "run"
    command = [
        str(ROOT / ".venv" / "bin" / "translate"), "train", "--data", corpus, "--out", str(out),
        "--max-steps", str(steps), "--eval-every", "0", "--set", "train.eval_sentences=50",
    ]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True,
                          env={**_env(), "TRANSLATE_CACHE": str(cache)})
    wall = time.perf_counter() - start
    status, peak = done.stdout.splitlines()[0].split()
    if status != "0":
        sys.exit(f"training failed on {corpus}:\n{done.stderr}")
    setup = re.search(r"set up in ([\d.]+) s", done.stdout)
    return int(peak), float(setup.group(1)) if setup else float("nan"), wall


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "HF_HUB_OFFLINE": "1"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--big", required=True, help="the large corpus (scripts/make_big_corpus.py)")
    p.add_argument("--small", default=str(ROOT.parent / "shared" / "data" / "multi30k"))
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args()
    rows = []
    for name, corpus in (("Multi30k", args.small), ("large", args.big)):
        cache = Path(tempfile.mkdtemp(prefix="translate-cache-"))
        for when in ("first run", "cached"):
            peak, setup, wall = run(corpus, cache, args.steps)
            rows.append((name, when, peak, setup, wall))
            print(f"{name:9s} {when:10s} peak RSS {peak:6,} MB  set-up {setup:6.1f} s  wall {wall:6.1f} s", flush=True)
    base = {when: peak for name, when, peak, _, _ in rows if name == "Multi30k"}
    for name, when, peak, _, _ in rows:
        if name == "large":
            print(f"large corpus, {when}: {peak - base[when]:+,} MB over Multi30k")


if __name__ == "__main__":
    main()
