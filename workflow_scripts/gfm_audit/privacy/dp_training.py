"""DP-SGD training with Opacus (``membership.training.dp``): target and reference models at a known (eps, delta).

Opacus' PrivacyEngine draws each batch by Poisson sampling (every training sequence in with probability
q = 1 / ceil(n / batch_size)), clips each sequence's gradient to ``max_grad_norm``, adds Gaussian noise of standard
deviation sigma * max_grad_norm to the sum, and its accountant (RDP, Mironov 2017 / Mironov, Talwar & Zhang 2019;
or PRV, Gopi, Lee & Wutschitz 2021) picks sigma, the smallest for which epochs / q steps stay within the requested
eps at the requested delta (Abadi et al. 2016, "Deep learning with differential privacy"). A sequence's loss is the
mean over its labelled tokens; the clipped, noised sum is divided by the expected batch size.

Per-sequence gradients: a transformers model uses Opacus' per-layer hooks, checked before training against
gradients computed one sequence at a time (a layer whose input is shared by the whole batch, such as a filter built
from positions, would otherwise be clipped wrong without a word); a natively read family (``gfm_audit.gfm``) is
differentiated as a whole, one sequence at a time under ``torch.func.vmap``, and hands Opacus its gradients
(Opacus' ``no_op`` mode). The achieved (eps, delta), sigma, the sampling rate, the steps and the accountant are
written to ``dp.json`` beside the weights.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import InputError, first_line

log = logging.getLogger(__name__)

RECORD = "dp.json"
ACCOUNTANTS = ("rdp", "prv")
KEY = "membership.training.dp"


def rdp_orders() -> list[float]:
    """The Renyi orders the RDP accountant minimises over: Opacus' defaults (1.1 to 63) and larger ones up to 1024.

    The (eps, delta) bound is a minimum over orders alpha of rdp(alpha) + log((alpha - 1) / alpha)
    - (log delta + log alpha) / (alpha - 1) (Balle et al., AISTATS 2020). The optimal alpha grows as eps falls (about
    1 + sqrt(log(1/delta) / rho) for a Gaussian mechanism of RDP rho * alpha); past 63 Opacus' defaults give a looser
    bound, so more noise than needed, and at alpha 63 the conversion terms alone cost about 0.1 at delta 1e-5, so no
    noise reaches a smaller eps. Where the optimum lies inside the defaults, the extra orders change nothing: a
    minimum over more points reached at the same one.
    """
    from opacus.accountants.rdp import RDPAccountant

    return list(RDPAccountant.DEFAULT_ALPHAS) + list(range(64, 256, 4)) + list(range(256, 1025, 32))


def _accounting(accountant: str) -> dict[str, Any]:
    # PRV computes its epsilon numerically and takes no orders.
    return {"alphas": rdp_orders()} if accountant == "rdp" else {}


def check_dp(dp: Mapping[str, Any], n: int, model: str) -> None:
    """eps > 0, and delta below 1/n: releasing one random training sequence of n in the clear is (0, 1/n)-DP."""
    if n < 1:
        raise InputError(f"model '{model}': {KEY} needs training sequences, and this model has none")
    if dp["epsilon"] <= 0:
        raise InputError(f"{KEY}.epsilon must be > 0, got {dp['epsilon']}")
    if dp["delta"] >= 1 / n:
        raise InputError(
            f"{KEY}.delta {dp['delta']:g} is not below 1/n = {1 / n:.3g} for model '{model}' trained on {n} "
            f"sequences: set it below {1 / n:.3g} (1e-5 or 1/(10 n) is usual)"
        )


def read_dp_record(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The ``dp.json`` of a trained model's folder; None when it was trained without DP."""
    path = Path(folder) / RECORD
    return json.loads(path.read_text()) if path.is_file() else None


def sequence_losses(logits, labels, *, kind: str):
    """Each sequence's mean cross-entropy over its labelled tokens (-100: none); causal logits predict t at t - 1."""
    import torch

    logits = logits.float()
    if kind == "causal":
        logits, labels = logits[:, :-1], labels[:, 1:]
    token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="none")
    counted = (labels != -100).sum(dim=1).clamp(min=1)
    return token.sum(dim=1) / counted


