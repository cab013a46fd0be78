"""Parallel corpora (read through Hugging Face `datasets`), batches and the token-bucket sampler.

A corpus spec (`--data`) is one of:
- a folder of Multi30k-style files `{split}.{lang}` or `{split}.{lang}.gz`, one sentence a line;
- a TSV file (`.tsv`): two columns, with a header naming the languages or in (src, tgt) order;
- a JSONL file (`.jsonl`/`.json`): `{"translation": {"de": ..., "en": ...}}` or flat `{"de": ..., "en": ...}` rows;
- `hub:NAME[:CONFIG]`: a dataset on the Hugging Face hub (needs the network).
A file path may contain `{split}` (`corpus/{split}.tsv`); without it the one file serves every split.
"""

from __future__ import annotations

import csv
import gzip
import logging
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from translate.errors import CorpusError
from translate.tokenizer import BOS_ID, EOS_ID, PAD_ID, TokenizerPair

log = logging.getLogger(__name__)

Pair = tuple[str, str]
HUB_PREFIX = "hub:"
MIX = ","  # separates the corpora of a mixed spec
MULTI30K_LANGS = ("en", "de", "fr", "cs")
MULTI30K_SPLITS = ("train", "val", "test_2016_flickr")
MULTI30K_URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/{name}"


# --- reading -----------------------------------------------------------------------------------------


def read_parallel(spec: str | Path, src: str, tgt: str, split: str) -> list[Pair]:
    """Read one split of a parallel corpus as (src, tgt) string pairs, whitespace-stripped.

    `spec` may name several corpora separated by commas: their pairs are concatenated, each corpus's count logged.
    """
    if src == tgt:
        raise CorpusError(f"source and target language are both {src!r}")
    spec = str(spec)
    if MIX in spec or "*" in spec:
        return read_mixed(spec, src, tgt, split)[0]
    if spec.startswith(HUB_PREFIX):
        return _read_hub(spec[len(HUB_PREFIX):], src, tgt, split)
    path = Path(spec.replace("{split}", split))
    if path.is_dir():
        return _read_folder(path, src, tgt, split)
    if not path.exists():
        raise CorpusError(f"corpus not found: {path}")
    suffixes = [s for s in path.suffixes if s != ".gz"]
    kind = suffixes[-1] if suffixes else ""
    if kind == ".tsv":
        return _read_tsv(path, src, tgt)
    if kind in (".jsonl", ".json"):
        return _read_jsonl(path, src, tgt)
    raise CorpusError(f"unknown corpus format for {path}: expected a folder, a .tsv, a .jsonl file or hub:NAME")


def read_mixed(
    spec: str | Path, src: str, tgt: str, split: str, weighted: bool = False,
) -> tuple[list[Pair], dict[str, int]]:
    """The pairs of every corpus a spec names, concatenated, and how many each gave. `weighted` (training data):
    a corpus written `path*N` comes N times, so a small corpus is not drowned by a big one."""
    pairs: list[Pair] = []
    counts: dict[str, int] = {}
    for part, times in corpora(spec):
        found = read_parallel(part, src, tgt, split) * (times if weighted else 1)
        counts[part] = len(found)
        pairs += found
    return pairs, counts


def corpora(spec: str | Path) -> list[tuple[str, int]]:
    """The corpora a spec names and their weights: `a*3,b` mixes corpus a, three times, and corpus b."""
    out = []
    for part in (p.strip() for p in str(spec).split(MIX)):
        path, star, times = part.rpartition("*")
        if star and times.isdigit() and int(times) > 0:
            out.append((path.strip(), int(times)))
        elif part:
            out.append((part, 1))
    return out


def has_split(spec: str | Path, split: str) -> bool:
    """Whether the corpus has its own files for `split` (a single file serves every split); mixed: all of them."""
    spec = str(spec)
    if MIX in spec or "*" in spec:
        return all(has_split(part, split) for part, _ in corpora(spec))
    if spec.startswith(HUB_PREFIX) or "{split}" in spec:
        return True
    path = Path(spec)
    if not path.is_dir():
        return False
    return any(path.glob(f"{split}.*"))


def _load_dataset(*args, **kwargs):
    """`datasets.load_dataset`, with its failures turned into one-line corpus errors."""
    import datasets  # imported lazily: it is slow to import and only needed when reading

    try:
        return datasets.load_dataset(*args, keep_in_memory=True, **kwargs)
    except CorpusError:
        raise
    except Exception as e:  # datasets raises many types (OSError, ValueError, DatasetGenerationError...)
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CorpusError(f"could not read {args[0] if args else 'corpus'} data: {type(e).__name__}: {first_line}") from e


