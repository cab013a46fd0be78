"""Token ids of a corpus split as flat arrays: built in memory for small splits; for training, encoded once by
several processes (`datasets.map`) and stored as memory-mapped files, cached by corpus and tokenizer.

The stored layout is Arrow's list layout without its record-batch chunking: one array of every row's ids after one
another, and one of offsets (row i is values[offsets[i]:offsets[i+1]]), each a `.npy` file mapped into memory.
Why not Python lists: a pair held as Python strings and lists of ints costs about 1.7 KB of objects; here it is its
token ids (2 bytes each below 65,536 pieces) and two offsets, in files the operating system pages in and out as
batches read them. What the training process itself holds is a few arrays of lengths and indices (~30 bytes a pair).
Why not the Arrow files `datasets` writes: they hold a record batch per thousand rows, whose headers sit between the
data, so merely reading the lengths pages in the whole file; and a take() across chunks copies.

The cache folder is `$TRANSLATE_CACHE`, else `~/.cache/translate`; deleting it is always safe.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from translate.config import TokenizerConfig
from translate.data import (
    Batch, Pair, batch_from_flat, corpora, flatten, parallel_dataset, source_files, token_batches,
)
from translate.tokenizer import TokenizerPair, train_tokenizers

log = logging.getLogger(__name__)

CACHE_ENV = "TRANSLATE_CACHE"
CACHE_FORMAT = "encoded-v1"  # part of every cache key: bump it when the stored layout changes
TOKENIZER_SAMPLE = 2_000_000  # training pairs SentencePiece reads at most (it keeps 1M sentences of them)
SIDES = ("src", "tgt")


# --- the corpus --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ragged:
    """Rows of different lengths stored flat: row i is values[offsets[i]:offsets[i + 1]]."""

    values: np.ndarray  # (total ids,) uint16 or int32, in memory or memory-mapped
    offsets: np.ndarray  # (rows + 1,) int64

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[int]]) -> Ragged:
        flat, lengths = flatten(rows)
        return cls(flat.astype(_id_dtype(int(flat.max(initial=0)) + 1)), np.concatenate([[0], np.cumsum(lengths)]))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets).astype(np.int32)

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """The ids of `rows`, one row after another (int64)."""
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        lengths = ends - starts
        # Position j of the output reads values[starts[row of j] + (j - first output position of that row)].
        firsts = np.cumsum(lengths) - lengths
        index = np.repeat(starts - firsts, lengths) + np.arange(int(lengths.sum()))
        return self.values[index].astype(np.int64)


class EncodedCorpus:
    """Token ids (no BOS/EOS) of source and target sides, in one or more parts (the corpora of a mix), and the
    rows to use: indices over the parts one after another. `rows` selects and orders examples without copying any
    ids: cleaning drops rows, a corpus weighted `*N` in a mix lists its rows N times.
    """

    def __init__(self, parts: Sequence[tuple[Ragged, Ragged]], rows: np.ndarray | None = None):
        self.parts = list(parts)
        sizes = [len(src) for src, _ in self.parts]
        self.bases = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)  # first row of each part
        self.src_lengths = np.concatenate([src.lengths() for src, _ in self.parts] or [np.zeros(0, np.int32)])
        self.tgt_lengths = np.concatenate([tgt.lengths() for _, tgt in self.parts] or [np.zeros(0, np.int32)])
        self.rows = np.arange(self.bases[-1], dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)

    @classmethod
    def from_examples(cls, examples: Sequence[tuple[Sequence[int], Sequence[int]]]) -> EncodedCorpus:
        return cls([(Ragged.from_rows([s for s, _ in examples]), Ragged.from_rows([t for _, t in examples]))])

    @classmethod
    def from_pairs(cls, pairs: Sequence[Pair], tokenizers: TokenizerPair) -> EncodedCorpus:
        """Encode (src, tgt) text pairs in memory with the run's tokenizers: for splits that fit in memory."""
        src = tokenizers.src.encode([s for s, _ in pairs])
        tgt = tokenizers.tgt.encode([t for _, t in pairs])
        return cls.from_examples(list(zip(src, tgt)))

    def __len__(self) -> int:
        return len(self.rows)

    def lengths(self) -> np.ndarray:
        """(examples,) padded positions each example takes in a batch: its longer side plus EOS/BOS."""
        return np.maximum(self.src_lengths[self.rows], self.tgt_lengths[self.rows]) + 1

    def target_tokens(self, idx: np.ndarray) -> int:
        """Target tokens (with EOS) of examples `idx`: what a batch of them trains on, known without building it."""
        return int((self.tgt_lengths[self.rows[idx]] + 1).sum())

    def select(self, rows: np.ndarray) -> EncodedCorpus:
        """The same ids with other rows (indices over the parts)."""
        out = object.__new__(EncodedCorpus)
        out.__dict__.update(self.__dict__, rows=np.asarray(rows, dtype=np.int64))
        return out

    def batch(self, idx: np.ndarray) -> Batch:
        """The padded batch of examples `idx` (positions in `rows`), ordered by the part they come from."""
        rows = self.rows[np.asarray(idx, dtype=np.int64)]
        part = np.searchsorted(self.bases, rows, side="right") - 1
        order = np.argsort(part, kind="stable")
        rows, part = rows[order], part[order]
        src, tgt = (
            np.concatenate([self.parts[p][k].gather(rows[part == p] - self.bases[p]) for p in range(len(self.parts))])
            for k in range(2)
        )
        return batch_from_flat(src, self.src_lengths[rows], tgt, self.tgt_lengths[rows])

    def batches(self, max_tokens: int, seed: int, epoch: int, shuffle: bool = True) -> Iterator[Batch]:
        for idx in token_batches(self.lengths(), max_tokens, seed, epoch, shuffle):
            yield self.batch(idx)


