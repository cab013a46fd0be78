"""Batched greedy and beam search over any `Seq2Seq`, through its interface alone.

Both searches decode incrementally: each step feeds only the newest token and the model's cached state
(recurrent state or key/value cache). `use_cache=False` recomputes the whole prefix from the encoder state
at every step instead; it exists to check that the cache changes nothing. Sentences that finish leave the
batch (their rows are dropped from the state), so a batch costs what its unfinished sentences cost.

All bookkeeping is tensor operations over the whole batch: no Python loop over sentences or candidates runs per
step, so the search costs a few dozen small tensor operations per step whatever the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from translate.models.base import Seq2Seq, State
from translate.tokenizer import BOS_ID, EOS_ID, PAD_ID

NEG_INF = float("-inf")
ENCODE_TOKENS = 1024  # padded source tokens encoded at once (see `encode`)
# Greedy search drops ended rows from the batch only once the live ones are fewer than this fraction of it:
# dropping copies every remaining row's cache, which costs more than decoding a few dead rows a few more steps.
COMPACT_BELOW = 0.75


@dataclass
class Hypothesis:
    tokens: list[int]  # output ids, without BOS and EOS
    score: float  # sum of token log-probabilities (EOS included when produced)
    attention: torch.Tensor | None  # (len(tokens), S) attention over source positions, or None


@dataclass(frozen=True)
class SearchConfig:
    beam_size: int = 5  # 1 = greedy
    length_penalty: float = 1.0  # beam hypotheses are ranked by score / length ** length_penalty
    max_len_ratio: float = 1.5  # at most ratio * source tokens + max_len_extra output tokens
    max_len_extra: int = 10
    n_best: int = 1  # hypotheses returned per sentence, best first (at most beam_size)

    def __post_init__(self):
        if self.beam_size < 1:
            raise ValueError(f"beam size must be >= 1, not {self.beam_size}")
        if not 1 <= self.n_best <= self.beam_size:
            raise ValueError(f"n_best must be between 1 and the beam size ({self.beam_size}), not {self.n_best}")


def max_output_lengths(src_mask: torch.Tensor, cfg: SearchConfig) -> torch.Tensor:
    """(B,) the most output tokens each sentence may get."""
    src_len = src_mask.sum(1).float()  # (B,)
    return (src_len * cfg.max_len_ratio + cfg.max_len_extra).long().clamp(min=1)


class _Stepper:
    """Feeds prefixes to the model, with the incremental cache or by recomputing them; keeps the prefixes."""

    def __init__(self, model: Seq2Seq, state: State, use_cache: bool, rows: int, device: torch.device):
        self.model, self.state, self.use_cache = model, state, use_cache
        self.decode = model.step_decoder()
        self.prefix = torch.full((rows, 1), BOS_ID, dtype=torch.long, device=device)  # (N, t): BOS + outputs

    def step(self, need_attention: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (N, V) of the next token and attention (N, S) of the newest position."""
        if self.use_cache:
            out = self.decode(self.prefix[:, -1:], self.state, need_attention)
            self.state = out.state
        else:
            out = self.decode(self.prefix, self.state, need_attention)  # self.state stays the encoder's
        attention = None if out.attention is None else out.attention[:, -1]
        return out.logits[:, -1].float(), attention

    def advance(self, rows: torch.Tensor | None, tokens: torch.Tensor, expand: int = 1) -> None:
        """Keep (and duplicate) the given rows, give each `expand` rows (beams of one source), append a token to each."""
        if rows is not None:
            self.state = self.model.reorder_state(self.state, rows)
            self.prefix = self.prefix[rows]
        if expand > 1:
            self.state = self.model.expand_state(self.state, expand)
            self.prefix = self.prefix.repeat_interleave(expand, dim=0)
        self.prefix = torch.cat([self.prefix, tokens[:, None]], dim=1)


def search(
    model: Seq2Seq, src: torch.Tensor, src_mask: torch.Tensor, cfg: SearchConfig = SearchConfig(),
    need_attention: bool = False, use_cache: bool = True,
) -> list[list[Hypothesis]]:
    """The `cfg.n_best` best hypotheses of each source row, best first: greedy search for beam size 1, else beam."""
    if cfg.beam_size == 1:
        return greedy_search(model, src, src_mask, cfg, need_attention, use_cache)
    return beam_search(model, src, src_mask, cfg, need_attention, use_cache)


