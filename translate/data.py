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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from translate.errors import CorpusError
from translate.tokenizer import BOS_ID, EOS_ID, PAD_ID, TokenizerPair

log = logging.getLogger(__name__)

Pair = tuple[str, str]
HUB_PREFIX = "hub:"
MIX = ","  # separates the corpora of a mixed spec
MULTI30K_LANGS = ("en", "de", "fr", "cs")
MULTI30K_SPLITS = ("train", "val", "test_2016_flickr")
# The shared tasks' later test sets (WMT 2017 and 2018), in the languages they were released in.
MULTI30K_LATER_TESTS = {
    "test_2017_flickr": ("en", "de", "fr"), "test_2017_mscoco": ("en", "de", "fr"),
    "test_2018_flickr": ("en", "de", "fr", "cs"),
}
MULTI30K_URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/{name}"


# --- reading -----------------------------------------------------------------------------------------


def read_parallel(spec: str | Path, src: str, tgt: str, split: str) -> list[Pair]:
    """Read one split of a parallel corpus as (src, tgt) string pairs, whitespace-stripped.

    `spec` may name several corpora separated by commas: their pairs are concatenated (`read_mixed`).
    """
    spec = str(spec)
    if is_mixed(spec):
        return read_mixed(spec, src, tgt, split)[0]
    return pairs_of(parallel_dataset(spec, src, tgt, split))


def pairs_of(ds) -> list[Pair]:
    """A parallel dataset's rows as stripped (src, tgt) pairs in Python lists: for splits that fit in memory."""
    return [(str(s or "").strip(), str(t or "").strip()) for s, t in zip(ds["src"], ds["tgt"])]


def parallel_dataset(spec: str | Path, src: str, tgt: str, split: str, in_memory: bool = True):
    """One corpus's split as a `datasets.Dataset` with string columns `src` and `tgt` (not yet stripped).

    `in_memory=False` leaves the rows in `datasets`' memory-mapped Arrow cache: for corpora larger than memory.
    """
    if src == tgt:
        raise CorpusError(f"source and target language are both {src!r}")
    spec = str(spec)
    if spec.startswith(HUB_PREFIX):
        return _read_hub(spec[len(HUB_PREFIX):], src, tgt, split, in_memory)
    path = Path(spec.replace("{split}", split))
    if path.is_dir():
        return _read_folder(path, src, tgt, split, in_memory)
    if not path.exists():
        raise CorpusError(f"corpus not found: {path}")
    suffixes = [s for s in path.suffixes if s != ".gz"]
    kind = suffixes[-1] if suffixes else ""
    if kind == ".tsv":
        return _read_tsv(path, src, tgt, in_memory)
    if kind in (".jsonl", ".json"):
        return _read_jsonl(path, src, tgt, in_memory)
    raise CorpusError(f"unknown corpus format for {path}: expected a folder, a .tsv, a .jsonl file or hub:NAME")


def source_files(spec: str | Path, src: str, tgt: str, split: str) -> list[Path]:
    """The local files one corpus's split is read from (none for a hub corpus): what its content depends on."""
    spec = str(spec)
    if spec.startswith(HUB_PREFIX):
        return []
    path = Path(spec.replace("{split}", split))
    if not path.is_dir():
        return [path] if path.exists() else []
    return [p for lang in (src, tgt) for p in (path / f"{split}.{lang}", path / f"{split}.{lang}.gz") if p.is_file()][:2]


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


def is_mixed(spec: str | Path) -> bool:
    """Whether a spec names more than one corpus, or one with a weight."""
    parts = corpora(spec)
    return len(parts) != 1 or parts[0][1] != 1


def has_split(spec: str | Path, split: str) -> bool:
    """Whether the corpus has its own files for `split` (a single file serves every split); mixed: all of them."""
    spec = str(spec)
    if is_mixed(spec):
        return all(has_split(part, split) for part, _ in corpora(spec))
    if spec.startswith(HUB_PREFIX) or "{split}" in spec:
        return True
    path = Path(spec)
    if not path.is_dir():
        return False
    return any(path.glob(f"{split}.*"))


def _load_dataset(*args, in_memory: bool = True, **kwargs):
    """`datasets.load_dataset`, with its failures turned into one-line corpus errors."""
    import datasets  # imported lazily: it is slow to import and only needed when reading

    try:
        return datasets.load_dataset(*args, keep_in_memory=in_memory, **kwargs)
    except CorpusError:
        raise
    except Exception as e:  # datasets raises many types (OSError, ValueError, DatasetGenerationError...)
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CorpusError(f"could not read {args[0] if args else 'corpus'} data: {type(e).__name__}: {first_line}") from e


