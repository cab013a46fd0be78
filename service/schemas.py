"""Request and response bodies: plain msgspec structs; unknown fields are refused."""

from __future__ import annotations

from typing import Annotated

import msgspec

BeamSize = Annotated[int, msgspec.Meta(ge=1, description="beam size; 1 = greedy search")]


class TranslateRequest(msgspec.Struct, forbid_unknown_fields=True):
    model: str
    texts: list[str] | None = None
    text: str | None = None  # one sentence, instead of texts
    beam_size: BeamSize = 5
    return_attention: bool = False


class CompareRequest(msgspec.Struct, forbid_unknown_fields=True):
    text: str
    models: list[str] | None = None  # null: every loaded model
    beam_size: BeamSize = 5


class TranslationOut(msgspec.Struct):
    text: str
    src_tokens: list[str]
    tgt_tokens: list[str]
    attention: list[list[float]] | None  # (len(tgt_tokens), len(src_tokens)); null without attention


class TranslateResponse(msgspec.Struct):
    model: str
    translations: list[TranslationOut]
    elapsed_ms: float


class CompareResponse(msgspec.Struct):
    text: str
    results: list[TranslateResponse]


class ModelInfo(msgspec.Struct):
    name: str
    arch: str
    src_lang: str
    tgt_lang: str
    parameters: int
    metrics: dict[str, dict[str, float | int | str]]  # e.g. {"test_2016_flickr.beam5": {"bleu": .., "chrf": .., "split": ..}}


class ModelsResponse(msgspec.Struct):
    models: list[ModelInfo]


class Status(msgspec.Struct):
    status: str


class ReadyStatus(msgspec.Struct):
    status: str  # ready | loading | no models
    models: list[str]
    errors: dict[str, str]  # run name -> why it failed to load