def _id_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.int32)


# --- cleaning ----------------------------------------------------------------------------------------


@dataclass
class CleanReport:
    """What cleaning removed, so nothing disappears without a word."""

    kept: int = 0
    empty: int = 0
    too_long: int = 0

    def __str__(self) -> str:
        return f"kept {self.kept} pairs, dropped {self.empty} with an empty side and {self.too_long} over-long"


def clean(corpus: EncodedCorpus, max_len: int) -> tuple[EncodedCorpus, CleanReport]:
    """The examples to train on: both sides non-empty and at most `max_len` tokens (from the lengths alone: a
    stripped text encodes to no token only when it is empty)."""
    src, tgt = corpus.src_lengths[corpus.rows], corpus.tgt_lengths[corpus.rows]
    empty = (src == 0) | (tgt == 0)
    too_long = ~empty & ((src > max_len) | (tgt > max_len))
    keep = ~(empty | too_long)
    report = CleanReport(int(keep.sum()), int(empty.sum()), int(too_long.sum()))
    return corpus.select(corpus.rows[keep]), report


# --- the cache ---------------------------------------------------------------------------------------


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "translate")


@dataclass(frozen=True)
class Source:
    """One corpus of a (possibly mixed) training spec, and its weight. Its rows are read (memory-mapped, through
    `datasets`) only when something is not in the cache yet."""

    spec: str
    times: int
    src: str
    tgt: str
    split: str
    held_out: int = 0  # last rows kept out of training (for validation)
    opened: dict = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def identity(self) -> str:
        """What the corpus's content depends on: its files' paths, sizes and modification times (a hub corpus: its
        name), so that a cache entry goes stale when a file changes, without reading any file."""
        files = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in source_files(
            self.spec, self.src, self.tgt, self.split)]
        return _key(self.spec if not files else "", self.src, self.tgt, self.split, self.held_out, files)

    @property
    def dataset(self):
        """The rows: a `datasets.Dataset` with string columns src and tgt, memory-mapped."""
        if "rows" not in self.opened:
            ds = parallel_dataset(self.spec, self.src, self.tgt, self.split, in_memory=False)
            self.opened["rows"] = ds.select(range(len(ds) - self.held_out)) if self.held_out else ds
        return self.opened["rows"]


def open_sources(spec: str, src: str, tgt: str, split: str) -> list[Source]:
    return [Source(part, times, src, tgt, split) for part, times in corpora(spec)]


class PairStream:
    """The weighted training pairs of some sources, stripped, as a stream that can be iterated more than once and
    is never held in memory whole: what SentencePiece trains on."""

    def __init__(self, sources: list[Source], limit: int = TOKENIZER_SAMPLE):
        self.sources, self.limit = sources, limit

    def __iter__(self) -> Iterator[Pair]:
        n = 0
        for source in self.sources:
            for _ in range(source.times):
                for rows in source.dataset.iter(batch_size=10_000):
                    for s, t in zip(rows["src"], rows["tgt"]):
                        if n == self.limit:
                            return
                        n += 1
                        yield str(s or "").strip(), str(t or "").strip()


def cached_tokenizers(sources: list[Source], cfg: TokenizerConfig) -> TokenizerPair:
    """SentencePiece models trained on the sources' training pairs, or the ones an earlier run trained on them."""
    key = _key("tokenizers", cfg.vocab_size, cfg.joint, cfg.model_type, TOKENIZER_SAMPLE,
               [(s.identity, s.times) for s in sources])
    folder = cache_root() / f"tokenizers-{key}"
    if not folder.is_dir():
        tokenizers = train_tokenizers(PairStream(sources), cfg.vocab_size, cfg.joint, cfg.model_type)
        _publish(folder, tokenizers.save)
    log.info("tokenizers: %s", folder)
    return TokenizerPair.load(folder)