def _read_folder(folder: Path, src: str, tgt: str, split: str, in_memory: bool):
    import datasets

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
    sides = {
        side: _load_dataset("text", data_files={split: str(path)}, split=split, in_memory=in_memory).rename_column("text", side)
        for side, path in (("src", files[src]), ("tgt", files[tgt]))
    }
    n_src, n_tgt = len(sides["src"]), len(sides["tgt"])
    if n_src != n_tgt:
        raise CorpusError(
            f"line counts differ in {folder} split {split!r}: {files[src].name} has {n_src} lines, "
            f"{files[tgt].name} has {n_tgt}; the files must be line-aligned"
        )
    return datasets.concatenate_datasets([sides["src"], sides["tgt"]], axis=1)  # side by side, no copy


def _read_tsv(path: Path, src: str, tgt: str, in_memory: bool):
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
        in_memory=in_memory, **({} if has_header else {"column_names": names}),
    )
    return _select_sides(ds, src, tgt)


def _read_jsonl(path: Path, src: str, tgt: str, in_memory: bool):
    ds = _load_dataset("json", data_files=str(path), split="train", in_memory=in_memory)
    return _sides_from_columns(ds, src, tgt, str(path))


def _read_hub(name: str, src: str, tgt: str, split: str, in_memory: bool):
    repo, _, config = name.partition(":")
    if not repo:
        raise CorpusError("hub corpus needs a name: hub:NAME or hub:NAME:CONFIG")
    args = (repo, config) if config else (repo,)
    try:
        ds = _load_dataset(*args, split=split, in_memory=in_memory)
    except CorpusError as e:
        raise CorpusError(f"{e} (hub corpora need the network; set HF_HUB_OFFLINE=0 and check the name)") from e
    return _sides_from_columns(ds, src, tgt, f"hub:{name}")


def _sides_from_columns(ds, src: str, tgt: str, where: str):
    """Flat `{src}`/`{tgt}` columns, or wmt-style rows nested under `translation`."""
    cols = ds.column_names
    if src in cols and tgt in cols:
        return _select_sides(ds, src, tgt)
    if "translation" in cols:
        feature = ds.features["translation"]  # a dict of columns, or datasets.Translation (hub wmt sets)
        langs = sorted(getattr(feature, "languages", None) or feature.keys())
        for lang in (src, tgt):
            if lang not in langs:
                raise CorpusError(f"language {lang!r} not in {where} (found: {', '.join(langs)})")
        return _select_sides(ds.select_columns(["translation"]).flatten(), f"translation.{src}", f"translation.{tgt}")
    missing = [lang for lang in (src, tgt) if lang not in cols]
    raise CorpusError(f"language {', '.join(map(repr, missing))} not in {where} (columns: {', '.join(cols)})")


def _select_sides(ds, src_column: str, tgt_column: str):
    """Just the two language columns, named `src` and `tgt`."""
    ds = ds.select_columns([src_column, tgt_column])
    return ds.rename_columns({src_column: "_src", tgt_column: "_tgt"}).rename_columns({"_src": "src", "_tgt": "tgt"})


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


# --- batches -----------------------------------------------------------------------------------------


@dataclass
class Batch:
    """A padded batch; masks and token counts are computed once, here."""

    src: torch.Tensor  # (B, S) source ids + EOS
    tgt_in: torch.Tensor  # (B, T) BOS + target ids
    tgt_out: torch.Tensor  # (B, T) target ids + EOS
    n_tgt_tokens: int = -1  # real target tokens; counted here unless given
    src_mask: torch.Tensor = field(init=False)  # (B, S) True at real tokens

    def __post_init__(self):
        self.src_mask = self.src != PAD_ID
        if self.n_tgt_tokens < 0:
            self.n_tgt_tokens = int((self.tgt_out != PAD_ID).sum())

    def to(self, device: torch.device | str) -> Batch:
        """The batch on `device`. To a GPU the copies go from pinned memory without waiting, and the token count
        is carried over: counting on the GPU would wait for the copy, and the host could not queue the next steps."""
        device = torch.device(device)
        if device.type != "cuda":
            return Batch(self.src.to(device), self.tgt_in.to(device), self.tgt_out.to(device), self.n_tgt_tokens)
        src, tgt_in, tgt_out = (t.pin_memory().to(device, non_blocking=True) for t in (self.src, self.tgt_in, self.tgt_out))
        return Batch(src, tgt_in, tgt_out, self.n_tgt_tokens)