def _logits(model, ids, attention):
    """A transformers model's logits, with position ids given one row per sequence: built by the model they have
    one row for the whole batch, and Opacus' hooks would then sum the position embedding's gradient over it."""
    import inspect

    import torch

    inputs = {"input_ids": ids, "attention_mask": attention}
    if "position_ids" in inspect.signature(model.forward).parameters:
        inputs["position_ids"] = torch.arange(ids.shape[1], device=ids.device).expand(ids.shape[0], -1)
    return model(**inputs).logits


def _layer_of(model, parameter_name: str) -> str:
    module_name = parameter_name.rpartition(".")[0]
    module = model.get_submodule(module_name) if module_name else model
    return f"{module_name or '(model)'} ({type(module).__name__})"


def check_per_sample_gradients(model, ids, *, attention, labels, kind: str, name: str) -> None:
    """Opacus' per-layer gradients of a few sequences against each one's own gradient; stops naming the first layer
    that differs (or gets none): Opacus would clip and noise a wrong gradient there without a word.

    The model must already carry Opacus' hooks (which record only in training mode); dropout is set to 0 meanwhile
    and the random state restored, so that the check draws nothing.
    """
    import torch

    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    dropouts = [(m, m.p) for m in model.modules() if isinstance(m, torch.nn.modules.dropout._DropoutNd)]
    for m, _ in dropouts:
        m.p = 0.0
    try:
        with torch.random.fork_rng(devices=[]):
            _compare_per_sample_gradients(model, params, ids, attention, labels, kind=kind, name=name)
    finally:
        for m, p in dropouts:
            m.p = p
        model.zero_grad(set_to_none=True)
        for _, p in params:
            p.grad_sample = None


def _compare_per_sample_gradients(model, params, ids, attention, labels, *, kind: str, name: str) -> None:
    import torch

    loss = sequence_losses(_logits(model, ids, attention), labels, kind=kind).mean()
    model.zero_grad(set_to_none=True)
    loss.backward()
    together = {n: getattr(p, "grad_sample", None) for n, p in params}
    for row in range(len(ids)):
        for _, p in params:
            p.grad_sample = None
        logits = _logits(model, ids[row : row + 1], attention[row : row + 1])
        own = torch.autograd.grad(
            sequence_losses(logits, labels[row : row + 1], kind=kind).mean(),
            [p for _, p in params],
            allow_unused=True,
        )
        for (n, p), g in zip(params, own, strict=True):
            per_sample = together[n]
            g = torch.zeros_like(p) if g is None else g
            if (
                per_sample is None
                or per_sample.shape[0] != len(ids)
                or not torch.allclose(per_sample[row], g, rtol=1e-3, atol=1e-6)
            ):
                raise InputError(
                    f"model '{name}': Opacus cannot compute per-sequence gradients of layer {_layer_of(model, n)} "
                    f"(its input is not one row per sequence, or it has no per-sample rule); train this model "
                    f"without {KEY}"
                )


def _whole_model_gradients(model, ids, labels, *, kind: str):
    """Each sequence's gradient of its own loss, and the losses: the model run on one sequence at a time under
    torch.func.vmap."""
    from torch.func import functional_call, grad_and_value, vmap

    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    buffers = dict(model.named_buffers())

    def one(p, x, y):
        out = functional_call(model, (p, buffers), args=(), kwargs={"input_ids": x[None]})
        return sequence_losses(out.logits, y[None], kind=kind)[0]

    return vmap(grad_and_value(one), in_dims=(None, 0, 0), randomness="different")(params, ids, labels)


