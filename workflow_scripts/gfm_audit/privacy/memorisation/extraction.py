"""Extraction of training sequences from a prefix (Carlini et al. 2021, USENIX Security; Nasr et al. 2023).

Given the first ``p`` bases of a window, the model continues it by ``s`` bases, and the continuation is
compared with the window's true next ``s`` bases: *exact match* (all ``s`` right), *longest run* (the
longest stretch of consecutive positions that agree) and *per-base accuracy*. Members against
non-members (and planted canaries) against an order-k Markov baseline fitted on the non-members
(:mod:`.kmer`): a gap between members and non-members that the baseline does not show is memorisation.

Causal models decode left to right: greedy (the most likely base each step) and seeded sampling
(``p(b) ~ softmax(logit_b / temperature)`` over A, C, G, T), ``samples`` tries; a window counts as
extracted by sampling when any try matches exactly, its longest run is the best try's, and its per-base
accuracy the mean over tries. Masked models fill the ``s`` masked positions by iterative unmasking: each
step fills the masked position whose most likely base is most probable (greedy; ``iterative``), or
draws that position's base (``iterative_sampling``), and runs the model again. Only models with one
token per base can be decoded base by base.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ...errors import InputError
from ...sampling import sample_indices
from .canaries import Canary
from .kmer import BASES, KmerModel

log = logging.getLogger(__name__)

# Extraction has one switch for every audited model, none per model.
NO_EXTRACTION = (
    "extraction runs on every model in models: set memorisation.extraction.enabled: false, or audit this model "
    "in a run of its own without extraction"
)

COLUMNS = (
    "decoder",
    "group",
    "method",
    "prefix_length",
    "suffix_length",
    "n_sequences",
    "tries",
    "exact_match_rate",
    "mean_longest_run",
    "per_base_accuracy",
)


def check_decoding(kind: str, decoding: str, model: str) -> str:
    """The decoding a model of ``kind`` gets for ``memorisation.extraction.decoding``; one line if impossible."""
    if decoding == "auto":
        return "greedy" if kind == "causal" else "iterative"
    if decoding == "greedy" and kind != "causal":
        raise InputError(
            f"memorisation.extraction.decoding is greedy, but model '{model}' is {kind} and cannot generate left to "
            "right; set memorisation.extraction.decoding: iterative (or auto)"
        )
    if decoding == "iterative" and kind != "masked":
        raise InputError(
            f"memorisation.extraction.decoding is iterative (unmasking), but model '{model}' is {kind}; "
            "set memorisation.extraction.decoding: greedy (or auto)"
        )
    return decoding


def match_metrics(decoded: str, truth: str) -> tuple[bool, int, float]:
    """(exact match, longest run of consecutive agreeing positions, fraction of agreeing positions)."""
    agree = [a == b for a, b in zip(decoded, truth, strict=True)]
    run = best = 0
    for ok in agree:
        run = run + 1 if ok else 0
        best = max(best, run)
    return all(agree), best, float(np.mean(agree)) if agree else 0.0


def summarise(decoded: Sequence[Sequence[str]], truths: Sequence[str]) -> tuple[float, float, float]:
    """(exact-match rate, mean longest run, per-base accuracy) over sequences, each with one or more tries."""
    exact, runs, accuracy = [], [], []
    for tries, truth in zip(decoded, truths, strict=True):
        metrics = [match_metrics(d, truth) for d in tries]
        exact.append(any(m[0] for m in metrics))
        runs.append(max(m[1] for m in metrics))
        accuracy.append(float(np.mean([m[2] for m in metrics])))
    return float(np.mean(exact)), float(np.mean(runs)), float(np.mean(accuracy))


@dataclass
class ModelDecoder:
    """A loaded model, its tokenizer and the token ids of A, C, G, T (one token per base)."""

    model: Any
    tokenizer: Any
    kind: str
    name: str
    base_ids: np.ndarray
    device: str

    @classmethod
    def load(cls, spec, device: str | None = None) -> ModelDecoder:
        import torch

        from ...models import load_model, load_tokenizer

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        tokenizer = load_tokenizer(spec)
        model = load_model(spec, tokenizer=tokenizer).to(device)
        ids = tokenizer.convert_tokens_to_ids(list(BASES))
        if any(i is None or i == tokenizer.unk_token_id for i in ids):
            raise InputError(
                f"model '{spec.name}': extraction decodes base by base and needs a tokenizer with one token per base "
                f"(A, C, G, T); {NO_EXTRACTION}"
            )
        if spec.kind == "masked" and tokenizer.mask_token_id is None:
            raise InputError(f"model '{spec.name}' is masked but its tokenizer has no mask token")
        return cls(model, tokenizer, spec.kind, spec.name, np.asarray(ids, dtype=np.int64), device)

    def _encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        from ...tokens import encode

        enc = encode(self.tokenizer, text, model=self.name)
        real = np.flatnonzero(~enc.special)
        if len(real) != len(text) or not (enc.end[real] - enc.start[real] == 1).all():
            raise InputError(
                f"model '{self.name}': extraction needs one token per base, and its tokenizer joins bases; "
                f"{NO_EXTRACTION}"
            )
        return enc.ids, real

    def continue_prefixes(
        self, prefixes: Sequence[str], steps: int, *, batch_size: int, generator=None, temperature: float = 1.0
    ) -> list[str]:
        """Each prefix continued by ``steps`` bases; greedy when ``generator`` is None, else seeded draws."""
        out: list[str] = []
        for k in range(0, len(prefixes), batch_size):
            chunk = prefixes[k : k + batch_size]
            decode = self._causal if self.kind == "causal" else self._masked
            codes = decode(chunk, steps, generator=generator, temperature=temperature)
            out.extend("".join(BASES[c] for c in row) for row in codes)
        return out

    def _pick(self, logits, generator, temperature):
        """Index into A, C, G, T per row: argmax, or a draw on the CPU (same draws on any device)."""
        import torch

        if generator is None:
            return torch.argmax(logits, dim=-1)
        probs = torch.softmax(logits.float().cpu() / temperature, dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1).to(logits.device)

    def _causal(self, prefixes, steps, *, generator, temperature) -> np.ndarray:
        import torch

        rows = []
        for p in prefixes:
            ids, real = self._encode(p)
            rows.append(ids[: real[-1] + 1])  # drop a trailing EOS / SEP: the sequence goes on
        base_ids = torch.from_numpy(self.base_ids).to(self.device)
        x = torch.from_numpy(np.stack(rows)).to(self.device)
        chosen = []
        with torch.inference_mode():
            out = self.model(input_ids=x, use_cache=True)
            for step in range(steps):
                pick = self._pick(out.logits[:, -1][:, base_ids].float(), generator, temperature)
                chosen.append(pick)
                if step == steps - 1:
                    break
                x = torch.cat([x, base_ids[pick].unsqueeze(1)], dim=1)
                # With the model's key/value cache each step reads one new token; without it, the whole sequence.
                past = getattr(out, "past_key_values", None)
                if past is not None:
                    out = self.model(input_ids=x[:, -1:], past_key_values=past, use_cache=True)
                else:
                    out = self.model(input_ids=x)
        return torch.stack(chosen, dim=1).cpu().numpy()

    def _masked(self, prefixes, steps, *, generator, temperature) -> np.ndarray:
        import torch

        rows, where = [], None
        for p in prefixes:
            ids, real = self._encode(p + "A" * steps)
            slots = real[len(p) :]
            ids = ids.copy()
            ids[slots] = self.tokenizer.mask_token_id
            rows.append(ids)
            where = slots
        base_ids = torch.from_numpy(self.base_ids).to(self.device)
        x = torch.from_numpy(np.stack(rows)).to(self.device)
        slots = torch.from_numpy(where).to(self.device)
        open_ = torch.ones(len(rows), steps, dtype=torch.bool, device=self.device)
        result = torch.zeros(len(rows), steps, dtype=torch.long, device=self.device)
        batch = torch.arange(len(rows), device=self.device)
        with torch.inference_mode():
            for _ in range(steps):
                logits = self.model(input_ids=x).logits[:, slots][:, :, base_ids].float()
                confidence = torch.softmax(logits, dim=-1).amax(-1).masked_fill(~open_, -1.0)
                slot = confidence.argmax(-1)  # the most confident masked position of each row
                pick = self._pick(logits[batch, slot], generator, temperature)
                result[batch, slot] = pick
                open_[batch, slot] = False
                x[batch, slots[slot]] = base_ids[pick]
        return result.cpu().numpy()


def _torch_generator(seed: int, *keys: int):
    import torch

    state = np.random.SeedSequence([seed, *keys]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def choose_windows(labels: Mapping[str, int], n: int, seed: int) -> tuple[list[str], list[str]]:
    """A seeded sample of ``n`` member and ``n`` non-member windows (all of a side when it has fewer), in order."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    picked = []
    for side in (1, 0):
        ids = [w for w, v in labels.items() if v == side]
        picked.append([ids[i] for i in sample_indices(len(ids), n, rng)])
    return picked[0], picked[1]