def encode_sources(
    sources: list[Source], tokenizers: TokenizerPair, weighted: bool = True, num_proc: int | None = None,
) -> tuple[EncodedCorpus, dict[str, int]]:
    """The sources' token ids, memory-mapped from the cache (encoded first where missing), and the pairs each
    corpus gives; `weighted` repeats the rows of a corpus written `path*N` N times."""
    parts, rows, counts, base = [], [], {}, 0
    for source in sources:
        src, tgt = _cached_encoding(source, tokenizers, num_proc)
        times = source.times if weighted else 1
        rows.append(np.tile(np.arange(base, base + len(src), dtype=np.int64), times))
        counts[source.spec] = len(src) * times
        parts.append((src, tgt))
        base += len(src)
    return EncodedCorpus(parts, np.concatenate(rows)), counts


def _cached_encoding(source: Source, tokenizers: TokenizerPair, num_proc: int | None) -> tuple[Ragged, Ragged]:
    """One corpus's token ids, memory-mapped from the cache; encoded by several processes the first time."""
    blobs = tokenizers.to_bytes()
    key = _key(CACHE_FORMAT, source.identity, sorted((k, hashlib.sha256(v).hexdigest()) for k, v in blobs.items()))
    folder = cache_root() / f"encoded-{key}"
    if not folder.is_dir():
        _publish(folder, lambda tmp: _encode_into(Path(tmp), source, tokenizers, num_proc))
    return tuple(Ragged(_mapped(folder / f"{side}.values.npy"), _mapped(folder / f"{side}.offsets.npy")) for side in SIDES)  # type: ignore[return-value]


def _mapped(path: Path) -> np.ndarray:
    """A `.npy` file mapped read-only, told that batches read it at random: pages come in one at a time instead of
    with the read-ahead meant for sequential reading, which would page in the whole file within a few batches."""
    array = np.load(path, mmap_mode="r")
    if hasattr(mmap, "MADV_RANDOM") and isinstance(getattr(array, "_mmap", None), mmap.mmap):
        array._mmap.madvise(mmap.MADV_RANDOM)  # noqa: SLF001 - numpy keeps the mapping there
    return array


def _encode_into(folder: Path, source: Source, tokenizers: TokenizerPair, num_proc: int | None) -> None:
    """Tokenize with `datasets.map` in several processes (into its Arrow cache), then lay each side out flat."""
    import datasets
    import pyarrow.compute as pc

    n = len(source.dataset)
    procs = num_proc or max(1, min(os.cpu_count() or 1, n // 50_000))  # small corpora: no process start-up
    dtype = _id_dtype(tokenizers.tgt.vocab_size)
    kind = datasets.List(datasets.Value(dtype.name))
    log.info("encoding %s (%s pairs, %d processes)", source.spec, f"{n:,}", procs)
    encoded = source.dataset.map(
        _Encode(tokenizers.to_bytes()), batched=True, batch_size=5_000, num_proc=procs if procs > 1 else None,
        remove_columns=["src", "tgt"], features=datasets.Features({"src": kind, "tgt": kind}),
        new_fingerprint=folder.name, desc=f"encoding {Path(source.spec).name}",
    )
    folder.mkdir(parents=True)
    table = encoded.data.table
    for side in SIDES:
        chunks = table[side].chunks
        lengths = np.concatenate([pc.list_value_length(c).to_numpy(zero_copy_only=False) for c in chunks] or [[]])
        offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        values = np.lib.format.open_memmap(folder / f"{side}.values.npy", "w+", dtype, (int(offsets[-1]),))
        at = 0
        for chunk in chunks:  # chunk by chunk: never the whole side in memory
            ids = pc.list_flatten(chunk).to_numpy(zero_copy_only=False)
            values[at : at + len(ids)] = ids
            at += len(ids)
        values.flush()
        del values
        np.save(folder / f"{side}.offsets.npy", offsets)
    encoded.cleanup_cache_files()  # the Arrow copy in datasets' cache is not needed any more


class _Encode:
    """`datasets.map` function: the token ids of a batch of rows. Carries the SentencePiece models as bytes so that
    it travels to the worker processes; each builds its processors once."""

    def __init__(self, blobs: dict[str, bytes]):
        self.blobs = blobs
        self._tokenizers: TokenizerPair | None = None

    def __getstate__(self):
        return {"blobs": self.blobs, "_tokenizers": None}

    def __call__(self, rows: dict[str, list]) -> dict[str, list]:
        if self._tokenizers is None:
            self._tokenizers = TokenizerPair.from_bytes(self.blobs)
        t = self._tokenizers
        return {
            "src": t.src.encode([str(s or "").strip() for s in rows["src"]]),
            "tgt": t.tgt.encode([str(s or "").strip() for s in rows["tgt"]]),
        }


def _key(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]


def _publish(folder: Path, write: Callable[[str], None]) -> None:
    """Write into a private temporary folder, then rename it into place: readers never see a partial entry, and of
    two processes building the same entry one simply wins."""
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        write(str(tmp))
        os.rename(tmp, folder)
    except OSError:
        if not folder.is_dir():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
