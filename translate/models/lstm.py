"""Recurrent encoder-decoder: LSTM, GRU or Elman RNN cells, optional bidirectional encoder, optional attention.

Without attention (`heads=0`) this is Sutskever et al. (2014): the encoder's final state is the only thing the
decoder learns about the source. With attention (`heads>0`) the decoder output at each step queries all encoder
states through multi-head scaled dot-product attention, and the context is combined with the decoder output
as in Luong et al. (2015): h~_t = tanh(W_c [c_t; h_t]). There is no input feeding, so the decoder RNN runs over
the whole target at once in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from translate.models.attention import MultiHeadAttention, attention_kind
from translate.models.base import DecoderOutput, Seq2Seq, State
from translate.models.dropout import Dropout

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}  # nn.RNN is the Elman cell with tanh


@dataclass(frozen=True)
class RecurrentConfig:
    src_vocab: int = 8000  # set from the tokenizer when the model is built
    tgt_vocab: int = 8000  # set from the tokenizer when the model is built
    joint_vocab: bool = True  # one vocabulary for both sides: share source and target embeddings
    cell: str = "lstm"  # lstm | gru | rnn (Elman, tanh)
    emb_dim: int = 256  # token embedding size
    hidden: int = 256  # recurrent state size, per direction
    layers: int = 2  # stacked recurrent layers in encoder and decoder
    bidirectional: bool = False  # encoder reads the source both ways; states are bridged to the decoder size
    # Bidirectional LSTM: how the encoder's two final cell states reach the decoder. "own": a linear bridge of their
    # own, unsquashed, like a cell state. "shared-tanh": the hidden state's bridge and its tanh, the choice before
    # 2026-11 (kept for older checkpoints and the ablation that found it handicapped the model; see the report).
    cell_bridge: str = "own"
    heads: int = 0  # 0: no attention (the final encoder state carries the sentence); >0: attention heads
    dropout: float = 0.2  # on embeddings, between layers and before the output projection
    tie_embeddings: bool = True  # output projection shares the target embedding (needs emb_dim == hidden)

    def validate(self) -> list[str]:
        errors = []
        if self.cell not in CELLS:
            errors.append(f"cell must be one of {', '.join(CELLS)}, not {self.cell!r}")
        if self.cell_bridge not in ("own", "shared-tanh"):
            errors.append(f"cell_bridge must be own or shared-tanh, not {self.cell_bridge!r}")
        if self.heads < 0 or (self.heads and self.hidden % self.heads):
            errors.append(f"heads ({self.heads}) must be >= 0 and divide hidden ({self.hidden})")
        if self.tie_embeddings and self.emb_dim != self.hidden:
            errors.append(f"tie_embeddings needs emb_dim ({self.emb_dim}) == hidden ({self.hidden})")
        if self.layers < 1 or self.hidden < 1 or self.emb_dim < 1:
            errors.append("layers, hidden and emb_dim must be positive")
        if not 0 <= self.dropout < 1:
            errors.append(f"dropout must be in [0, 1), not {self.dropout}")
        return errors


class RecurrentEncoder(nn.Module):
    def __init__(self, cfg: RecurrentConfig, embedding: nn.Embedding):
        super().__init__()
        self.embedding = embedding
        self.scale = cfg.emb_dim**0.5  # embeddings are initialised at std 1/sqrt(E) for the tied output layer
        self.dropout = Dropout(cfg.dropout)
        self.rnn = CELLS[cfg.cell](
            cfg.emb_dim, cfg.hidden, cfg.layers, batch_first=True, bidirectional=cfg.bidirectional,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
        )

    def forward(self, src: torch.Tensor, src_mask: torch.Tensor):
        """Returns all states (B, S, H*dirs) and the final state(s) (L*dirs, B, H)."""
        x = self.dropout(self.embedding(src) * self.scale)  # (B, S, E)
        lengths = src_mask.sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, final = self.rnn(packed)  # final: (L*dirs, B, H), or a (h, c) pair for the LSTM
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))  # (B, S, H*dirs)
        return memory, final


class RecurrentSeq2Seq(Seq2Seq):
    def __init__(self, cfg: RecurrentConfig):
        super().__init__()
        self.cfg = cfg
        dirs = 2 if cfg.bidirectional else 1
        tgt_embedding = nn.Embedding(cfg.tgt_vocab, cfg.emb_dim, padding_idx=0)
        src_embedding = tgt_embedding if cfg.joint_vocab else nn.Embedding(cfg.src_vocab, cfg.emb_dim, padding_idx=0)
        self.encoder = RecurrentEncoder(cfg, src_embedding)
        # A bidirectional encoder's two final states are merged into the decoder's size.
        self.bridge = nn.Linear(dirs * cfg.hidden, cfg.hidden) if cfg.bidirectional else None
        own = cfg.bidirectional and cfg.cell == "lstm" and cfg.cell_bridge == "own"
        self.cell_bridge = nn.Linear(dirs * cfg.hidden, cfg.hidden) if own else None
        self.tgt_embedding = tgt_embedding
        self.decoder_rnn = CELLS[cfg.cell](
            cfg.emb_dim, cfg.hidden, cfg.layers, batch_first=True, dropout=cfg.dropout if cfg.layers > 1 else 0.0
        )
        self.attention = MultiHeadAttention(cfg.hidden, cfg.heads, d_key=dirs * cfg.hidden) if cfg.heads else None
        self.combine = nn.Linear(2 * cfg.hidden, cfg.hidden) if cfg.heads else None
        self.dropout = Dropout(cfg.dropout)
        self.out_proj = nn.Linear(cfg.hidden, cfg.tgt_vocab)
        self.source_keys = frozenset({"src_mask", "k", "v"})  # held once per source (see models/base.py)
        # nn.Embedding's N(0, 1) makes tied output logits huge (initial loss ~3x log V): small weights, scaled on input.
        for emb in dict.fromkeys([src_embedding, tgt_embedding]):  # fixed order: seeded runs repeat
            nn.init.normal_(emb.weight, std=cfg.emb_dim**-0.5)
            nn.init.zeros_(emb.weight[0])
        if cfg.tie_embeddings:
            self.out_proj.weight = tgt_embedding.weight

    def _bridge(self, final: torch.Tensor, cell: bool = False) -> torch.Tensor:
        """(L*dirs, B, H) final states -> (B, L, H) decoder initial state; `cell`: these are LSTM cell states."""
        L = self.cfg.layers
        if self.bridge is None:
            return final.transpose(0, 1)  # (B, L, H)
        B, H = final.size(1), final.size(2)
        both = final.view(L, 2, B, H).permute(2, 0, 1, 3).reshape(B, L, 2 * H)  # (B, L, 2H) forward ++ backward
        if cell and self.cell_bridge is not None:
            return self.cell_bridge(both)  # (B, L, H): a cell state is not bounded, so it is not squashed
        return torch.tanh(self.bridge(both))  # (B, L, H): in (-1, 1), as an LSTM/GRU/RNN hidden state is

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> State:
        memory, final = self.encoder(src, src_mask)  # (B, S, H*dirs)
        return self.encode_from(memory, final, src_mask)

    def encode_from(self, memory: torch.Tensor, final, src_mask: torch.Tensor) -> State:
        """The decoder's initial state from the encoder's outputs and final state(s)."""
        state: State = {"src_mask": src_mask}  # the decoder reads the memory through attention's keys/values only
        if self.cfg.cell == "lstm":
            state["h"], state["c"] = self._bridge(final[0]), self._bridge(final[1], cell=True)  # (B, L, H) each
        else:
            state["h"] = self._bridge(final)  # (B, L, H)
        if self.attention is not None:
            state["k"], state["v"] = self.attention.project_kv(memory)  # (B, h, S, d): once per sentence
        return state

    def encode_traced(self, src: torch.Tensor, src_mask: torch.Tensor) -> tuple[State, list]:
        """The fused RNN kernels hide the recurrence from autograd: unroll the encoder position by position."""
        return encode_unrolled(self, src, src_mask)

    def step_kind(self, tgt: torch.Tensor, state: State):
        """The attention's decisions (see `attention_kind`); the rest of a step is the same every time."""
        return () if self.attention is None else attention_kind(tgt.size(0), state["k"].size(0))

    def decode(self, tgt: torch.Tensor, state: State, need_attention: bool = False) -> DecoderOutput:
        x = self.dropout(self.tgt_embedding(tgt) * self.encoder.scale)  # (B, T, E): the same scale both sides
        h0 = state["h"].transpose(0, 1).contiguous()  # (L, B, H)
        if self.cfg.cell == "lstm":
            out, (h, c) = self.decoder_rnn(x, (h0, state["c"].transpose(0, 1).contiguous()))  # out (B, T, H)
            new_state = {**state, "h": h.transpose(0, 1), "c": c.transpose(0, 1)}
        else:
            out, h = self.decoder_rnn(x, h0)  # (B, T, H)
            new_state = {**state, "h": h.transpose(0, 1)}
        weights = None
        if self.attention is not None:
            mask = state["src_mask"][:, None, None, :]  # (B, 1, 1, S)
            q = self.attention.project_q(out)  # (B, h, T, d)
            context, weights = self.attention.attend(q, state["k"], state["v"], mask, need_attention)  # (B, T, H)
            out = torch.tanh(self.combine(torch.cat([context, out], dim=-1)))  # (B, T, H)
            if weights is not None:
                weights = weights.mean(1)  # (B, T, S)
        logits = self.out_proj(self.dropout(out))  # (B, T, V)
        return DecoderOutput(logits, new_state, weights)


