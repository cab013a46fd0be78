"""Decoding steps replayed from TorchScript traces: the same tensor operations without Python between them.

A decoding step is a few hundred small tensor operations. Run eagerly, each pays Python's call overhead, and for a
batch of a few sentences that overhead costs more than the arithmetic: measured on the default Transformer (int8,
one thread, beam 5), a batch of one sentence took 35 ms eagerly and 18 ms replayed, a batch of eight 95 and 63 ms,
with the same hypotheses. `torch.jit.trace` records one step's operations as a graph, which TorchScript's
interpreter then runs in C++.

A trace records the Python path its example took (which branches, which cached entries), not the shapes: the rows,
the cached positions and the source length vary freely within one. So a model names what decides its path
(`Seq2Seq.step_kind`) and each kind of step gets its own trace, recorded the first time it is met (a beam search
meets two: its first step and the others). Steps that ask for attention weights, feed several tokens, need
gradients or come with no kind run eagerly.

Why not `torch.compile`, the current route: measured on the same model and searches, compiling the kinds of step a
search meets took 138 s, and the compiled steps ran slower than the replayed ones (a batch of eight 82-88 ms, of one
31-33 ms), its dynamic int8 linear layers breaking the graph. `torch.jit.trace` is deprecated in torch 2.13 but
shipped; where it is missing or fails, decoding stays eager.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Hashable

import torch
from torch import nn

from translate.models.base import DecoderOutput, Seq2Seq, State

log = logging.getLogger(__name__)


class StepReplay:
    """`decode` for a model prepared for inference: one new token per row, replayed from a trace per kind of step."""

    def __init__(self, model: Seq2Seq):
        self.model = model
        self._traces: dict[Hashable, torch.jit.ScriptModule | None] = {}  # None: that kind failed to trace
        self._lock = threading.Lock()  # worker threads may meet a new kind together
        self.replayed = 0  # steps replayed so far (the others ran eagerly)

    def decode(self, tgt: torch.Tensor, state: State, need_attention: bool = False) -> DecoderOutput:
        trace = self._trace_for(tgt, state, need_attention)
        if trace is None:
            return self.model.decode(tgt, state, need_attention)
        self.replayed += 1
        out = trace(tgt, *state.values())
        return DecoderOutput(out[0], dict(zip(state, out[1:])), None)

    def _trace_for(self, tgt: torch.Tensor, state: State, need_attention: bool) -> torch.jit.ScriptModule | None:
        if need_attention or tgt.size(1) != 1 or self.model.training or torch.is_grad_enabled():
            return None
        kind = self.model.step_kind(tgt, state)
        if kind is None:
            return None
        key = (kind, tuple(state))
        if key not in self._traces:
            with self._lock:
                if key not in self._traces:
                    self._traces[key] = self._record(tgt, state)
        return self._traces[key]

    def _record(self, tgt: torch.Tensor, state: State) -> torch.jit.ScriptModule | None:
        trace = getattr(torch.jit, "trace", None)
        if trace is None:
            return None
        try:
            with warnings.catch_warnings():
                # Its deprecation notice, and its warnings that Python decisions are recorded as constants: the
                # step kind is what makes those decisions hold for every step replayed from this trace.
                warnings.simplefilter("ignore")
                return trace(_Step(self.model, tuple(state)), (tgt, *state.values()), check_trace=False)
        except Exception as e:  # an operation TorchScript cannot record: this kind of step stays eager
            log.warning("decoding steps of %s run eagerly: tracing failed (%s)", type(self.model).__name__, e)
            return None

    @property
    def kinds(self) -> int:
        """Kinds of step recorded so far."""
        return sum(trace is not None for trace in self._traces.values())

    def __getstate__(self):  # traces and locks do not pickle; a copy records its own
        return {"model": self.model}

    def __setstate__(self, data):
        self.__init__(data["model"])


class _Step(nn.Module):
    """model.decode over (tgt, *state values) -> (logits, *new state values): the tensors-only form a trace takes."""

    def __init__(self, model: Seq2Seq, keys: tuple[str, ...]):
        super().__init__()
        self.model, self.keys = model, keys

    def forward(self, tgt: torch.Tensor, *values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model.decode(tgt, dict(zip(self.keys, values)))
        if tuple(out.state) != self.keys:
            raise ValueError(f"decode changed the state's entries: {tuple(out.state)} from {self.keys}")
        return (out.logits, *out.state.values())