def train_dp(
    model,
    *,
    name: str,
    kind: str,
    ids,
    attention,
    make_batch,
    params: Mapping[str, Any],
    seed: int,
    device: str,
    force_noise_multiplier: float | None = None,
    per_sample_gradients: str | None = None,
) -> tuple[list[float], dict[str, Any]]:
    """DP-SGD over all rows of ``ids`` as one Poisson-sampled data set; returns each epoch's mean loss and the
    record written to ``dp.json``.

    ``make_batch(rows, generator) -> (inputs, labels)`` builds a batch's inputs and labels (the masking of a masked
    model). ``force_noise_multiplier`` replaces the calibrated sigma while the record keeps the requested eps: a
    broken DP-SGD, for the test that the audit catches it. ``per_sample_gradients``: "hooks" (Opacus' per-layer
    hooks) or "whole" (the whole model under vmap); by default "whole" for a native family, else "hooks".
    """
    import torch
    from opacus.validators import ModuleValidator

    dp = params["dp"]
    n = len(ids)
    check_dp(dp, n, name)
    native = bool(getattr(model, "gfm_audit_architecture", None))
    whole = (per_sample_gradients or ("whole" if native else "hooks")) == "whole"
    for layer, module in model.named_modules():  # Opacus' own check, run layer by layer to name the layer
        rule = ModuleValidator.VALIDATORS.get(type(module))
        problems = rule(module) if rule and any(p.requires_grad for p in module.parameters(recurse=False)) else []
        if problems:
            raise InputError(
                f"model '{name}': Opacus cannot train layer {layer} ({type(module).__name__}) with {KEY}: "
                f"{first_line(problems[0])}"
            )
    probe = torch.arange(min(2, n))
    x, labels = make_batch(probe, torch.Generator().manual_seed(seed + 2))
    x, probe_attention, labels = x.to(device), attention[probe].to(device), labels.to(device)
    frozen = _freeze_unreached(model, x, probe_attention, labels, kind=kind, native=native)
    try:
        with _quiet_opacus():
            return _train_dp(
                model,
                name=name,
                kind=kind,
                whole=whole,
                attention=attention,
                make_batch=make_batch,
                params=params,
                seed=seed,
                device=device,
                force_noise_multiplier=force_noise_multiplier,
                n=n,
                probe=(x, probe_attention, labels),
            )
    finally:
        for p in frozen:
            p.requires_grad_(True)