def _one_layer(rnn: nn.RNNBase, layer: int, reverse: bool) -> nn.RNNBase:
    """A one-layer, one-direction RNN sharing that layer's weights of `rnn` (no copy: gradients reach `rnn`)."""
    dirs = 2 if rnn.bidirectional else 1
    inputs = rnn.input_size if layer == 0 else rnn.hidden_size * dirs
    uni = type(rnn)(inputs, rnn.hidden_size, 1, batch_first=True)
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    for name, _ in list(uni.named_parameters()):
        setattr(uni, name, getattr(rnn, name.replace("_l0", suffix)))
    return uni


def _unroll(rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor, reverse: bool):
    """Run a one-layer RNN one position at a time, each step reading the previous step's output tensor.

    x (B, S, E) -> outputs [h_0 .. h_{S-1}] (each (B, H), on the gradient path of every later step) and the
    final state (1, B, H), or an (h, c) pair; padding positions leave the state as it was.
    """
    B, S, _ = x.shape
    h = x.new_zeros(B, rnn.hidden_size)
    c = x.new_zeros(1, B, rnn.hidden_size) if isinstance(rnn, nn.LSTM) else None
    outputs: list[torch.Tensor] = [None] * S  # type: ignore[list-item]
    for t in range(S - 1, -1, -1) if reverse else range(S):
        out, new = rnn(x[:, t : t + 1], (h[None], c) if c is not None else h[None])
        real = (t < lengths)[:, None]  # (B, 1)
        h = torch.where(real, out[:, 0], h)  # (B, H): the output itself is the next step's state
        if c is not None:
            c = torch.where(real[None], new[1], c)
        outputs[t] = h
    return outputs, ((h[None], c) if c is not None else h[None])