def _read_folder(folder: Path, src: str, tgt: str, split: str) -> list[Pair]:
    files = {}
    for lang in (src, tgt):
        candidates = [folder / f"{split}.{lang}", folder / f"{split}.{lang}.gz"]
        found = [p for p in candidates if p.is_file()]
        if not found:
            langs = sorted({p.name.split(".")[1] for p in folder.glob(f"{split}.*") if p.name.count(".") >= 1})
            splits = sorted({p.name.split(".")[0] for p in folder.iterdir() if p.is_file()})
            if langs:
                raise CorpusError(f"language {lang!r} not in {folder} for split {split!r} (found: {', '.join(langs)})")
            raise CorpusError(f"split {split!r} not in {folder} (found: {', '.join(splits) or 'no files'})")
        files[lang] = found[0]
    columns = {}
    for lang, path in files.items():
        ds = _load_dataset("text", data_files={split: str(path)}, split=split)
        columns[lang] = ds["text"]
    n_src, n_tgt = len(columns[src]), len(columns[tgt])
    if n_src != n_tgt:
        raise CorpusError(
            f"line counts differ in {folder} split {split!r}: {files[src].name} has {n_src} lines, "
            f"{files[tgt].name} has {n_tgt}; the files must be line-aligned"
        )
    return [(s.strip(), t.strip()) for s, t in zip(columns[src], columns[tgt])]


def _read_tsv(path: Path, src: str, tgt: str) -> list[Pair]:
    with _open_text(path) as f:
        header = f.readline().rstrip("\n").split("\t")
    has_header = src in header and tgt in header
    if not has_header and len(header) < 2:
        raise CorpusError(f"{path}: expected two tab-separated columns, found {len(header)}")
    import datasets

    names = header if has_header else [src, tgt] + [f"extra{i}" for i in range(len(header) - 2)]
    ds = _load_dataset(
        "csv", data_files=str(path), split="train", delimiter="\t", quoting=csv.QUOTE_NONE, keep_default_na=False,
        features=datasets.Features({name: datasets.Value("string") for name in names}),  # "28" stays text
        **({} if has_header else {"column_names": names}),
    )
    return [(str(s).strip(), str(t).strip()) for s, t in zip(ds[src], ds[tgt])]


def _read_jsonl(path: Path, src: str, tgt: str) -> list[Pair]:
    ds = _load_dataset("json", data_files=str(path), split="train")
    return _pairs_from_columns(ds, src, tgt, str(path))


def _read_hub(name: str, src: str, tgt: str, split: str) -> list[Pair]:
    repo, _, config = name.partition(":")
    if not repo:
        raise CorpusError("hub corpus needs a name: hub:NAME or hub:NAME:CONFIG")
    args = (repo, config) if config else (repo,)
    try:
        ds = _load_dataset(*args, split=split)
    except CorpusError as e:
        raise CorpusError(f"{e} (hub corpora need the network; set HF_HUB_OFFLINE=0 and check the name)") from e
    return _pairs_from_columns(ds, src, tgt, f"hub:{name}")


def _pairs_from_columns(ds, src: str, tgt: str, where: str) -> list[Pair]:
    """Flat `{src}`/`{tgt}` columns, or wmt-style rows nested under `translation`."""
    cols = ds.column_names
    if src in cols and tgt in cols:
        return [(str(s or "").strip(), str(t or "").strip()) for s, t in zip(ds[src], ds[tgt])]
    if "translation" in cols:
        rows = ds["translation"]
        langs = sorted(rows[0].keys()) if rows else []
        for lang in (src, tgt):
            if lang not in langs:
                raise CorpusError(f"language {lang!r} not in {where} (found: {', '.join(langs)})")
        return [(str(r[src] or "").strip(), str(r[tgt] or "").strip()) for r in rows]
    missing = [lang for lang in (src, tgt) if lang not in cols]
    raise CorpusError(f"language {', '.join(map(repr, missing))} not in {where} (columns: {', '.join(cols)})")


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


# --- cleaning ----------------------------------------------------------------------------------------


@dataclass
class CleanReport:
    """What cleaning removed, so nothing disappears without a word."""

    kept: int = 0
    empty: int = 0
    too_long: int = 0

    def __str__(self) -> str:
        return f"kept {self.kept} pairs, dropped {self.empty} with an empty side and {self.too_long} over-long"


def clean_pairs(
    pairs: Sequence[Pair], encoded: Sequence[tuple[list[int], list[int]]], max_len: int
) -> tuple[list[int], CleanReport]:
    """Indices of the pairs to train on: both sides non-empty and at most `max_len` tokens."""
    keep, report = [], CleanReport()
    for i, ((s, t), (s_ids, t_ids)) in enumerate(zip(pairs, encoded)):
        if not s or not t:
            report.empty += 1
        elif len(s_ids) > max_len or len(t_ids) > max_len:
            report.too_long += 1
        else:
            keep.append(i)
    report.kept = len(keep)
    return keep, report


