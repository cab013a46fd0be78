"""CTranslate2 as an optional engine for the Transformer: export a checkpoint into its format, translate with it.

CTranslate2 (`pip install .[ct2]`) is the field's deployment engine for Transformer translation models. The converter
is written against its model-spec API (`ctranslate2.specs.TransformerSpec`): our pre-norm Transformer maps onto it
one weight at a time, with two things CTranslate2 packs differently (q/k/v of self-attention in one matrix, k/v of
cross-attention in another) and two it must be told (our own sinusoidal table, since CTranslate2's differs; a zero
bias for the tied output layer). Recurrent models have no CTranslate2 counterpart and keep our engine.

An export folder holds CTranslate2's files (`model.bin`, `config.json`, vocabularies) plus ours (`translate.json`:
architecture, languages, quantization; the SentencePiece models), so it translates on its own.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from translate.checkpoint import Checkpoint
from translate.decoding import Hypothesis, SearchConfig
from translate.errors import CheckpointError, ConfigError
from translate.runfolder import run_of, write_atomic
from translate.tokenizer import EOS_PIECE, PAD_ID, TokenizerPair

log = logging.getLogger(__name__)

METADATA = "translate.json"
QUANTIZATIONS = ("int8", "float32")
POSITIONS = 2048  # rows of the position table: sources are cut at 1024 pieces, outputs stay below 1.5x that


def require_ctranslate2():
    try:
        import ctranslate2
    except ImportError as e:
        raise ConfigError("the ctranslate2 engine needs the ctranslate2 package: pip install 'translate[ct2]'") from e
    return ctranslate2


def is_export(path: Path) -> bool:
    return (Path(path) / METADATA).is_file() and (Path(path) / "model.bin").is_file()


def export_ctranslate2(ckpt: Checkpoint, out: Path, quantization: str = "int8") -> Path:
    """Write `ckpt` (a Transformer) as a CTranslate2 model folder at `out`, replacing it atomically."""
    ctranslate2 = require_ctranslate2()
    if ckpt.arch != "transformer":
        raise ConfigError(f"CTranslate2 has no {ckpt.arch} models: only the transformer can be exported")
    if quantization not in QUANTIZATIONS:
        raise ConfigError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, not {quantization!r}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        converter = _converter_class(ctranslate2)(ckpt)
        converter.convert(str(tmp / "model"), quantization=quantization, force=True)
        folder = tmp / "model"
        ckpt.tokenizers.save(folder)
        meta = {"arch": ckpt.arch, "src_lang": ckpt.src_lang, "tgt_lang": ckpt.tgt_lang, "quantization": quantization,
                "parameters": sum(w.numel() for k, w in ckpt.weights.items() if k != "out_proj.weight")}
        write_atomic(folder / METADATA, json.dumps(meta, indent=2).encode())
        if out.exists():
            shutil.rmtree(out)
        folder.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _converter_class(ctranslate2):
    """A `ctranslate2.converters.Converter` for our checkpoints (defined late: ctranslate2 is optional)."""
    specs = ctranslate2.specs

    class CheckpointConverter(ctranslate2.converters.Converter):
        def __init__(self, ckpt: Checkpoint):
            self.ckpt = ckpt

        def _load(self):
            cfg, w = self.ckpt.model_config, self.ckpt.weights
            spec = specs.TransformerSpec.from_config(
                (cfg["enc_layers"], cfg["dec_layers"]), cfg["heads"], pre_norm=True,
                activation=specs.Activation.RELU, alignment_layer=-1, alignment_heads=cfg["heads"],
            )
            spec.config.layer_norm_epsilon = 1e-5  # torch.nn.LayerNorm's
            # Our sources end with EOS. The engine passes it as a piece: CTranslate2's attention then covers it (with
            # add_source_eos, CTranslate2 adds EOS itself and leaves it out of the attention it returns).
            spec.config.add_source_eos = False
            _fill_encoder(spec.encoder, w, cfg)
            _fill_decoder(spec.decoder, w, cfg)
            vocab = _vocabulary(self.ckpt.tokenizers)
            spec.register_source_vocabulary(vocab[0])
            spec.register_target_vocabulary(vocab[1])
            return spec

    return CheckpointConverter


def _vocabulary(tokenizers: TokenizerPair) -> tuple[list[str], list[str]]:
    """Piece strings by id; CTranslate2 calls the padding token <blank>."""
    def pieces(tok) -> list[str]:
        out = tok.pieces(range(tok.vocab_size))
        out[PAD_ID] = "<blank>"
        return out

    return pieces(tokenizers.src), pieces(tokenizers.tgt)


def _positions(dim: int) -> torch.Tensor:
    from translate.models.transformer import sinusoidal_positions

    return sinusoidal_positions(0, POSITIONS, dim, torch.device("cpu"))


def _linear(spec, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    spec.weight = weight.float().contiguous()
    if bias is not None:
        spec.bias = bias.float().contiguous()


def _norm(spec, w: dict, name: str) -> None:
    spec.gamma, spec.beta = w[f"{name}.weight"].float(), w[f"{name}.bias"].float()


def _attention(spec, w: dict, prefix: str, fused: tuple[str, ...], single: tuple[str, ...]) -> None:
    """Fill a CTranslate2 attention spec: packed projections first (`fused`), then the single ones, then output."""
    linears = spec.linear
    names = [fused, *[(s,) for s in single], ("out",)]
    for linear, group in zip(linears, names):
        _linear(linear, torch.cat([w[f"{prefix}.{p}_proj.weight"] for p in group]),
                torch.cat([w[f"{prefix}.{p}_proj.bias"] for p in group]))


def _fill_encoder(enc, w: dict, cfg: dict) -> None:
    enc.embeddings[0].weight = w["src_embedding.weight"].float()
    enc.scale_embeddings = True
    enc.position_encodings.encodings = _positions(cfg["d_model"])
    for i, layer in enumerate(enc.layer):
        p = f"encoder_layers.{i}"
        _norm(layer.self_attention.layer_norm, w, f"{p}.norm1")
        _attention(layer.self_attention, w, f"{p}.self_attn", ("q", "k", "v"), ())
        _ffn(layer.ffn, w, p, "norm2")
    _norm(enc.layer_norm, w, "encoder_norm")


def _fill_decoder(dec, w: dict, cfg: dict) -> None:
    dec.embeddings.weight = w["tgt_embedding.weight"].float()
    dec.scale_embeddings = True
    dec.position_encodings.encodings = _positions(cfg["d_model"])
    for i, layer in enumerate(dec.layer):
        p = f"decoder_layers.{i}"
        _norm(layer.self_attention.layer_norm, w, f"{p}.norm1")
        _attention(layer.self_attention, w, f"{p}.self_attn", ("q", "k", "v"), ())
        _norm(layer.attention.layer_norm, w, f"{p}.norm2")
        # Cross-attention: CTranslate2 orders it query, packed key/value, output.
        q, kv, out = layer.attention.linear
        _linear(q, w[f"{p}.cross_attn.q_proj.weight"], w[f"{p}.cross_attn.q_proj.bias"])
        _linear(kv, torch.cat([w[f"{p}.cross_attn.k_proj.weight"], w[f"{p}.cross_attn.v_proj.weight"]]),
                torch.cat([w[f"{p}.cross_attn.k_proj.bias"], w[f"{p}.cross_attn.v_proj.bias"]]))
        _linear(out, w[f"{p}.cross_attn.out_proj.weight"], w[f"{p}.cross_attn.out_proj.bias"])
        _ffn(layer.ffn, w, p, "norm3")
    _norm(dec.layer_norm, w, "decoder_norm")
    projection = w["out_proj.weight"]
    _linear(dec.projection, projection, torch.zeros(projection.size(0)))  # ours has no bias; CTranslate2 wants one


def _ffn(spec, w: dict, prefix: str, norm: str) -> None:
    _norm(spec.layer_norm, w, f"{prefix}.{norm}")
    _linear(spec.linear_0, w[f"{prefix}.ffn.0.weight"], w[f"{prefix}.ffn.0.bias"])
    _linear(spec.linear_1, w[f"{prefix}.ffn.3.weight"], w[f"{prefix}.ffn.3.bias"])


def _adds_eos(folder: Path) -> bool:
    """An export from before the engine passed EOS itself (made again by `ensure_export`)."""
    return json.loads((folder / "config.json").read_text(encoding="utf-8")).get("add_source_eos", False)


@dataclass
class ExportInfo:
    arch: str
    src_lang: str
    tgt_lang: str
    quantization: str
    parameters: int


def read_export(folder: Path) -> tuple[ExportInfo, TokenizerPair]:
    folder = Path(folder)
    if not is_export(folder):
        raise CheckpointError(f"{folder} is not a CTranslate2 export of this toolkit (no {METADATA} and model.bin)")
    info = ExportInfo(**json.loads((folder / METADATA).read_text(encoding="utf-8")))
    return info, TokenizerPair.load(folder)


class CTranslate2Engine:
    """Search with a CTranslate2 translator over our token ids: same inputs and outputs as the torch engine."""

    def __init__(self, folder: Path, tokenizers: TokenizerPair, workers: int = 2, threads: int = 1,
                 compute_type: str = "default"):
        ctranslate2 = require_ctranslate2()
        self.tokenizers = tokenizers
        # One single-threaded translator per core is CTranslate2's fastest layout on a small CPU.
        self.translator = ctranslate2.Translator(
            str(folder), device="cpu", compute_type=compute_type, inter_threads=workers, intra_threads=threads
        )
        self.workers = workers
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
        self.append_eos = not config.get("add_source_eos", False)  # exports made before 2026-11-23 add it themselves

    def search(
        self, src_ids: Sequence[Sequence[int]], cfg: SearchConfig, need_attention: bool, max_tokens: int = 4096,
        progress: Callable[[int], None] | None = None,
    ) -> list[list[Hypothesis]]:
        src = [self.tokenizers.src.pieces(ids) + ([EOS_PIECE] if self.append_eos else []) for ids in src_ids]
        longest = max((len(s) for s in src), default=0) + (not self.append_eos)
        max_length = int(longest * cfg.max_len_ratio + cfg.max_len_extra)  # one limit per call, not per sentence
        results = self.translator.translate_batch(
            src, max_batch_size=max(max_tokens // max(cfg.beam_size, 1), longest), batch_type="tokens",
            beam_size=cfg.beam_size, num_hypotheses=cfg.n_best, length_penalty=cfg.length_penalty,
            max_decoding_length=max_length, return_scores=True, return_attention=need_attention, max_input_length=0,
        )
        if progress is not None:
            progress(len(src_ids))
        return [self._hypotheses(r, len(ids) + 1, max_length, cfg, need_attention) for r, ids in zip(results, src_ids)]

    def _hypotheses(
        self, result, src_len: int, max_length: int, cfg: SearchConfig, need_attention: bool
    ) -> list[Hypothesis]:
        out = []
        for k, pieces in enumerate(result.hypotheses):
            ids = [self.tokenizers.tgt.piece_to_id(p) for p in pieces]
            # CTranslate2 reports the log-probability divided by length ** penalty, EOS counted when produced.
            length = len(ids) + (len(ids) < max_length)
            score = float(result.scores[k]) * length**cfg.length_penalty
            attention = None
            if need_attention:  # (output pieces, source pieces + EOS); an old export's lack the EOS column
                attention = torch.tensor(result.attention[k])[: len(ids), :src_len]
                attention = torch.nn.functional.pad(attention, (0, src_len - attention.size(1)))
                # CTranslate2 4.x's beam search over a batch reports its first step's attention with some weight on
                # the batch's padding (measured: that row sums to 0.84-0.99 over the real source): renormalised.
                attention = attention / attention.sum(-1, keepdim=True).clamp(min=1e-9)
            out.append(Hypothesis(ids, score, attention))
        return out


def ensure_export(checkpoint: Path, quantization: str) -> Path:
    """The CTranslate2 export of a run's checkpoint, kept in its run folder, made again when the checkpoint is newer
    or the export is of an older format."""
    from translate.checkpoint import load_checkpoint

    folder = run_of(checkpoint).ctranslate2(quantization)
    stale = not is_export(folder) or (folder / "model.bin").stat().st_mtime < Path(checkpoint).stat().st_mtime
    if stale or _adds_eos(folder):
        log.info("exporting %s to CTranslate2 (%s) in %s", checkpoint, quantization, folder)
        export_ctranslate2(load_checkpoint(checkpoint), folder, quantization)
    return folder
