"""The search as it was before its bookkeeping moved into tensor operations: the slow reference the fast one is
checked against (same hypotheses, or one at least as good). Kept verbatim but for this docstring and its records
(Hypothesis, SearchConfig), which it shares with `translate.decoding`.

Batched greedy and beam search over any `Seq2Seq`, through its interface alone.

Both searches decode incrementally: each step feeds only the newest token and the model's cached state
(recurrent state or key/value cache). `use_cache=False` recomputes the whole prefix from the encoder state
at every step instead; it exists to check that the cache changes nothing. Sentences that finish leave the
batch (their rows are dropped from the state), so a batch costs what its unfinished sentences cost.
"""

from __future__ import annotations

import torch

from translate.decoding import Hypothesis, SearchConfig
from translate.models.base import Seq2Seq, State
from translate.tokenizer import BOS_ID, EOS_ID


def max_output_lengths(src_mask: torch.Tensor, cfg: SearchConfig) -> list[int]:
    src_len = src_mask.sum(1).float()  # (B,)
    return [max(1, int(n)) for n in (src_len * cfg.max_len_ratio + cfg.max_len_extra).tolist()]


class _Stepper:
    """Feeds prefixes to the model, with the incremental cache or by recomputing them."""

    def __init__(self, model: Seq2Seq, state: State, use_cache: bool):
        self.model, self.state, self.use_cache = model, state, use_cache

    def step(self, prefix: torch.Tensor, need_attention: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """prefix (N, t) -> log-probs (N, V) of the next token and attention (N, S) of the newest position."""
        if self.use_cache:
            out = self.model.decode(prefix[:, -1:], self.state, need_attention)
            self.state = out.state
        else:
            out = self.model.decode(prefix, self.state, need_attention)  # self.state stays the encoder's
        attention = None if out.attention is None else out.attention[:, -1]
        return out.logits[:, -1].float().log_softmax(-1), attention

    def reorder(self, rows: torch.Tensor) -> None:
        self.state = self.model.reorder_state(self.state, rows)


def search(
    model: Seq2Seq, src: torch.Tensor, src_mask: torch.Tensor, cfg: SearchConfig = SearchConfig(),
    need_attention: bool = False, use_cache: bool = True,
) -> list[Hypothesis]:
    """Best hypothesis per source row: greedy search for beam size 1 (beam search with K=1 gives the same), else beam."""
    if cfg.beam_size < 1:
        raise ValueError(f"beam size must be >= 1, not {cfg.beam_size}")
    if cfg.beam_size == 1:
        return greedy_search(model, src, src_mask, cfg, need_attention, use_cache)
    return beam_search(model, src, src_mask, cfg, need_attention, use_cache)


@torch.no_grad()
def greedy_search(
    model: Seq2Seq, src: torch.Tensor, src_mask: torch.Tensor, cfg: SearchConfig = SearchConfig(beam_size=1),
    need_attention: bool = False, use_cache: bool = True,
) -> list[Hypothesis]:
    B = src.size(0)
    max_len = max_output_lengths(src_mask, cfg)
    stepper = _Stepper(model, model.encode(src, src_mask), use_cache)
    alive = list(range(B))  # sentence index of each row still decoding
    prefix = torch.full((B, 1), BOS_ID, dtype=torch.long, device=src.device)  # (N, t)
    tokens: list[list[int]] = [[] for _ in range(B)]
    scores = [0.0] * B
    attn_rows: list[list[torch.Tensor]] = [[] for _ in range(B)]
    has_attention = False  # models without attention return None
    for t in range(1, max(max_len) + 1):
        logp, attn = stepper.step(prefix, need_attention)  # (N, V), (N, S)
        has_attention = attn is not None
        best_logp, best = logp.max(-1)  # (N,)
        keep = []
        for row, (sent, tok, lp) in enumerate(zip(alive, best.tolist(), best_logp.tolist())):
            scores[sent] += lp
            if tok != EOS_ID:
                tokens[sent].append(tok)
                if attn is not None:
                    attn_rows[sent].append(attn[row])
            if tok != EOS_ID and t < max_len[sent]:
                keep.append(row)
        if not keep:
            break
        rows = torch.tensor(keep, device=src.device)
        if len(keep) < len(alive):
            stepper.reorder(rows)
        prefix = torch.cat([prefix[rows], best[rows, None]], dim=1)  # (N', t+1)
        alive = [alive[r] for r in keep]
    return [
        Hypothesis(tokens[i], scores[i], _stack(attn_rows[i], src_mask[i]) if has_attention else None)
        for i in range(B)
    ]


@torch.no_grad()
def beam_search(
    model: Seq2Seq, src: torch.Tensor, src_mask: torch.Tensor, cfg: SearchConfig = SearchConfig(),
    need_attention: bool = False, use_cache: bool = True,
) -> list[Hypothesis]:
    """Beam search; a sentence stops once `beam_size` finished hypotheses beat its live ones, or at its max length."""
    B, K, device = src.size(0), cfg.beam_size, src.device
    max_len = max_output_lengths(src_mask, cfg)
    state = model.encode(src, src_mask)
    stepper = _Stepper(model, model.reorder_state(state, torch.arange(B, device=device).repeat_interleave(K)), use_cache)
    alive = list(range(B))  # sentences still searching; rows are alive[j] * K + beam
    prefix = torch.full((B * K, 1), BOS_ID, dtype=torch.long, device=device)  # (N*K, t)
    beam_scores = torch.full((B, K), float("-inf"), device=device)
    beam_scores[:, 0] = 0.0  # all beams start identical: expand only the first
    attn_hist: torch.Tensor | None = None  # (N*K, t-1, S)
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    finished_norm: list[list[float]] = [[] for _ in range(B)]

    def finish(sent: int, toks: list[int], score: float, attn: torch.Tensor | None, ended: bool):
        length = len(toks) + int(ended)
        finished[sent].append(Hypothesis(toks, score, attn))
        finished_norm[sent].append(score / max(length, 1) ** cfg.length_penalty)

    for t in range(1, max(max_len) + 1):
        n = len(alive)
        logp, attn = stepper.step(prefix, need_attention)  # (n*K, V), (n*K, S)
        V = logp.size(-1)
        cand = (beam_scores.view(n * K, 1) + logp).view(n, K * V)  # (n, K*V)
        top_scores, top_idx = cand.topk(min(2 * K, K * V), dim=-1)  # (n, 2K): enough to keep K alive after EOS
        top_beam, top_tok = top_idx // V, top_idx % V
        if attn is not None:
            step_attn = attn[:, None, :]  # (n*K, 1, S)
            attn_hist = step_attn if attn_hist is None else torch.cat([attn_hist, step_attn], dim=1)
        prefix_list = prefix[:, 1:].tolist()
        next_rows, next_tok, next_scores, still = [], [], [], []
        for j, sent in enumerate(alive):
            chosen, forced = [], 0
            at_limit = t >= max_len[sent]
            for r, (beam, tok, score) in enumerate(
                zip(top_beam[j].tolist(), top_tok[j].tolist(), top_scores[j].tolist())
            ):
                if len(chosen) + forced == K or score == float("-inf"):
                    break
                row = j * K + beam
                if tok == EOS_ID and r >= K:
                    continue  # an EOS below the top K does not end a hypothesis
                if tok == EOS_ID or at_limit:
                    toks = prefix_list[row] + ([] if tok == EOS_ID else [tok])
                    hist = None if attn_hist is None else attn_hist[row, : len(toks)]
                    finish(sent, toks, score, _trim(hist, src_mask[sent]), tok == EOS_ID)
                    forced += tok != EOS_ID
                else:
                    chosen.append((row, tok, score))
            if not chosen and not finished[sent]:
                finish(sent, [], float("-inf"), None, False)  # nothing left to extend (a degenerate model)
            if chosen and not at_limit and not _done(finished_norm[sent], chosen[0][2] / t**cfg.length_penalty, K):
                still.append(sent)
                next_rows += [row for row, _, _ in chosen]
                next_tok += [tok for _, tok, _ in chosen]
                next_scores.append([s for _, _, s in chosen] + [float("-inf")] * (K - len(chosen)))
                # pad with copies of the first row so every sentence keeps K rows; their score is -inf
                next_rows += [chosen[0][0]] * (K - len(chosen))
                next_tok += [chosen[0][1]] * (K - len(chosen))
        if not still:
            break
        rows = torch.tensor(next_rows, device=device)
        stepper.reorder(rows)
        prefix = torch.cat([prefix[rows], torch.tensor(next_tok, device=device)[:, None]], dim=1)
        if attn_hist is not None:
            attn_hist = attn_hist[rows]
        beam_scores = torch.tensor(next_scores, device=device)
        alive = still
    return [finished[i][max(range(len(finished[i])), key=finished_norm[i].__getitem__)] for i in range(B)]


def _done(finished_norm: list[float], best_alive_norm: float, K: int) -> bool:
    """A sentence is done once it has K finished hypotheses, none of them beaten by its best live one.

    Comparing at the current length is the usual heuristic (the live score can still change with length
    normalisation); it keeps beam size 1 identical to greedy search.
    """
    if len(finished_norm) < K:
        return False
    return best_alive_norm <= sorted(finished_norm, reverse=True)[K - 1]


def _trim(attn: torch.Tensor | None, src_mask_row: torch.Tensor) -> torch.Tensor | None:
    """Attention restricted to the real (non-pad) source positions, on the CPU."""
    if attn is None:
        return None
    return attn[:, : int(src_mask_row.sum())].float().cpu()


def _stack(rows: list[torch.Tensor], src_mask_row: torch.Tensor) -> torch.Tensor:
    S = int(src_mask_row.sum())
    if not rows:
        return torch.zeros(0, S)
    return _trim(torch.stack(rows), src_mask_row)
