"""Request and response bodies: plain msgspec structs; unknown fields are refused.

The OpenAPI schema says what the server does (schemathesis checks it, tests/service/test_fuzz.py): Litestar derives
it from these structs, and `complete_openapi` adds what msgspec enforces that Litestar leaves out (refused unknown
fields, the constraints of `openapi_extra` checked in `__post_init__`) and the configured limits.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec
from litestar.openapi.spec.enums import OpenAPIType
from litestar.openapi.spec import OpenAPI, Schema
from msgspec import UNSET, UnsetType

BeamSize = Annotated[int, msgspec.Meta(ge=1, description="beam size; 1 = greedy search")]


class TranslateRequest(msgspec.Struct, forbid_unknown_fields=True):
    model: str | UnsetType = UNSET
    source: str | UnsetType = UNSET  # with target, instead of model: the best model for the pair; "auto": detected
    target: str | UnsetType = UNSET
    texts: list[str] | UnsetType = UNSET
    text: str | UnsetType = UNSET  # one sentence, instead of texts
    beam_size: BeamSize = 5
    return_attention: bool = False
    alternatives: Annotated[int, msgspec.Meta(ge=0, description="next-best translations to return per text "
                                                   "(the beam widens to alternatives + 1 if needed)")] = 0

    openapi_extra: ClassVar[dict[str, Any]] = {"allOf": [
        {"oneOf": [{"required": ["texts"]}, {"required": ["text"]}]},
        {"oneOf": [
            {"required": ["model"], "not": {"anyOf": [{"required": ["source"]}, {"required": ["target"]}]}},
            {"required": ["source", "target"], "not": {"required": ["model"]}},
        ]},
    ]}

    def __post_init__(self) -> None:
        if (self.texts is UNSET) == (self.text is UNSET):
            raise ValueError("give either 'texts' (a list) or 'text' (one string)")
        by_model = self.model is not UNSET and self.source is UNSET and self.target is UNSET
        by_pair = self.model is UNSET and self.source is not UNSET and self.target is not UNSET
        if not (by_model or by_pair):
            raise ValueError("give either 'model', or 'source' and 'target' (source may be 'auto')")

    @property
    def all_texts(self) -> list[str]:
        return [self.text] if isinstance(self.text, str) else self.texts


class CompareRequest(msgspec.Struct, forbid_unknown_fields=True):
    text: str
    models: list[str] | None = None  # null: every loaded model
    beam_size: BeamSize = 5


class Alternative(msgspec.Struct):
    text: str
    score: float  # log-probability


class TranslationOut(msgspec.Struct, omit_defaults=True):
    text: str
    src_tokens: list[str]
    tgt_tokens: list[str]
    attention: list[list[float]] | None  # (len(tgt_tokens), len(src_tokens)); null without attention
    score: float  # log-probability of the output
    alternatives: list[Alternative] = []  # the next-best translations, best first (only when asked for)


class TranslateResponse(msgspec.Struct):
    model: str
    translations: list[TranslationOut]
    elapsed_ms: float


class CompareResponse(msgspec.Struct):
    text: str
    results: list[TranslateResponse]


class Score(msgspec.Struct, omit_defaults=True):
    """One evaluation of a model: an `evaluate` result, or the validation that chose its checkpoint."""

    bleu: float
    chrf: float
    split: str
    beam: int
    n_sentences: int | None = None  # evaluations
    step: int | None = None  # the validation


class ModelInfo(msgspec.Struct):
    name: str
    arch: str
    src_lang: str
    tgt_lang: str
    parameters: int
    metrics: dict[str, Score]  # e.g. {"test_2016_flickr.beam5": ..., "validation": ...}


class ModelsResponse(msgspec.Struct):
    models: list[ModelInfo]


class Status(msgspec.Struct):
    status: str
    pid: int  # the service process that answered (`translate serve --processes N` runs several on one port)


class ProcessState(msgspec.Struct):
    """One service process's state, as it publishes it to the others (`service.processes`)."""

    pid: int
    status: str  # ready | loading | no models | exited (died; its successor is on its way)
    models: list[str]


class ReadyStatus(msgspec.Struct, omit_defaults=True):
    status: str  # ready | loading | no models | waiting for processes (this one is ready, another is not)
    models: list[str]
    errors: dict[str, str]  # run name -> why it failed to load
    processes: list[ProcessState] = []  # with --processes N: every process's state; 200 needs N of them ready


class ReloadReport(msgspec.Struct, omit_defaults=True):
    added: list[str]
    replaced: list[str]  # their checkpoints changed
    removed: list[str]
    unchanged: list[str]
    failed: dict[str, str]  # run name -> why (a run that was served before keeps its previous version)
    signalled: list[int] = []  # with --processes N: the other processes, sent SIGHUP to reload the same way


class ErrorBody(msgspec.Struct):
    """Every refusal: the status code again, a sentence saying why, and details (limits, known models...)."""

    status_code: int
    detail: str
    extra: dict[str, Any] | list[Any] | None = None


REQUESTS = (TranslateRequest, CompareRequest)


def complete_openapi(openapi: OpenAPI, max_texts: int, max_chars: int, max_beam: int) -> None:
    """Add to Litestar's schema what the server enforces beyond the types (requests breaking it get 400 or 422)."""
    schemas = openapi.components.schemas
    for struct in REQUESTS:
        schema = schemas[struct.__name__]
        schema.additional_properties = not struct.__struct_config__.forbid_unknown_fields
        if all_of := getattr(struct, "openapi_extra", {}).get("allOf"):
            schema.all_of = [_schema(part) for part in all_of]
        props = schema.properties
        props["beam_size"].maximum = max_beam
        if "alternatives" in props:
            props["alternatives"].maximum = max_beam - 1
        for name in ("text", "texts", "models"):  # (source/target/model: any string; unknown ones get 400/404)
            for option in _options(props.get(name)):
                if option.type == OpenAPIType.STRING:  # one text
                    option.max_length = max_chars
                elif option.type == OpenAPIType.ARRAY:  # texts, or model names
                    option.max_items = max_texts
                    if name == "texts":
                        option.items.max_length = max_chars


def _schema(spec: dict[str, Any]) -> Schema:
    """A JSON-schema fragment of required/oneOf/anyOf/not as Litestar's Schema object."""
    names = {"required": "required", "oneOf": "one_of", "anyOf": "any_of", "not": "schema_not"}
    return Schema(**{names[key]: value if key == "required" else
                     (_schema(value) if key == "not" else [_schema(v) for v in value]) for key, value in spec.items()})


def _options(schema: Schema | None) -> list[Schema]:
    return [] if schema is None else schema.one_of or [schema]