@torch.no_grad()
def greedy_search(
    model: Seq2Seq, src: torch.Tensor, src_mask: torch.Tensor, cfg: SearchConfig = SearchConfig(beam_size=1),
    need_attention: bool = False, use_cache: bool = True,
) -> list[list[Hypothesis]]:
    B, device = src.size(0), src.device
    max_len = max_output_lengths(src_mask, cfg)  # (B,)
    L = int(max_len.max())
    stepper = _Stepper(model, encode(model, src, src_mask), use_cache, B, device)
    # Row i decodes sentence sents[i]; a row whose sentence ended points at the sink, row B of the results, until
    # the batch is compacted (see COMPACT_BELOW).
    sents = torch.arange(B, device=device)  # (n,)
    tokens = torch.full((B + 1, L), PAD_ID, dtype=torch.long, device=device)
    lengths = torch.zeros(B + 1, dtype=torch.long, device=device)  # output tokens, EOS excluded
    scores = torch.zeros(B + 1, device=device)
    limit = torch.cat([max_len, max_len.new_zeros(1)])  # the sink's limit is 0: its rows are never live
    attention: torch.Tensor | None = None  # (B + 1, L, S), once the model returns attention
    for t in range(1, L + 1):
        # 1. The most likely next token of every row, and its log-probability.
        logits, attn = stepper.step(need_attention)  # (n, V), (n, S)
        best_logp, best = best_log_probs(logits, 1)  # (n, 1)
        best = best[:, 0]
        scores[sents] += best_logp[:, 0]
        # 2. Record it; EOS ends the sentence without becoming one of its tokens.
        ended = best == EOS_ID
        tokens[sents, t - 1] = best
        lengths[sents] += (~ended).long()
        if attn is not None:
            attention = attention if attention is not None else torch.zeros(B + 1, L, attn.size(-1), device=device)
            attention[sents, t - 1] = attn.float()
        # 3. Rows that ended or reached their limit stop; the batch drops them once few enough rows are live.
        live = ~ended & (t < limit[sents])
        alive = int(live.sum())
        if alive == 0:
            break
        if alive > COMPACT_BELOW * live.size(0):
            sents = torch.where(live, sents, B)
            stepper.advance(None, best)
            continue
        keep = live.nonzero().squeeze(1)
        sents = sents[keep]
        stepper.advance(keep, best[keep])
    return [
        [Hypothesis(toks[:n], score, None if attention is None else _trim(attention[i, :n], src_mask[i]))]
        for i, (toks, n, score) in enumerate(zip(tokens[:B].tolist(), lengths[:B].tolist(), scores[:B].tolist()))
    ]


