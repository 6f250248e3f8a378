"""Stage 3b: train the target (on member windows) and the reference models.

Plain next-token (causal) or masked-token (15%, BERT's 80/10/10 rule) loss
with AdamW, seeded; saved with ``save_pretrained`` as safetensors. A natively
read family (``gfm_audit.gfm``) gets the same losses computed here from its
logits, and is saved as its original checkpoint layout: the source folder's
config.json and tokenizer files, and its weights under their original names.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from typing import Any

from ..determinism import numeric_runtime, single_cpu_thread
from ..errors import InputError, first_line
from ..gfm.loader import accepts_attention_mask
from ..models import ModelSpec, load_model, load_tokenizer, max_tokens, model_from_scratch
from ..outputs import atomic_directory, write_loss_log
from ..tokens import encode

log = logging.getLogger(__name__)


def _mask_tokens(ids, special, mask_id: int, vocab_size: int, generator, rate: float = 0.15):
    import torch

    labels = ids.clone()
    chosen = (torch.rand(ids.shape, generator=generator) < rate) & ~special
    labels[~chosen] = -100
    roll = torch.rand(ids.shape, generator=generator)
    inputs = ids.clone()
    inputs[chosen & (roll < 0.8)] = mask_id
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[swap] = torch.randint(vocab_size, ids.shape, generator=generator)[swap]
    return inputs, labels


def train_model(
    spec: ModelSpec,
    sequences: Sequence[str],
    *,
    params: Mapping[str, Any],
    seed: int,
    out_dir: str | os.PathLike,
    device: str | None = None,
    extra_sequences: Sequence[str] = (),
) -> list[float]:
    """Train on ``sequences`` and save to ``out_dir``; returns the mean loss of each epoch over their batches.

    ``extra_sequences`` (planted canaries) are trained on in batches of their own, placed among the batches of
    ``sequences`` by a generator of their own: the batches of ``sequences`` and their order are the same with and
    without them, so planting canaries adds optimizer steps but changes neither which windows are trained together
    nor the shuffle.

    ``params["dp"]`` (``membership.training.dp``) trains with DP-SGD instead (privacy/dp_training.py); there every
    sequence, canaries included, is Poisson-sampled alike. ``params["force_noise_multiplier"]``, which no config can
    set (the schema refuses the key), replaces the calibrated noise while ``dp.json`` keeps the claim: the broken
    DP-SGD of the test that the audit catches one.
    """
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    # On a CPU, one thread keeps the gradient sums in one order, so a re-run gives the same bits.
    with single_cpu_thread() if device == "cpu" else nullcontext():
        log.info("numerics: %s", numeric_runtime())
        return _train(
            spec, sequences, params=params, seed=seed, out_dir=out_dir, device=device, extra=list(extra_sequences)
        )


def _train(
    spec: ModelSpec,
    sequences: Sequence[str],
    *,
    params: Mapping[str, Any],
    seed: int,
    out_dir: str | os.PathLike,
    device: str,
    extra: list[str],
) -> list[float]:
    import torch

    torch.manual_seed(seed)
    tokenizer = load_tokenizer(spec)
    model = model_from_scratch(spec, seed) if spec.init == "scratch" else load_model(spec)
    model.to(device).train()
    limit = max_tokens(spec, model, tokenizer)
    encodings = [
        encode(tokenizer, s, seq_id=f"training sequence {i}", model=spec.name)
        for i, s in enumerate([*sequences, *extra])
    ]
    too_long = [len(e.ids) for e in encodings if len(e.ids) > limit]
    if too_long:
        raise InputError(f"training windows are {too_long[0]} tokens, longer than model '{spec.name}' takes ({limit})")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    width = max(len(e.ids) for e in encodings)
    ids = torch.full((len(encodings), width), pad, dtype=torch.long)
    attention = torch.zeros_like(ids)
    special = torch.ones_like(ids, dtype=torch.bool)
    for i, e in enumerate(encodings):
        ids[i, : len(e.ids)] = torch.from_numpy(e.ids)
        attention[i, : len(e.ids)] = 1
        special[i, : len(e.ids)] = torch.from_numpy(e.special)

    if params.get("dp"):
        if extra:
            log.info(
                "DP-SGD: the %d planted copies are Poisson-sampled with the %d windows, not batched apart",
                len(extra),
                len(sequences),
            )
        return _train_dp(
            spec, model, tokenizer, ids, attention, special, params=params, seed=seed, out_dir=out_dir, device=device
        )
    optimizer = torch.optim.AdamW(model.parameters(), lr=params["learning_rate"], weight_decay=params["weight_decay"])
    generator = torch.Generator().manual_seed(seed)
    # A generator of its own for the extra batches, so that the main one draws exactly what it draws without them.
    extra_generator = torch.Generator().manual_seed(seed + 1_000_003)
    batch_size, epochs = params["batch_size"], params["epochs"]
    n_main = len(sequences)
    # An extra batch's loss is scaled so that each of its tokens weighs what a token of a full main batch weighs:
    # a per-batch mean over a few short canaries would give each canary token several times a window token's pull.
    tokens_per_main_batch = float(attention[:n_main].sum()) / max(1, math.ceil(n_main / batch_size))
    losses = []
    start = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(n_main, generator=generator)
        main = [order[k : k + batch_size] for k in range(0, n_main, batch_size)]
        total, batches = 0.0, 0
        for rows, is_main in _interleave(main, len(extra), n_main, batch_size, extra_generator):
            x, a = ids[rows], attention[rows]
            if spec.kind == "causal":
                labels = x.masked_fill(a == 0, -100)
            else:
                masking = generator if is_main else extra_generator
                x, labels = _mask_tokens(x, special[rows], tokenizer.mask_token_id, len(tokenizer), masking)
            loss = lm_loss(model, x.to(device), a.to(device), labels=labels.to(device), kind=spec.kind)
            if not is_main:
                loss = loss * (float(a.sum()) / tokens_per_main_batch)
            optimizer.zero_grad(set_to_none=True)
            backward(loss, model, spec)
            optimizer.step()
            if is_main:
                total += float(loss.detach())
                batches += 1
        losses.append(total / max(batches, 1))
        log.info(
            "model %s epoch %d/%d: training loss %.4f (%.0f s)",
            spec.name,
            epoch + 1,
            epochs,
            losses[-1],
            time.perf_counter() - start,
        )
    save_model(model, tokenizer, losses=losses, out_dir=out_dir, source=spec.path)
    return losses


def _train_dp(spec: ModelSpec, model, tokenizer, ids, attention, special, *, params, seed, out_dir, device):
    """DP-SGD (privacy/dp_training.py): planted canaries are rows like any other, Poisson-sampled with the rest."""
    from .dp_training import train_dp

    def make_batch(rows, generator):
        x = ids[rows]
        if spec.kind == "causal":
            return x, x.masked_fill(attention[rows] == 0, -100)
        return _mask_tokens(x, special[rows], tokenizer.mask_token_id, len(tokenizer), generator)

    losses, record = train_dp(
        model,
        name=spec.name,
        kind=spec.kind,
        ids=ids,
        attention=attention,
        make_batch=make_batch,
        params=params,
        seed=seed,
        device=device,
        force_noise_multiplier=params.get("force_noise_multiplier"),
    )
    save_model(model, tokenizer, losses=losses, out_dir=out_dir, source=spec.path, dp_record=record)
    return losses


def _interleave(main: list, n_extra: int, offset: int, batch_size: int, generator):
    """The main batches in their order, with the extra rows (``offset`` onwards) shuffled into batches of their own
    and each placed before a main batch (or at the end) drawn uniformly: (rows, is_main) pairs."""
    import torch

    if not n_extra:
        return [(rows, True) for rows in main]
    extra_order = offset + torch.randperm(n_extra, generator=generator)
    extra = [extra_order[k : k + batch_size] for k in range(0, n_extra, batch_size)]
    slots = torch.randint(len(main) + 1, (len(extra),), generator=generator).tolist()
    schedule: list = []
    for position in range(len(main) + 1):
        schedule += [(rows, False) for rows, slot in zip(extra, slots, strict=True) if slot == position]
        if position < len(main):
            schedule.append((main[position], True))
    return schedule


def backward(loss, model, spec: ModelSpec) -> None:
    try:
        loss.backward()
    except RuntimeError as exc:
        architecture = getattr(model, "gfm_audit_architecture", None)
        if not architecture:
            raise
        raise InputError(
            f"model '{spec.name}': the native {architecture} implementation cannot be trained here "
            f"({first_line(exc)}); audit it as it is with membership.mode regions or none"
        ) from None


def lm_loss(model, ids, attention, *, labels, kind: str):
    """Mean cross-entropy over the labelled tokens (-100: none); a transformers model computes its own."""
    import torch

    if not getattr(model, "gfm_audit_architecture", None):
        return model(input_ids=ids, attention_mask=attention, labels=labels).loss
    inputs = {"input_ids": ids}
    if accepts_attention_mask(model) and not bool(attention.all()):
        inputs["attention_mask"] = attention
    logits = model(**inputs).logits.float()
    if kind == "causal":  # token t is predicted at t - 1
        logits, labels = logits[:, :-1], labels[:, 1:]
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100
    )


def save_model(
    model,
    tokenizer,
    *,
    losses: Sequence[float],
    out_dir: str | os.PathLike,
    source: str | None = None,
    dp_record: Mapping[str, Any] | None = None,
) -> None:
    """Save with ``save_pretrained`` (a native family: in its original layout); a killed job leaves no folder.

    A DP-trained model's folder also holds ``dp.json``: the achieved (eps, delta) and the accountant.
    """
    with atomic_directory(out_dir) as tmp:
        if getattr(model, "gfm_audit_architecture", None):
            save_native(model, source=source, out_dir=tmp)
        else:
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
        write_loss_log(tmp, losses)
        if dp_record is not None:
            from .dp_training import write_dp_record

            write_dp_record(tmp, dp_record)


def save_native(model, *, source: str, out_dir: str | os.PathLike) -> None:
    """Weights under their original names, and the source checkpoint's config.json and tokenizer files."""
    import shutil
    from pathlib import Path

    from safetensors.torch import save_file

    # Tied weights share storage, which safetensors refuses; each name gets its own copy (equal values).
    state = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    save_file(state, Path(out_dir) / "model.safetensors", metadata={"format": "pt"})
    for file in Path(source).iterdir():
        # dp.json describes the source's training, not this one's (save_model writes this one's); a .pt is the
        # source's weights (Evo 2), which model.safetensors replaces.
        kept = file.suffix not in (".safetensors", ".bin", ".py", ".pt") and "index.json" not in file.name
        if file.is_file() and kept and file.name != "dp.json":
            shutil.copy(file, Path(out_dir) / file.name)


def member_sequences(windows: Mapping[str, str], labels: Mapping[str, int]) -> list[str]:
    """Sequences of the windows labelled 1, in window order (deterministic)."""
    return [seq for wid, seq in windows.items() if labels.get(wid) == 1]


def member_neighbor_sequences(
    window_ids: Sequence[str],
    labels: Mapping[str, int],
    trained: Mapping[str, str],
    *,
    neighbor_fastas: Sequence[str | os.PathLike],
) -> list[str]:
    """The sequences of the neighbors ``trained[w]`` of the windows labelled 1, in window order
    (``membership.train_on: neighbor``); the neighbor FASTAs are read one at a time, keeping only those."""
    from ..fasta import read_fasta

    wanted = {trained[w]: w for w in window_ids if labels.get(w) == 1}
    found: dict[str, str] = {}
    for path in neighbor_fastas:
        found |= read_fasta(path, keep=wanted)
    lost = [nid for nid in wanted if nid not in found]
    if lost:
        raise InputError(
            f"trained neighbor {lost[0]} is in no neighbor FASTA; re-run make_neighbors and membership_labels"
        )
    return [found[nid] for nid in wanted]