@contextmanager
def _quiet_opacus():
    """Opacus' hooks warn at every step that the first layer's input (token ids) needs no gradient, and that
    secure_mode is off (the noise is seeded on purpose, as every draw here): harmless, and they would flood the log."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        yield


def _freeze_unreached(model, ids, attention, labels, *, kind: str, native: bool) -> list:
    """Parameters the loss does not reach (a contact head beside a masked LM's head) get no per-sample gradient,
    which Opacus refuses; they are frozen for the training (they would not move anyway) and returned."""
    import torch

    with torch.random.fork_rng(devices=[]):
        logits = model(input_ids=ids).logits if native else _logits(model, ids, attention)
        loss = sequence_losses(logits, labels, kind=kind).mean()
        trainable = [p for p in model.parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss, trainable, allow_unused=True)
    frozen = [p for p, g in zip(trainable, grads, strict=True) if g is None]
    for p in frozen:
        p.requires_grad_(False)
    return frozen


def _train_dp(
    model, *, name, kind, whole, attention, make_batch, params, seed, device, force_noise_multiplier, n, probe
):
    import torch
    from opacus import PrivacyEngine

    dp = params["dp"]
    batch_size, epochs = params["batch_size"], params["epochs"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=params["learning_rate"], weight_decay=params["weight_decay"])
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.arange(n)),
        batch_size=batch_size,
        generator=torch.Generator().manual_seed(seed),  # Opacus' Poisson sampler draws from it
    )
    engine = PrivacyEngine(accountant=dp["accountant"])  # secure_mode off: the noise is seeded, as every draw here
    try:
        hooks, optimizer, loader = engine.make_private_with_epsilon(
            module=model,
            optimizer=optimizer,
            data_loader=loader,
            target_epsilon=float(dp["epsilon"]),
            target_delta=float(dp["delta"]),
            epochs=epochs,
            max_grad_norm=float(dp["max_grad_norm"]),
            poisson_sampling=True,
            noise_generator=torch.Generator(device=device).manual_seed(seed + 1),
            grad_sample_mode="no_op" if whole else "hooks",
            wrap_model=False,
            **_accounting(dp["accountant"]),
        )
    except ValueError as exc:
        if "budget is too low" not in str(exc):
            raise
        # No noise level the search tries (sigma up to Opacus' cap) brings the accountant's epsilon this low.
        raise InputError(
            f"model '{name}': {KEY}.epsilon {dp['epsilon']:g} at delta {dp['delta']:g} is below what the "
            f"{dp['accountant']} accountant can certify for {epochs} epochs at sampling rate {1 / len(loader):.3g}; "
            "raise epsilon, train fewer epochs or use accountant prv"
        ) from None
    except NotImplementedError as exc:  # Opacus' hooks refuse a layer: "<reason>(<layer name>:<Type>(...)"
        text = str(exc)
        found = re.search(r"\(([\w.]+):(\w+)\(", text)
        reason = text[: found.start()].rsplit('("', 1)[-1].strip() if found else first_line(exc)
        reason = reason.replace("buffersthat", "buffers that")  # Opacus' message lacks the space
        what = f"layer {found[1]} ({found[2]}): {reason}" if found else reason
        raise InputError(
            f"model '{name}': Opacus cannot compute per-sequence gradients of {what}; train this model without {KEY}"
        ) from None
    sigma = optimizer.noise_multiplier
    if force_noise_multiplier is not None:
        optimizer.noise_multiplier = force_noise_multiplier
    sample_rate = 1 / len(loader)
    mask_generator = torch.Generator().manual_seed(seed)
    if not whole:
        check_per_sample_gradients(model, probe[0], attention=probe[1], labels=probe[2], kind=kind, name=name)
    losses, steps = [], 0
    for epoch in range(epochs):
        total, counted = 0.0, 0
        for (rows,) in loader:
            optimizer.zero_grad(set_to_none=True)
            if len(rows) == 0:  # Poisson sampling can draw no sequence: the step still adds noise
                for p in model.parameters():
                    if p.requires_grad:
                        p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)
            else:
                x, labels = make_batch(rows, mask_generator)
                x, labels = x.to(device), labels.to(device)
                if whole:
                    grads, per_sequence = _whole_model_gradients(model, x, labels, kind=kind)
                    for pname, g in grads.items():
                        model.get_parameter(pname).grad_sample = g
                else:
                    a = attention[rows].to(device)
                    per_sequence = sequence_losses(_logits(model, x, a), labels, kind=kind)
                    per_sequence.mean().backward()
                total += float(per_sequence.detach().sum())
                counted += len(rows)
            optimizer.step()
            steps += 1
        losses.append(total / max(counted, 1))
        log.info("model %s DP epoch %d/%d: training loss %.4f", name, epoch + 1, epochs, losses[-1])
    hooks.cleanup()
    if force_noise_multiplier is None:
        achieved = engine.accountant.get_epsilon(float(dp["delta"]), **_accounting(dp["accountant"]))
    else:  # what the accountant would say had sigma been used: the claim of a broken implementation
        from opacus.accountants import create_accountant

        claimed = create_accountant(dp["accountant"])
        claimed.history = [(sigma, sample_rate, steps)]
        achieved = claimed.get_epsilon(float(dp["delta"]), **_accounting(dp["accountant"]))
    record = {
        "epsilon": float(achieved),
        "delta": float(dp["delta"]),
        "requested_epsilon": float(dp["epsilon"]),
        "accountant": dp["accountant"],
        "noise_multiplier": float(sigma),
        "noise_multiplier_used": float(optimizer.noise_multiplier),
        "max_grad_norm": float(dp["max_grad_norm"]),
        "sample_rate": sample_rate,
        "steps": steps,
        "epochs": epochs,
        "n_sequences": n,
        "per_sample_gradients": "whole model (torch.func.vmap)" if whole else "opacus hooks",
        "opacus": _opacus_version(),
    }
    if not math.isfinite(record["epsilon"]):
        record["epsilon"] = None
    return losses, record


def _opacus_version() -> str:
    import opacus

    return opacus.__version__


def write_dp_record(folder: str | os.PathLike, record: Mapping[str, Any]) -> None:
    (Path(folder) / RECORD).write_text(json.dumps(dict(record), indent=2, sort_keys=True) + "\n")
