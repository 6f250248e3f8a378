"""Membership mode ``genome``: train a model from scratch over the chunks of its training intervals.

The same losses as finetune mode (privacy/training.py: next-token for causal models, BERT's 15% 80/10/10 masking
for masked ones, AdamW, seeded), over the chunks of :func:`genome_split.training_chunks` in the order of
:func:`genome_split.training_schedule` (each chunk ``duplication`` times per epoch). A batch's chunks are read from
the indexed FASTA when the batch is trained, so the job holds one batch of sequence at a time, never the genome;
the chunk order is one integer per chunk copy. A chunk with no A, C, G or T (an assembly gap of N) is skipped when
it is read, and counted in each epoch's log line: it holds no sequence to learn or to leak.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

from ..determinism import numeric_runtime, single_cpu_thread
from ..errors import InputError
from ..models import ModelSpec, load_tokenizer, max_tokens, model_from_scratch
from ..tokens import encode
from .genome_split import ChunkPlan, training_schedule
from .training import _mask_tokens, backward, lm_loss, save_model

log = logging.getLogger(__name__)


def train_on_genome(
    spec: ModelSpec,
    plan: ChunkPlan,
    *,
    fasta: str | os.PathLike,
    params: Mapping[str, Any],
    duplication: int,
    seed: int,
    out_dir: str | os.PathLike,
    device: str | None = None,
) -> list[float]:
    """Train ``spec`` from scratch on the chunks of ``plan`` read from ``fasta``; returns each epoch's mean loss.

    ``params`` is ``membership.training`` (epochs, learning_rate, batch_size, weight_decay).
    """
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    with single_cpu_thread() if device == "cpu" else nullcontext():
        log.info("numerics: %s", numeric_runtime())
        return _train(
            spec, plan, fasta=fasta, params=params, duplication=duplication, seed=seed, out_dir=out_dir, device=device
        )


def _train(spec, plan, *, fasta, params, duplication, seed, out_dir, device) -> list[float]:
    import pysam
    import torch

    if not len(plan):
        raise InputError("membership.genome: no training chunk is left outside the held-out blocks")
    torch.manual_seed(seed)
    tokenizer = load_tokenizer(spec)
    model = model_from_scratch(spec, seed)
    model.to(device).train()
    limit = max_tokens(spec, model, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    optimizer = torch.optim.AdamW(model.parameters(), lr=params["learning_rate"], weight_decay=params["weight_decay"])
    generator = torch.Generator().manual_seed(seed)
    epochs = params["epochs"]
    log.info(
        "model %s: %d chunks of up to %d bp over %d training bases, each %d times an epoch, %d epochs",
        spec.name,
        len(plan),
        plan.chunk_length,
        plan.bases,
        duplication,
        epochs,
    )
    losses, total, batches, bases, gaps = [], 0.0, 0, 0, 0
    start = time.perf_counter()
    schedule = training_schedule(
        len(plan), epochs=epochs, duplication=duplication, batch_size=params["batch_size"], generator=generator
    )
    with pysam.FastaFile(str(fasta)) as reference:
        for epoch, rows in _with_epoch_ends(schedule):
            if rows is None:
                losses.append(total / max(batches, 1))
                log.info(
                    "model %s epoch %d/%d: training loss %.4f, %d gap chunks skipped, %d bases (%.0f s)",
                    spec.name,
                    epoch + 1,
                    epochs,
                    losses[-1],
                    gaps,
                    bases,
                    time.perf_counter() - start,
                )
                total, batches, bases, gaps = 0.0, 0, 0, 0
                continue
            chunks, sequences = [], []
            for c, s, e in (plan.chunk(int(i)) for i in rows):
                sequence = reference.fetch(c, s, e).upper()
                if is_gap(sequence):
                    gaps += 1
                    continue
                chunks.append((c, s, e))
                sequences.append(sequence)
            if not chunks:
                continue
            encodings = [
                encode(tokenizer, seq, seq_id=f"{c}:{s}-{e}", model=spec.name)
                for (c, s, e), seq in zip(chunks, sequences, strict=True)
            ]
            longest = max(len(x.ids) for x in encodings)
            if longest > limit:
                raise InputError(
                    f"training chunks of membership.genome.chunk_length={plan.chunk_length} bp are {longest} tokens, "
                    f"longer than model '{spec.name}' takes ({limit}); lower chunk_length"
                )
            x = torch.full((len(encodings), longest), pad, dtype=torch.long)
            attention = torch.zeros_like(x)
            special = torch.ones_like(x, dtype=torch.bool)
            for k, enc in enumerate(encodings):
                x[k, : len(enc.ids)] = torch.from_numpy(enc.ids)
                attention[k, : len(enc.ids)] = 1
                special[k, : len(enc.ids)] = torch.from_numpy(enc.special)
            if spec.kind == "causal":
                labels = x.masked_fill(attention == 0, -100)
            else:
                x, labels = _mask_tokens(x, special, tokenizer.mask_token_id, len(tokenizer), generator)
            loss = lm_loss(model, x.to(device), attention.to(device), labels=labels.to(device), kind=spec.kind)
            optimizer.zero_grad(set_to_none=True)
            backward(loss, model, spec)
            optimizer.step()
            total += float(loss.detach())
            batches += 1
            bases += sum(e - s for _, s, e in chunks)
    save_model(model, tokenizer, losses=losses, out_dir=out_dir, source=spec.path)
    return losses


def is_gap(sequence: str) -> bool:
    """No A, C, G or T in an upper-case sequence: an assembly gap (N) or only ambiguity codes."""
    return not any(base in sequence for base in "ACGT")


def _with_epoch_ends(schedule):
    """The schedule's ``(epoch, rows)`` with ``(epoch, None)`` after each epoch's last batch."""
    current = None
    for epoch, rows in schedule:
        if current is not None and epoch != current:
            yield current, None
        current = epoch
        yield epoch, rows
    if current is not None:
        yield current, None