@torch.no_grad()
def beam_search(
    model: Seq2Seq, src: torch.Tensor, src_mask: torch.Tensor, cfg: SearchConfig = SearchConfig(),
    need_attention: bool = False, use_cache: bool = True,
) -> list[list[Hypothesis]]:
    """Beam search; a sentence stops once `beam_size` finished hypotheses beat its live ones, or at its max length."""
    B, K, device = src.size(0), cfg.beam_size, src.device
    max_len = max_output_lengths(src_mask, cfg)  # (B,)
    L = int(max_len.max())
    # All beams of a sentence start identical: the first step runs one row per sentence, then K.
    stepper = _Stepper(model, encode(model, src, src_mask), use_cache, B, device)
    finished = _Finished(B, K, L, device)
    sents = torch.arange(B, device=device)  # (n,) sentences still searching; their rows are j * k + beam
    beam_scores = torch.zeros(B, 1, device=device)  # (n, k): k live beams per sentence
    history: torch.Tensor | None = None  # (n*k, t, S) attention of each row's positions so far
    for t in range(1, L + 1):
        n, k = beam_scores.shape
        # 1. Score every one-token extension of every beam; keep the best 2K per sentence (enough for K after EOS).
        logits, attn = stepper.step(need_attention)  # (n*k, V), (n*k, S)
        top_scores, rows, tok = _best_extensions(logits, beam_scores, 2 * K)  # (n, C) each, best first
        if attn is not None:
            history = attn[:, None].float() if history is None else torch.cat([history, attn[:, None].float()], 1)
        # 2. EOS within the top K ends a hypothesis; the first K other candidates extend the beams (or, at the
        #    length limit, end there too).
        rank = torch.arange(tok.size(1), device=device)  # (C,)
        finite = top_scores > NEG_INF
        is_eos = tok == EOS_ID
        ends = is_eos & finite & (rank < K)
        extend = ~is_eos & finite
        extend &= extend.cumsum(1) <= K
        at_limit = (t >= max_len[sents])[:, None]  # (n, 1)
        forced = extend & at_limit
        extend &= ~at_limit
        # 3. Finished hypotheses join their sentence's best K (by length-normalised score).
        if bool((ends | forced).any()):
            finished.add(sents, stepper.prefix[:, 1:], history, rows, tok, top_scores, ends, forced, t, cfg)
        # 4. A sentence stops when nothing extends or its K finished hypotheses beat its best live one.
        best_live = torch.where(extend, top_scores, NEG_INF).max(1).values  # (n,)
        beaten = (finished.count[sents] >= K) & (best_live / t**cfg.length_penalty <= finished.norm[sents, K - 1])
        live = extend.any(1) & ~beaten
        if not bool(live.any()):
            break
        # 5. The next beams: each live sentence's first K extensions, padded with -inf copies of its first.
        keep = live.nonzero().squeeze(1)
        first_k = torch.where(extend, rank, rank.size(0)).topk(K, dim=1, largest=False).indices  # (n, K)
        chosen = extend.gather(1, first_k)
        next_rows = torch.where(chosen, rows.gather(1, first_k), rows.gather(1, first_k[:, :1]))[keep].view(-1)
        next_tok = torch.where(chosen, tok.gather(1, first_k), tok.gather(1, first_k[:, :1]))[keep].view(-1)
        beam_scores = torch.where(chosen, top_scores.gather(1, first_k), NEG_INF)[keep]
        if k == 1 < K:  # from one row per sentence to K: the kept sentences' rows, each K times
            stepper.advance(keep, next_tok, expand=K)
        else:
            stepper.advance(next_rows, next_tok)
        history = None if history is None else history[next_rows]
        sents = sents[keep]
    return finished.results(cfg.n_best, src_mask)