def run_extraction(
    decoder: ModelDecoder,
    windows: Mapping[str, str],
    labels: Mapping[str, int],
    *,
    canaries: Sequence[Canary] = (),
    params: Mapping[str, Any],
    batch_size: int,
) -> pd.DataFrame:
    """extraction.tsv: one row per (decoder, group, method, prefix length); ``params`` is memorisation.extraction."""
    method = check_decoding(decoder.kind, params["decoding"], decoder.name)
    s, seed, tries = params["suffix_length"], params["seed"], params["samples"]
    labels = {w: int(v) for w, v in labels.items() if w in windows}
    members, nonmembers = choose_windows(labels, params["windows"], seed)
    shortest = min(len(windows[w]) for w in members + nonmembers)
    too_long = [p for p in params["prefix_lengths"] if p + s > shortest]
    if too_long:
        raise InputError(
            f"memorisation.extraction: prefix length {too_long[0]} + suffix_length {s} is longer than the windows "
            f"({shortest} bp); lower memorisation.extraction.prefix_lengths or suffix_length"
        )
    groups = {"member": [windows[w] for w in members], "nonmember": [windows[w] for w in nonmembers]}
    for r in sorted({c.repeats for c in canaries}, reverse=True):
        name = f"canary_r{r}" if r else "canary_reference"
        groups[name] = [c.sequence for c in canaries if c.repeats == r]
    kmer = KmerModel.fit([windows[w] for w, v in labels.items() if v == 0], params["kmer_order"])
    nonmember_set = set(groups["nonmember"])
    sampled = f"{method}_sampling" if method == "iterative" else "sampling"
    rows = []
    for p in params["prefix_lengths"]:
        # Every group's sequences in one decoding run per prefix length: full batches, one pass over the model.
        usable = {g: [q for q in seqs if p + s <= len(q)] for g, seqs in groups.items()}
        usable = {g: seqs for g, seqs in usable.items() if seqs}
        everything = [q for seqs in usable.values() for q in seqs]
        prefixes = [q[:p] for q in everything]
        decoded = {method: [[d] for d in decoder.continue_prefixes(prefixes, s, batch_size=batch_size)]}
        if tries:
            draws = [
                decoder.continue_prefixes(
                    prefixes,
                    s,
                    batch_size=batch_size,
                    generator=_torch_generator(seed, p, t),
                    temperature=params["temperature"],
                )
                for t in range(tries)
            ]
            decoded[sampled] = [list(d) for d in zip(*draws, strict=True)]
        # The baseline never continues a window it was fitted on: those are left out of its counts.
        fitted = [kmer.without(q) if q in nonmember_set else kmer for q in everything]
        baseline = {"greedy": [[m.continue_sequence(x, s)] for m, x in zip(fitted, prefixes, strict=True)]}
        if tries:
            rng = np.random.default_rng(np.random.SeedSequence([seed, 3, p]))
            baseline["sampling"] = [
                [m.continue_sequence(x, s, rng=rng) for _ in range(tries)]
                for m, x in zip(fitted, prefixes, strict=True)
            ]
        at = 0
        for group, seqs in usable.items():
            part = slice(at, at + len(seqs))
            at += len(seqs)
            truths = [q[p : p + s] for q in seqs]
            for source, runs in (("model", decoded), ("kmer_baseline", baseline)):
                for name, values in runs.items():
                    chunk = values[part]
                    rows.append((source, group, name, p, s, len(seqs), len(chunk[0]), *summarise(chunk, truths)))
        log.info("extraction p=%d: %d sequences", p, len(everything))
    order = {g: i for i, g in enumerate(groups)}
    rows.sort(key=lambda r: (r[0] != "model", order[r[1]], r[3], r[2]))
    return pd.DataFrame(rows, columns=list(COLUMNS))