def flatten(seqs: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Lists of ids as one flat int64 array, one list after another (Arrow's list layout), and their lengths."""
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    return np.fromiter((i for s in seqs for i in s), dtype=np.int64, count=int(lengths.sum())), lengths


def make_src(seqs: Sequence[Sequence[int]]) -> torch.Tensor:
    """(B, S) source tensor: ids + EOS, padded."""
    return torch.from_numpy(_padded(*flatten(seqs), end=EOS_ID))


def make_batch(examples: Sequence[tuple[Sequence[int], Sequence[int]]]) -> Batch:
    """A batch of (source ids, target ids) examples, as lists."""
    return batch_from_flat(*flatten([s for s, _ in examples]), *flatten([t for _, t in examples]))


def batch_from_flat(src: np.ndarray, src_lengths: np.ndarray, tgt: np.ndarray, tgt_lengths: np.ndarray) -> Batch:
    """A batch from token ids stored flat, one example after another (Arrow's list layout), and their lengths."""
    return Batch(
        src=torch.from_numpy(_padded(src, src_lengths, end=EOS_ID)),
        tgt_in=torch.from_numpy(_padded(tgt, tgt_lengths, start=BOS_ID)),
        tgt_out=torch.from_numpy(_padded(tgt, tgt_lengths, end=EOS_ID)),
    )


def _padded(flat: np.ndarray, lengths: np.ndarray, start: int | None = None, end: int | None = None) -> np.ndarray:
    """(B, max length + 1) int64: each row's ids, with `start` before them or `end` after them, then PAD."""
    lengths = np.asarray(lengths, dtype=np.int64)
    out = np.full((len(lengths), int(lengths.max(initial=0)) + 1), PAD_ID, dtype=np.int64)
    first = 1 if start is not None else 0
    cols = np.arange(out.shape[1] - first)
    out[:, first:][cols[None, :] < lengths[:, None]] = flat  # row-major order: row by row, as stored
    rows = np.arange(len(lengths))
    if start is not None:
        out[:, 0] = start
    if end is not None:
        out[rows, lengths] = end
    return out


def token_batches(lengths: Sequence[int] | np.ndarray, max_tokens: int, seed: int, epoch: int, shuffle: bool = True) -> list[np.ndarray]:
    """Group example indices into batches of at most `max_tokens` padded tokens (length bucketing).

    Examples are shuffled, sorted by length within large pools so padding stays small, packed, and the
    batch order is shuffled again; all of it is a pure function of (seed, epoch), which makes resuming exact.
    Works on the lengths alone, in numpy: a corpus of millions of examples costs a few index arrays.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths)) if shuffle else np.arange(len(lengths))
    pool = 100 * max(1, max_tokens // 32)  # a pool of many batches' worth of examples
    batches: list[np.ndarray] = []
    for begin in range(0, len(order), pool):
        chunk = order[begin : begin + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        sizes = lengths[chunk]
        start = 0
        while start < len(chunk):
            # Ascending lengths: a batch's padded size is its last length times its count, growing with each example.
            window = sizes[start : start + max_tokens]
            fits = int(np.count_nonzero(window * np.arange(1, len(window) + 1) <= max_tokens))
            end = start + max(fits, 1)  # an over-long example still forms its own batch
            batches.append(chunk[start:end])
            start = end
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


# --- fetching Multi30k -------------------------------------------------------------------------------


def multi30k_files() -> tuple[list[str], list[str]]:
    """Multi30k task-1 file names: those every copy has (train, val, test 2016), and the later test sets'."""
    core = [f"{split}.{lang}.gz" for split in MULTI30K_SPLITS for lang in MULTI30K_LANGS]
    later = [f"{split}.{lang}.gz" for split, langs in MULTI30K_LATER_TESTS.items() for lang in langs]
    return core, later


def fetch_multi30k(out: Path, source: Path | None = None) -> tuple[list[Path], list[str]]:
    """Fill `out` with Multi30k task-1 files: copied from a local folder, or downloaded when none is given.

    Returns the files now in `out`, and the later test sets' files a local copy lacked (they are optional there:
    copies made for the 2016 task have none; a download fetches them all).
    """
    core, later = multi30k_files()
    out.mkdir(parents=True, exist_ok=True)
    written, missing = [], []
    for name in core + later:
        target = out / name
        if not target.exists():
            if source is not None and name in later and not (source / name).exists():
                missing.append(name)
                continue
            _fetch_file(name, target, source)
        written.append(target)
    return written, missing


def _fetch_file(name: str, target: Path, source: Path | None) -> None:
    import shutil
    import urllib.request

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


def available_test_splits(spec: str | Path) -> list[str]:
    """The test splits (`test*`) a corpus folder holds, sorted; other corpus kinds name none."""
    path = Path(str(spec))
    if is_mixed(str(spec)) or not path.is_dir():
        return []
    return sorted({f.name.split(".")[0] for f in path.glob("test*.*") if not f.name.endswith(".part")})