def _best_extensions(
    logits: torch.Tensor, beam_scores: torch.Tensor, C: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The C best (score, row, token) extensions of each sentence's k beams, best first; each (n, C).

    Each beam's own best C tokens hold the sentence's best C extensions: rank those, not all k*V.
    """
    n, k = beam_scores.shape
    row_logp, row_tok = best_log_probs(logits, min(C, logits.size(-1)))  # (n*k, W)
    W = row_tok.size(-1)
    candidates = (beam_scores.view(n * k, 1) + row_logp).view(n, k * W)
    top_scores, top_index = candidates.topk(min(C, k * W), dim=-1)  # (n, C)
    rows = torch.arange(n, device=logits.device)[:, None] * k + top_index // W  # the row each extends
    return top_scores, rows, row_tok.view(n, k * W).gather(1, top_index)


class _Finished:
    """Each sentence's K best finished hypotheses, best first: the only ones that can decide or end its search."""

    def __init__(self, B: int, K: int, L: int, device: torch.device):
        self.K = K
        self.norm = torch.full((B, K), NEG_INF, device=device)  # score / length ** length_penalty
        self.score = torch.full((B, K), NEG_INF, device=device)
        self.length = torch.zeros(B, K, dtype=torch.long, device=device)  # output tokens, EOS excluded
        self.tokens = torch.full((B, K, L), PAD_ID, dtype=torch.long, device=device)
        self.attention: torch.Tensor | None = None  # (B, K, L, S), once the model returns attention
        self.count = torch.zeros(B, dtype=torch.long, device=device)  # hypotheses finished so far, all kept or not

    def add(self, sents, prefix, history, rows, tok, scores, ends, forced, t: int, cfg: SearchConfig) -> None:
        """Merge the candidates at step t that `ends` (EOS) or `forced` (length limit) finish into the best K."""
        n, C = tok.shape
        done = ends | forced
        L = self.tokens.size(2)
        cand_tokens = torch.full((n, C, L), PAD_ID, dtype=torch.long, device=tok.device)
        cand_tokens[:, :, : t - 1] = prefix[rows]  # (n, C, t-1): the outputs before this step
        cand_tokens[:, :, t - 1] = torch.where(forced, tok, PAD_ID)  # a forced ending keeps its last token
        cand_length = torch.full_like(tok, t - 1) + forced.long()
        cand_norm = torch.where(done, scores / t**cfg.length_penalty, NEG_INF)  # both kinds are t long with EOS
        merged_norm = torch.cat([self.norm[sents], cand_norm], 1)  # (n, K + C)
        best = merged_norm.topk(self.K, dim=1).indices  # (n, K)
        self.norm[sents] = merged_norm.gather(1, best)
        self.score[sents] = torch.cat([self.score[sents], torch.where(done, scores, NEG_INF)], 1).gather(1, best)
        self.length[sents] = torch.cat([self.length[sents], cand_length], 1).gather(1, best)
        pick = best[:, :, None].expand(-1, -1, L)
        self.tokens[sents] = torch.cat([self.tokens[sents], cand_tokens], 1).gather(1, pick)
        if history is not None:
            S = history.size(2)
            if self.attention is None:
                self.attention = torch.zeros(self.norm.size(0), self.K, L, S, device=tok.device)
            cand_attention = torch.zeros(n, C, L, S, device=tok.device)
            cand_attention[:, :, :t] = history[rows]  # (n, C, t, S)
            merged = torch.cat([self.attention[sents], cand_attention], 1)
            self.attention[sents] = merged.gather(1, best[:, :, None, None].expand(-1, -1, L, S))
        self.count[sents] += done.sum(1)

    def results(self, n_best: int, src_mask: torch.Tensor) -> list[list[Hypothesis]]:
        out = []
        for i, (norms, scores, lengths, tokens) in enumerate(zip(
            self.norm.tolist(), self.score.tolist(), self.length.tolist(), self.tokens.tolist()
        )):
            hyps = [
                Hypothesis(tokens[k][: lengths[k]], scores[k],
                           None if self.attention is None else _trim(self.attention[i, k, : lengths[k]], src_mask[i]))
                for k in range(n_best) if norms[k] > NEG_INF
            ]
            out.append(hyps or [Hypothesis([], NEG_INF, None)])  # nothing finished: a degenerate model
        return out


def best_log_probs(logits: torch.Tensor, k: int, rows: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest log-probabilities (N, k) of each row of (N, V) logits, and their token ids.

    Done `rows` rows at a time: a block of 64 rows of an 8k vocabulary stays in the core's cache between the softmax
    and the ranking (measured 25 % faster than whole-batch passes at 150-320 rows).
    """
    if logits.size(0) <= rows:
        return top_k(logits.log_softmax(-1), k)
    parts = [top_k(chunk.log_softmax(-1), k) for chunk in logits.split(rows)]
    return torch.cat([v for v, _ in parts]), torch.cat([i for _, i in parts])


def encode(model: Seq2Seq, src: torch.Tensor, src_mask: torch.Tensor, max_tokens: int = ENCODE_TOKENS) -> State:
    """`model.encode`, a few hundred sentences at a time: the encoder's activations then stay in the core's cache
    (measured 20 % faster at 1,024 padded tokens a piece than at 4,096). The pieces' states are stacked back."""
    rows = max(1, max_tokens // max(src.size(1), 1))
    if src.size(0) <= rows:
        return model.encode(src, src_mask)
    parts = [model.encode(s, m) for s, m in zip(src.split(rows), src_mask.split(rows))]
    return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}


def top_k(x: torch.Tensor, k: int, block: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """`x.topk(k, dim=-1)` over (N, V) rows, found through block maxima: the k largest values of a row lie in the k
    blocks with the largest maxima, so one fast pass (a max per block of 64) leaves k*64 candidates to rank.
    Written out because torch's CPU topk (and max with indices) costs as much as the vocabulary's softmax itself.
    """
    N, V = x.shape
    blocks = V // block
    if blocks < 4 * k or V % block:  # small or odd vocabularies: torch's own
        return x.topk(k, dim=-1)
    grouped = x.view(N, blocks, block)
    top_blocks = grouped.amax(-1).topk(k, dim=-1).indices  # (N, k)
    candidates = grouped.gather(1, top_blocks[:, :, None].expand(-1, -1, block)).view(N, k * block)
    values, where = candidates.topk(k, dim=-1)  # (N, k)
    return values, top_blocks.gather(1, where // block) * block + where % block


def _trim(attn: torch.Tensor, src_mask_row: torch.Tensor) -> torch.Tensor:
    """Attention restricted to the real (non-pad) source positions, on the CPU."""
    return attn[:, : int(src_mask_row.sum())].float().cpu()
