"""SentencePiece subword tokenizer: train on the training split, encode, decode, serialise to bytes.

Every tokenizer shares the same special ids, so models and batches can rely on them.
Identity normalisation plus byte fallback make `decode(encode(text))` give back `text` exactly
(up to leading/trailing and repeated whitespace), whatever characters it contains.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm

from translate.errors import ConfigError
from translate.runfolder import write_atomic

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3
EOS_PIECE = "</s>"  # SentencePiece's piece for EOS_ID


class Tokenizer:
    """One SentencePiece model. Holds its serialised proto so it can travel inside a checkpoint."""

    def __init__(self, model_proto: bytes):
        self.model_proto = model_proto
        self._sp = spm.SentencePieceProcessor(model_proto=model_proto)
        if (self._sp.pad_id(), self._sp.unk_id(), self._sp.bos_id(), self._sp.eos_id()) != (
            PAD_ID, UNK_ID, BOS_ID, EOS_ID,
        ):
            raise ValueError("SentencePiece model does not use this toolkit's special ids (pad 0, unk 1, bos 2, eos 3)")

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids without BOS/EOS; batching adds those."""
        return self._sp.encode(list(texts))

    def pieces(self, ids: Sequence[int]) -> list[str]:
        return [self._sp.id_to_piece(int(i)) for i in ids]

    def piece_to_id(self, piece: str) -> int:
        return self._sp.piece_to_id(piece)

    def decode(self, ids: Sequence[int]) -> str:
        """Text for ids, special ids skipped."""
        return self._sp.decode([int(i) for i in ids if i > EOS_ID])


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 8000,
    model_type: str = "unigram",
    character_coverage: float = 1.0,
    seed_sentences: int = 1_000_000,
) -> Tokenizer:
    """Train a SentencePiece model in memory.

    The vocabulary size is a soft limit: a small corpus that cannot fill `vocab_size` pieces
    gets a smaller vocabulary instead of an error.
    """
    proto = io.BytesIO()
    try:
        _train_spm(texts, proto, vocab_size, model_type, character_coverage, seed_sentences)
    except RuntimeError as e:
        needed = re.search(r"(\d+) vs (\d+)", str(e))
        if needed and "required_chars" in str(e):
            raise ConfigError(
                f"vocab_size {vocab_size} is too small for this corpus: it needs more than {needed.group(2)} pieces "
                "(its characters, 256 byte pieces and 4 special ids)"
            ) from e
        raise ConfigError(f"SentencePiece training failed: {str(e).splitlines()[0]}") from e
    return Tokenizer(proto.getvalue())


def _train_spm(texts, proto, vocab_size, model_type, character_coverage, seed_sentences) -> None:
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=proto,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=character_coverage,
        input_sentence_size=seed_sentences,
        shuffle_input_sentence=True,
        normalization_rule_name="identity",
        byte_fallback=True,
        hard_vocab_limit=False,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        minloglevel=2,
        num_threads=2,
    )


@dataclass(frozen=True)
class TokenizerPair:
    """Source and target tokenizers; the same object twice when the vocabulary is joint."""

    src: Tokenizer
    tgt: Tokenizer

    @property
    def joint(self) -> bool:
        return self.src is self.tgt

    def to_bytes(self) -> dict[str, bytes]:
        if self.joint:
            return {"joint": self.src.model_proto}
        return {"src": self.src.model_proto, "tgt": self.tgt.model_proto}

    def save(self, folder: Path) -> None:
        """Write SentencePiece's own `.model` files: `joint.model`, or `src.model` and `tgt.model`."""
        for name, blob in self.to_bytes().items():
            write_atomic(Path(folder) / f"{name}.model", blob)

    @classmethod
    def load(cls, folder: Path) -> TokenizerPair:
        folder = Path(folder)
        names = ["joint"] if (folder / "joint.model").exists() else ["src", "tgt"]
        missing = [n for n in names if not (folder / f"{n}.model").exists()]
        if missing:
            raise ConfigError(f"no SentencePiece models in {folder} (joint.model, or src.model and tgt.model)")
        return cls.from_bytes({n: (folder / f"{n}.model").read_bytes() for n in names})

    @classmethod
    def from_bytes(cls, blobs: dict[str, bytes]) -> TokenizerPair:
        if "joint" in blobs:
            tok = Tokenizer(blobs["joint"])
            return cls(tok, tok)
        return cls(Tokenizer(blobs["src"]), Tokenizer(blobs["tgt"]))


def train_tokenizers(
    pairs: Iterable[tuple[str, str]], vocab_size: int = 8000, joint: bool = True, model_type: str = "unigram"
) -> TokenizerPair:
    """Train on the training pairs only: one joint model over both sides, or one per language.

    Pairs with an empty side are left out, as training leaves them out. `pairs` is streamed (twice for separate
    vocabularies), never copied: a corpus of millions of pairs may come straight from disk.
    """
    def side(k: int | None) -> Iterator[str]:
        for pair in pairs:
            if pair[0] and pair[1]:
                yield from pair if k is None else (pair[k],)

    if joint:
        tok = train_tokenizer(side(None), vocab_size, model_type)
        return TokenizerPair(tok, tok)
    return TokenizerPair(train_tokenizer(side(0), vocab_size, model_type), train_tokenizer(side(1), vocab_size, model_type))