def encode_unrolled(model: RecurrentSeq2Seq, src: torch.Tensor, src_mask: torch.Tensor) -> tuple[State, list]:
    """The same state as `model.encode` (in eval mode), computed position by position.

    Also returns the top layer's per-position states, as (B, S) lists of tensors per direction, on the gradient
    path: what measuring gradient flow needs, since fused RNN kernels hide the recurrence from autograd's view
    of their outputs.
    """
    enc, cfg = model.encoder, model.cfg
    x = enc.embedding(src) * enc.scale  # (B, S, E)
    lengths = src_mask.sum(1)
    finals, top = [], []
    for layer in range(cfg.layers):
        per_direction = []
        for reverse in ([False, True] if cfg.bidirectional else [False]):
            outputs, final = _unroll(_one_layer(enc.rnn, layer, reverse), x, lengths, reverse)
            per_direction.append(outputs)
            finals.append(final)
        x = torch.cat([torch.stack(o, dim=1) for o in per_direction], dim=-1)  # (B, S, H*dirs): next layer's input
        top = per_direction
    memory = x * src_mask[:, :, None]  # zero at padding, as pad_packed_sequence leaves it
    if cfg.cell == "lstm":
        final = (torch.cat([f[0] for f in finals]), torch.cat([f[1] for f in finals]))  # (L*dirs, B, H)
    else:
        final = torch.cat(finals)
    return model.encode_from(memory, final, src_mask), top