# --- batches -----------------------------------------------------------------------------------------


@dataclass
class Batch:
    """A padded batch; masks and token counts are computed once, here."""

    src: torch.Tensor  # (B, S) source ids + EOS
    tgt_in: torch.Tensor  # (B, T) BOS + target ids
    tgt_out: torch.Tensor  # (B, T) target ids + EOS
    src_mask: torch.Tensor = field(init=False)  # (B, S) True at real tokens
    n_tgt_tokens: int = field(init=False)

    def __post_init__(self):
        self.src_mask = self.src != PAD_ID
        self.n_tgt_tokens = int((self.tgt_out != PAD_ID).sum())

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.src.to(device), self.tgt_in.to(device), self.tgt_out.to(device))


def pad(seqs: Sequence[Sequence[int]], value: int = PAD_ID) -> torch.Tensor:
    width = max((len(s) for s in seqs), default=0)
    out = torch.full((len(seqs), max(width, 1)), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out


def make_src(seqs: Sequence[Sequence[int]]) -> torch.Tensor:
    """(B, S) source tensor: ids + EOS, padded."""
    return pad([list(s) + [EOS_ID] for s in seqs])


def make_batch(examples: Sequence[tuple[Sequence[int], Sequence[int]]]) -> Batch:
    return Batch(
        src=make_src([s for s, _ in examples]),
        tgt_in=pad([[BOS_ID] + list(t) for _, t in examples]),
        tgt_out=pad([list(t) + [EOS_ID] for _, t in examples]),
    )


def token_batches(lengths: Sequence[int], max_tokens: int, seed: int, epoch: int, shuffle: bool = True) -> list[list[int]]:
    """Group example indices into batches of at most `max_tokens` padded tokens (length bucketing).

    Examples are shuffled, sorted by length within large pools so padding stays small, packed, and the
    batch order is shuffled again; all of it is a pure function of (seed, epoch), which makes resuming exact.
    """
    order = list(range(len(lengths)))
    rng = random.Random(seed * 1_000_003 + epoch)
    if shuffle:
        rng.shuffle(order)
    pool = 100 * max(1, max_tokens // 32)  # a pool of many batches' worth of examples
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batch: list[int] = []
        longest = 0
        for i in chunk:
            longest_if_added = max(longest, lengths[i])
            if batch and longest_if_added * (len(batch) + 1) > max_tokens:
                batches.append(batch)
                batch, longest_if_added = [], lengths[i]
            batch.append(i)
            longest = longest_if_added
        if batch:
            batches.append(batch)
    if shuffle:
        rng.shuffle(batches)
    return batches


@dataclass
class EncodedCorpus:
    """Token ids of one split, ready for batching."""

    examples: list[tuple[list[int], list[int]]]

    @classmethod
    def from_pairs(cls, pairs: Sequence[Pair], tokenizers: TokenizerPair) -> EncodedCorpus:
        """Encode (src, tgt) text pairs with the run's tokenizers."""
        src = tokenizers.src.encode([s for s, _ in pairs])
        tgt = tokenizers.tgt.encode([t for _, t in pairs])
        return cls(list(zip(src, tgt)))

    def lengths(self) -> list[int]:
        return [max(len(s), len(t)) + 1 for s, t in self.examples]  # +1 for EOS/BOS

    def batches(self, max_tokens: int, seed: int, epoch: int, shuffle: bool = True) -> Iterator[Batch]:
        for idx in token_batches(self.lengths(), max_tokens, seed, epoch, shuffle):
            yield make_batch([self.examples[i] for i in idx])


# --- fetching Multi30k -------------------------------------------------------------------------------


def fetch_multi30k(out: Path, source: Path | None = None) -> list[Path]:
    """Fill `out` with Multi30k task-1 files: copied from a local folder, or downloaded when none is given."""
    import shutil
    import urllib.request

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for split in MULTI30K_SPLITS:
        for lang in MULTI30K_LANGS:
            name = f"{split}.{lang}.gz"
            target = out / name
            if target.exists():
                written.append(target)
                continue
            tmp = target.with_name(target.name + ".part")
            if source is not None:
                origin = source / name
                if not origin.exists():
                    raise CorpusError(f"{origin} not found; a Multi30k copy holds {{split}}.{{lang}}.gz files")
                shutil.copyfile(origin, tmp)
            else:
                url = MULTI30K_URL.format(name=name)
                try:
                    with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
                        shutil.copyfileobj(r, f)
                except OSError as e:
                    tmp.unlink(missing_ok=True)
                    raise CorpusError(f"could not download {url}: {e}; pass --from with a local copy instead") from e
            tmp.replace(target)
            written.append(target)
    return written
