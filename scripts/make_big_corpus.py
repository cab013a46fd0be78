"""A synthetic corpus of millions of pairs for the larger-than-memory data path: Multi30k and Tatoeba training
pairs repeated, each copy marked (" (k)" on both sides) so that no two lines are the same.

    .venv/bin/python scripts/make_big_corpus.py --out /tmp/big-de-en --pairs 3000000

Writes {train,val}.{de,en}.gz in the Multi30k layout (`translate train --data /tmp/big-de-en`); val is Multi30k's.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def read_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--pairs", type=int, default=3_000_000)
    p.add_argument("--sources", nargs="+", type=Path,
                   default=[SHARED / "multi30k", SHARED / "tatoeba-deu-eng"], help="corpora to repeat (train split)")
    args = p.parse_args()
    src = [line for folder in args.sources for line in read_lines(folder / "train.de.gz")]
    tgt = [line for folder in args.sources for line in read_lines(folder / "train.en.gz")]
    args.out.mkdir(parents=True, exist_ok=True)
    for lang, lines in (("de", src), ("en", tgt)):
        with gzip.open(args.out / f"train.{lang}.gz", "wt", encoding="utf-8", compresslevel=1) as f:
            copies = ((i, line) for i in itertools.count() for line in lines)
            for i, line in itertools.islice(copies, args.pairs):
                f.write(f"{line} ({i})\n" if i else line + "\n")
        shutil.copyfile(args.sources[0] / f"val.{lang}.gz", args.out / f"val.{lang}.gz")
    print(f"{args.pairs:,} pairs from {len(src):,} distinct ones in {args.out}")


if __name__ == "__main__":
    main()
