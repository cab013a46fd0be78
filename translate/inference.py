"""Inference-time forms of a trained model: packed projections and reduced-precision weights.

`prepare_for_inference(model, quantize)` returns the model ready to decode: in eval mode, its decoding steps
replayed from traces (`translate.replay`), with its attention projections packed (q/k/v of self-attention in one matrix, k/v of cross-attention in another), and with
- quantize="int8": every linear layer's weights in int8 (one scale per output row) and its inputs quantized at run
  time, multiplied in int8 (AVX-512 VNNI on this CPU): torch's fused dynamic int8 linear (fbgemm: quantize, multiply,
  dequantize and add the bias in one operation) where this torch has it, else `Int8Linear` below; LSTM and GRU
  layers likewise (torch's dynamic int8 LSTM/GRU: measured 1.5x faster beam search on the attention LSTM), or
- quantize="bf16": weights and activations in bfloat16 (AVX-512 BF16 or AMX; a CPU without them emulates bfloat16
  several times slower than float32, and a warning says so), logits back in float32 for the search.
The checkpoint and the training path are untouched: this is a copy's business.

PyTorch 2.13 deprecates its eager dynamic quantization (`torch.ao.quantization`) but still ships it, and it is the
faster of the two here (measured 15-35 % per linear at 30-500 rows: one operation instead of a dozen); torchao's
CPU int8 path needs `torch.compile`. So `Int8Linear` is written out for the torch that drops it: per-row activation
and per-channel weight scales, as CTranslate2's int8 does, multiplied with `torch._int_mm`.
"""

from __future__ import annotations

import logging
import warnings

import torch
from torch import nn

from translate.models import Seq2Seq
from translate.replay import StepReplay

log = logging.getLogger(__name__)

QUANTIZE = ("none", "int8", "bf16")


class Int8Linear(nn.Module):
    """y = x W^T + b with W stored in int8 (a scale per output row) and x quantized per row when called."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        weight = linear.weight.detach().float()  # (out, in)
        scale = weight.abs().amax(1).clamp(min=1e-8) / 127  # (out,)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight_t", (weight / scale[:, None]).round().clamp(-127, 127).to(torch.int8).t().contiguous())
        self.register_buffer("scale", scale)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1]).float()  # (N, in)
        # max |x| per row from two reductions: cheaper than materialising |x| (measured 5.0 vs 7.0 ms at 4096x1024)
        x_max = torch.maximum(x.amax(1, keepdim=True), x.amin(1, keepdim=True).neg_()).clamp_(min=1e-8)  # (N, 1)
        xq = (x * (127 / x_max)).round_().to(torch.int8)
        y = torch._int_mm(xq, self.weight_t).float().mul_(self.scale).mul_(x_max / 127)  # (N, out)
        if self.bias is not None:
            y.add_(self.bias)
        return y.view(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def prepare_for_inference(model: Seq2Seq, quantize: str = "none", replay: bool = True) -> Seq2Seq:
    """The model in eval mode with packed projections and the requested precision (see the module docstring);
    `replay`: its decoding steps replayed from traces (False: every step eager, e.g. to profile it)."""
    if quantize not in QUANTIZE:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZE)}, not {quantize!r}")
    model = model.eval()
    for module in model.modules():
        pack = getattr(module, "pack_projections", None)
        if pack is not None:
            pack()
        if isinstance(module, nn.ReLU):
            module.inplace = True  # no autograd here: overwrite the hidden activations instead of copying them
    if quantize == "int8":
        if model_device(model).type != "cpu":
            raise ValueError("int8 inference runs on the CPU (VNNI); use bf16 on a GPU")
        _int8_linears(model)
    elif quantize == "bf16":
        if model_device(model).type == "cpu" and not native_bf16():
            log.warning(
                "this CPU has no bfloat16 instructions (AVX-512 BF16 or AMX): bf16 inference is emulated and runs "
                "several times slower than float32 (measured 0.15x on an AVX2-only EPYC); int8 is the fast precision here"
            )
        model = model.to(torch.bfloat16)
    model.step_replay = StepReplay(model) if replay else None
    return model


def _int8_linears(model: nn.Module) -> None:
    """Every nn.Linear in int8, and the LSTM and GRU layers (the Elman RNN has no int8 form): torch's fused dynamic
    forms where they exist, else our `Int8Linear` for the linears alone."""
    quantize_dynamic = getattr(getattr(torch.ao, "quantization", None), "quantize_dynamic", None)
    if quantize_dynamic is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # its deprecation notice, once per model, is not the user's concern
                quantize_dynamic(model, {nn.Linear, nn.LSTM, nn.GRU}, dtype=torch.qint8, inplace=True)
            return
        except (RuntimeError, NotImplementedError) as e:  # no quantized engine for this CPU
            log.info("torch's dynamic int8 linear is unavailable (%s): using Int8Linear", e)
    _replace_linears(model)


def _replace_linears(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            setattr(module, name, Int8Linear(child))
        else:
            _replace_linears(child)


def native_bf16() -> bool:
    """Whether this CPU computes in bfloat16 itself (AVX-512 BF16 or AMX); True where torch cannot say."""
    cpu = torch.cpu
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if any(check is None for check in checks):
        return True
    return any(check() for check in checks)


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device
