"""The one interface every model implements, so training and search never look at a model's class.

    state = model.encode(src, src_mask)               # once per batch
    state = model.expand_state(state, beam_size)      # beam search: beam_size rows per source
    out = model.decode(tgt, state)                    # any number of new target tokens, state advanced
    state = model.reorder_state(out.state, indices)   # beam search: keep/duplicate batch rows

A state is a dict of batch-first tensors (recurrent states, key/value caches), so reordering it is one
`index_select` per tensor. Decoding the whole prefix from the encoder state, or one token at a time with the
returned state, gives the same logits.

Some entries depend on the source alone (the keys/values attention reads over the encoder states, the source
mask): a model names them in `source_keys`, and they are held once per source however many beams share it.
Rows then come grouped: after `expand_state(state, K)`, rows j*K .. j*K+K-1 belong to source j, and `reorder_state`
must be given indices that keep rows grouped by source (K per source) -- beam search's reordering does. Copying
those entries for every beam at every step would cost as much memory traffic as the decoder's own arithmetic.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

State = dict[str, torch.Tensor]


@dataclass
class DecoderOutput:
    logits: torch.Tensor  # (B, T, V) unnormalised scores of the next token at each position
    state: State  # advanced past the T tokens
    attention: torch.Tensor | None  # (B, T, S) attention over source positions, heads averaged; None if none


class StepDecoder(Protocol):
    """Something that decodes a model's steps for it (`translate.replay.StepReplay`)."""

    def decode(self, tgt: torch.Tensor, state: State, need_attention: bool = False) -> DecoderOutput: ...


class Seq2Seq(nn.Module, ABC):
    """Encoder-decoder over token ids; batch first; PAD id 0."""

    @abstractmethod
    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> State:
        """Encode (B, S) source ids; return the decoder's initial state."""

    @abstractmethod
    def decode(self, tgt: torch.Tensor, state: State, need_attention: bool = False) -> DecoderOutput:
        """Feed (B, T) target ids (BOS first at the start) and return next-token logits for each."""

    def forward(self, src: torch.Tensor, src_mask: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: (B, T, V) logits for every target position."""
        return self.decode(tgt_in, self.encode(src, src_mask)).logits

    source_keys: frozenset[str] = frozenset()  # state entries held once per source (see the module docstring)
    step_replay: StepDecoder | None = None  # set by `prepare_for_inference`: decoding steps replayed from traces

    def step_decoder(self) -> Callable[..., DecoderOutput]:
        """What decodes a search's steps: their replay from traces where the model is prepared for it, else `decode`."""
        return self.decode if self.step_replay is None else self.step_replay.decode

    def step_kind(self, tgt: torch.Tensor, state: State) -> Hashable | None:
        """What decides the Python path `decode(tgt, state)` takes for one new token per row, beyond tensor shapes:
        steps of one kind run the same tensor operations, so one trace replays them all (`translate.replay`).
        None: run this step eagerly. The default never replays; a model opts in by naming its decisions."""
        return None

    def expand_state(self, state: State, beam_size: int) -> State:
        """Each source's state for `beam_size` rows: rows j*K .. j*K+K-1 belong to source j."""
        rows = self._rows(state)
        index = torch.arange(rows, device=state[self._row_key(state)].device).repeat_interleave(beam_size)
        return {k: v if k in self.source_keys else v.index_select(0, index) for k, v in state.items()}

    def reorder_state(self, state: State, indices: torch.Tensor) -> State:
        """Select/duplicate batch rows of the state (beam search, dropping finished sentences)."""
        out = {k: v.index_select(0, indices) for k, v in state.items() if k not in self.source_keys}
        sources = [k for k in state if k in self.source_keys]
        if sources:
            n = state[sources[0]].size(0)
            per_source = self._rows(state) // n  # rows come grouped, per_source of them for each source
            kept = indices[::per_source] // per_source  # (n',) the source of each group of rows
            unchanged = kept.numel() == n and bool((kept == torch.arange(n, device=kept.device)).all())
            out.update({k: state[k] if unchanged else state[k].index_select(0, kept) for k in sources})
        return out

    def _row_key(self, state: State) -> str:
        return next(k for k in state if k not in self.source_keys)

    def _rows(self, state: State) -> int:
        return state[self._row_key(state)].size(0)

    def encode_traced(self, src: torch.Tensor, src_mask: torch.Tensor) -> tuple[State, list]:
        """`encode`, plus the encoder states h_t as tensors on the gradient path of everything the decoder reads,
        for measuring dL/dh_t: each part is a (B, S, H) tensor or a list of S (B, H) tensors (one per position).

        Default: the memory, which the decoder reads at every position (attention). Models whose decoder sees
        the source another way (a recurrent final state) override this.
        """
        state = self.encode(src, src_mask)
        return state, [state["memory"]]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
