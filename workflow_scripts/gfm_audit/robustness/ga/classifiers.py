"""DNA sequence classifiers the GA attacks, behind one interface.

- ``cnn``: a small 1-D CNN on one-hot DNA, trained here (the demo);
- ``huggingface``: a user's ``AutoModelForSequenceClassification`` checkpoint folder;
- ``gfm_head``: a GFM from the ``models`` block with a new classification head,
  encoder frozen and head trained (the set-up of the earlier GA study this
  attack follows). A transformers-class GFM gets its
  ``AutoModelForSequenceClassification`` head, is saved as a Hugging Face
  checkpoint and reloaded through the ``huggingface`` path; a natively
  implemented family (HyenaDNA, DNABERT-2, ...) gets a linear head on the mean
  of its final hidden states (``output_hidden_states=True``) and is saved with
  its own config and tokenizer files.

Every path loads weights through the same checks as scoring: a weight missing
from the file or one the model does not have stops in one line (only a new
head's weights may be missing, and only an LM head may be left unused).

Every classifier takes (N, L) uint8 codes (A=0, C=1, G=2, T=3) and returns
(N, C) class probabilities, in micro-batches of ``batch_size`` so that one GA
generation is one call whatever its size.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...determinism import single_cpu_thread
from ...errors import InputError, first_line, listed
from ...gfm import loader, registry
from ...gfm.weights import check_plain_state_dict, check_weight_names, pickled_weight_files, weight_format
from ...models import ModelSpec, architecture_of, read_checkpoint_config
from ...outputs import atomic_directory, write_loss_log
from .data import decode

log = logging.getLogger(__name__)

CLASSIFIER_FILE = "gfm_audit_classifier.json"
# The files of a native GFM folder a saved gfm_head classifier keeps: its config and tokenizer, not its weights.
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".py")


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


CNN_ARCHITECTURES = ("basic", "deep")
# The deep CNN's dense hidden layer: a second non-linearity over the whole pooled map.
_DEEP_HIDDEN = 256


def _build_cnn(length: int, num_labels: int, channels: int, kernel: int, architecture: str = "basic"):
    """A fixed input length by design. ``basic``: two conv + max-pool (4) blocks and a dense layer over the flattened
    map. ``deep``: three conv blocks (max-pool 2, 2, 4) and a hidden dense layer of 256: more capacity, which
    adversarial training needs more than clean training does (Madry et al., ICLR 2018)."""
    from torch import nn

    if architecture not in CNN_ARCHITECTURES:
        raise InputError(f"CNN architecture '{architecture}' is not one of {', '.join(CNN_ARCHITECTURES)}")
    pools = (4, 4) if architecture == "basic" else (2, 2, 4)
    pooled = length
    for pool in pools:
        pooled //= pool
    if pooled < 1:
        raise InputError(f"the CNN needs sequences of at least 16 bp, got {length}")
    layers: list = []
    for i, pool in enumerate(pools):
        layers += [nn.Conv1d(4 if i == 0 else channels, channels, kernel, padding=kernel // 2), nn.ReLU()]
        layers.append(nn.MaxPool1d(pool))
    layers += [nn.Flatten(), nn.Dropout(0.2)]
    if architecture == "basic":
        layers.append(nn.Linear(channels * pooled, num_labels))
    else:
        layers += [nn.Linear(channels * pooled, _DEEP_HIDDEN), nn.ReLU(), nn.Linear(_DEEP_HIDDEN, num_labels)]
    return nn.Sequential(*layers)


class Classifier:
    """Shared predict / fit loop; subclasses turn codes into model inputs and logits."""

    name: str
    num_labels: int
    fixed_length: int | None = None
    batch_size: int = 256

    def logits(self, codes: np.ndarray):  # pragma: no cover - abstract
        raise NotImplementedError

    def trainable(self) -> list:
        return [p for p in self.model.parameters() if p.requires_grad]

    def predict_proba(self, codes: np.ndarray) -> np.ndarray:
        import torch

        self.model.eval()
        out = []
        with torch.inference_mode():
            for start in range(0, len(codes), self.batch_size):
                logits = self.logits(codes[start : start + self.batch_size])
                out.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
        if not out:
            return np.zeros((0, self.num_labels))
        return np.concatenate(out).astype(np.float64)

    def fit(self, codes: np.ndarray, labels: np.ndarray, *, training: dict[str, Any], seed: int) -> list[float]:
        """Cross-entropy with AdamW over the trainable parameters, seeded shuffles; returns per-epoch mean loss."""

        with single_cpu_thread():
            return self._fit(codes, labels, training, seed)

    def _fit(self, codes: np.ndarray, labels: np.ndarray, training: dict[str, Any], seed: int) -> list[float]:
        import torch

        torch.manual_seed(seed)
        params = self.trainable()
        optimizer = torch.optim.AdamW(params, lr=training["learning_rate"], weight_decay=training["weight_decay"])
        generator = torch.Generator().manual_seed(seed)
        target = torch.as_tensor(labels, dtype=torch.long)
        losses = []
        for _ in range(training["epochs"]):
            self.model.train()
            order = torch.randperm(len(codes), generator=generator).numpy()
            total, batches = 0.0, 0
            for start in range(0, len(order), training["batch_size"]):
                rows = order[start : start + training["batch_size"]]
                logits = self.logits(codes[rows])
                loss = torch.nn.functional.cross_entropy(logits.float(), target[rows].to(logits.device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach())
                batches += 1
            losses.append(total / max(batches, 1))
            log.info("classifier %s: epoch %d loss %.4f", self.name, len(losses), losses[-1])
        self.model.eval()
        return losses


class CNNClassifier(Classifier):
    def __init__(
        self,
        name: str,
        length: int,
        *,
        num_labels: int = 2,
        channels: int = 64,
        kernel: int = 9,
        architecture: str = "basic",
        seed: int = 0,
        batch_size: int = 256,
    ):
        import torch

        torch.manual_seed(seed)
        self.name, self.num_labels, self.fixed_length, self.batch_size = name, num_labels, length, batch_size
        self.hyper = {"length": length, "num_labels": num_labels, "channels": channels, "kernel": kernel}
        if architecture != "basic":  # a basic CNN's saved JSON stays as it was before the option existed
            self.hyper["architecture"] = architecture
        self.device = _device()
        self.model = _build_cnn(length, num_labels, channels, kernel, architecture).to(self.device).eval()

    def logits(self, codes: np.ndarray):
        import torch

        x = torch.as_tensor(np.ascontiguousarray(codes), dtype=torch.long, device=self.device)
        one_hot = torch.nn.functional.one_hot(x, 4).to(torch.float32).transpose(1, 2)
        return self.logits_from_one_hot(one_hot)

    def logits_from_one_hot(self, one_hot):
        """Logits of a (N, 4, L) float input: one-hot bases, or a relaxation of them (the PGD attack's)."""
        return self.model(one_hot)

    def save(self, folder: str | os.PathLike) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        save_file({k: v.contiguous().cpu() for k, v in self.model.state_dict().items()}, folder / "model.safetensors")
        (folder / CLASSIFIER_FILE).write_text(json.dumps({"kind": "cnn", **self.hyper}, indent=2) + "\n")

    @classmethod
    def load(cls, name: str, folder: str | os.PathLike, batch_size: int = 256) -> CNNClassifier:
        from safetensors.torch import load_file

        meta = json.loads((Path(folder) / CLASSIFIER_FILE).read_text())
        meta.pop("kind")
        clf = cls(name, batch_size=batch_size, **meta)
        clf.model.load_state_dict(load_file(Path(folder) / "model.safetensors", device=clf.device))
        clf.model.eval()
        return clf


class HFClassifier(Classifier):
    """``AutoModelForSequenceClassification`` with its own tokenizer; ``train: head`` freezes the encoder."""

    def __init__(self, name: str, model, tokenizer, *, train: str = "head", batch_size: int = 64):
        self.name, self.model, self.tokenizer, self.batch_size = name, model, tokenizer, batch_size
        self.num_labels = int(model.config.num_labels)
        self.device = _device()
        self.model.to(self.device).eval()
        if tokenizer.pad_token_id is None:
            raise InputError(f"classifier '{name}': the tokenizer has no padding token; batches cannot be padded")
        if getattr(model.config, "pad_token_id", None) is None:
            # Causal classifiers (GPT-2 style) find each sequence's last token through the pad id.
            model.config.pad_token_id = tokenizer.pad_token_id
        if train == "head":
            for p in model.base_model.parameters():
                p.requires_grad = False

    def logits(self, codes: np.ndarray):
        batch = self.tokenizer(decode(codes), padding=True, return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
        return self.model(**batch).logits

    def save(self, folder: str | os.PathLike) -> None:
        self.model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)
        (Path(folder) / CLASSIFIER_FILE).write_text(json.dumps({"kind": "huggingface"}, indent=2) + "\n")

    @classmethod
    def load(
        cls,
        name: str,
        folder: str | os.PathLike,
        *,
        trust_remote_code: bool = False,
        train: str = "head",
        num_labels: int | None = None,
        batch_size: int = 64,
    ) -> HFClassifier:
        from transformers import AutoModelForSequenceClassification

        spec = ModelSpec(name=name, path=str(folder), kind="classifier", trust_remote_code=trust_remote_code)
        config = read_checkpoint_config(spec)
        architecture_of(spec, config)  # auto_map without trust_remote_code, unknown model_type: one line each
        loader.quiet_transformers()
        extra = {"num_labels": num_labels} if num_labels else {}
        tokenizer = loader.transformers_tokenizer(spec, config)
        _refuse_pickled_code(folder, f"classifier '{name}' (robustness.ga.classifiers.{name})")
        try:
            model, info = AutoModelForSequenceClassification.from_pretrained(
                folder, trust_remote_code=trust_remote_code, local_files_only=True, output_loading_info=True, **extra
            )
        except (OSError, ValueError, RuntimeError) as exc:
            if loader.runs_remote_code(spec, config):
                raise loader.remote_code_error(spec, exc, "loading the classifier") from None
            raise InputError(
                f"classifier '{name}': cannot load {folder} as a sequence classifier: {first_line(exc)}"
            ) from None
        except Exception as exc:
            if loader.runs_remote_code(spec, config):
                raise loader.remote_code_error(spec, exc, "loading the classifier") from None
            raise
        _check_classifier_weights(model, info, name=name, folder=folder, new_head=bool(num_labels))
        return cls(name, model, tokenizer, train=train, batch_size=batch_size)


def _refuse_pickled_code(folder: str | os.PathLike, owner: str) -> None:
    """A pytorch_model.bin that pickles Python objects stops in one line, before transformers' torch.load: its
    refusal spans many lines and advises weights_only=False, i.e. running the file's code."""
    if weight_format(folder) == "pickle":
        for file in pickled_weight_files(folder, owner):
            check_plain_state_dict(file, owner)


def _check_classifier_weights(model, info: dict, *, name: str, folder, new_head: bool) -> None:
    """Every encoder weight from the file; a new head (gfm_head) may be missing and the LM head it replaces unused.

    Classifiers have no allow_missing_weights: a head left random would be attacked as if it had been trained.
    """
    prefix = getattr(model, "base_model_prefix", "") + "."
    missing, unexpected = set(info.get("missing_keys", ())), set(info.get("unexpected_keys", ()))
    if new_head:
        missing = {k for k in missing if k.startswith(prefix)}
        unexpected = {k for k in unexpected if k.startswith(prefix)}
    key = f"robustness.ga.classifiers.{name}"
    head = sorted(k for k in missing if not k.startswith(prefix))
    if head:
        # Checked before the unexpected weights: an LM checkpoint also has an LM head the classifier does not use.
        raise InputError(
            f"classifier '{name}' ({key}): {folder} has no trained classification head (its weights lack "
            f"{listed(head)}), which would be attacked with random values; give a checkpoint saved with its trained "
            f"sequence-classification head, or set {key}.kind: gfm_head (path: this folder) to train a new head on "
            "its frozen encoder"
        )
    check_weight_names(missing=(), unexpected=unexpected, name=name, folder=folder, allow_missing=False)
    if missing:
        raise InputError(
            f"classifier '{name}' ({key}): the weights in {folder} lack {len(missing)} encoder tensors "
            f"({listed(missing)}), which would be left randomly initialised; use the complete checkpoint"
        )


class NativeHeadClassifier(Classifier):
    """A natively implemented GFM (gfm_audit.gfm) with a linear head on the mean of its final hidden states."""

    def __init__(self, name: str, lm, tokenizer, *, architecture: str, num_labels: int, batch_size: int = 64):
        import torch

        self.name, self.lm, self.tokenizer, self.batch_size = name, lm, tokenizer, batch_size
        self.architecture, self.num_labels = architecture, num_labels
        self.device = _device()
        self.accepts_mask = loader.accepts_attention_mask(lm)
        # A probe of at least the model's shortest input (NT v3: one down-sampling block), else four bases.
        probe = "ACGT" * -(-getattr(lm, "min_input_tokens", 4) // 4)
        hidden = self._hidden(torch.as_tensor([self._ids(probe)]), None).shape[-1]
        self.model = torch.nn.ModuleDict({"lm": lm, "head": torch.nn.Linear(hidden, num_labels)})
        self.model.to(self.device).eval()

    def _ids(self, seq: str) -> list[int]:
        return self.tokenizer(seq)["input_ids"]

    def _hidden(self, ids, attention):
        inputs = {"input_ids": ids}
        if attention is not None and self.accepts_mask:
            inputs["attention_mask"] = attention
        return self.lm(**inputs, output_hidden_states=True).hidden_states[-1]

    def logits(self, codes: np.ndarray):
        import torch

        encoded = [self._ids(s) for s in decode(codes)]
        pooled = [None] * len(encoded)
        # A model that takes no attention mask would see padding: one forward per token count.
        groups = {}
        for i, ids in enumerate(encoded):
            groups.setdefault(len(ids) if not self.accepts_mask else 0, []).append(i)
        pad = self.tokenizer.pad_token_id or 0
        for rows in groups.values():
            width = max(len(encoded[i]) for i in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            attention = torch.zeros_like(ids)
            for b, i in enumerate(rows):
                ids[b, : len(encoded[i])] = torch.as_tensor(encoded[i])
                attention[b, : len(encoded[i])] = 1
            ids, attention = ids.to(self.device), attention.to(self.device)
            hidden = self._hidden(ids, attention if not bool(attention.all()) else None).float()
            weights = attention.unsqueeze(-1).to(hidden.dtype)
            means = (hidden * weights).sum(1) / weights.sum(1)
            for b, i in enumerate(rows):
                pooled[i] = means[b]
        return self.model["head"](torch.stack(pooled))

    def freeze_encoder(self, train: str) -> None:
        for p in self.model["lm"].parameters():
            p.requires_grad = train != "head"

    def save(self, folder: str | os.PathLike) -> None:
        import shutil

        from safetensors.torch import save_file

        folder = Path(folder)
        state = {k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()}
        # Tied weights share storage; safetensors stores each tensor once.
        save_file({k: v.clone() for k, v in state.items()}, folder / "model.safetensors")
        for file in Path(self.source).iterdir():
            if file.is_file() and not file.name.endswith(_WEIGHT_SUFFIXES) and "index.json" not in file.name:
                shutil.copy(file, folder / file.name)
        meta = {"kind": "gfm_head", "architecture": self.architecture, "num_labels": self.num_labels}
        (folder / CLASSIFIER_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def from_gfm(
        cls,
        name: str,
        folder: str | os.PathLike,
        *,
        architecture: str,
        num_labels: int,
        train: str = "head",
        batch_size: int = 64,
        saved: bool = False,
    ) -> NativeHeadClassifier:
        """The GFM in ``folder`` loaded strictly (a saved classifier: with its head) and a head on top."""
        from ...gfm.weights import load_weights, read_state_dict

        family = registry.family_module(architecture)
        spec = ModelSpec(name=name, path=str(folder), kind=family.KINDS[0], architecture=architecture)
        config = read_checkpoint_config(spec)
        lm = loader.native_model(spec, config, architecture, weights=not saved)
        clf = cls(
            name,
            lm,
            loader.native_tokenizer(spec, architecture),
            architecture=architecture,
            num_labels=num_labels,
            batch_size=batch_size,
        )
        clf.source = str(folder)
        if saved:
            tied = (
                {f"lm.{k}": f"lm.{v}" for k, v in family.TIED_WEIGHTS.items()} if loader.tie_weights_on(config) else {}
            )
            load_weights(
                clf.model, read_state_dict(folder, f"classifier '{name}'"), tied=tied, name=name, folder=folder
            )
            clf.model.to(clf.device)
        clf.freeze_encoder(train)
        clf.model.eval()
        return clf


def load_classifier(name: str, folder: str | os.PathLike, spec: dict[str, Any]) -> Classifier:
    """A trained classifier folder (ours: has ``gfm_audit_classifier.json``) or a user's HF checkpoint."""
    meta_file = Path(folder) / CLASSIFIER_FILE
    kind = json.loads(meta_file.read_text())["kind"] if meta_file.is_file() else "huggingface"
    batch = spec.get("batch_size", 256)
    if kind == "cnn":
        return CNNClassifier.load(name, folder, batch_size=batch)
    if kind == "gfm_head":
        meta = json.loads(meta_file.read_text())
        return NativeHeadClassifier.from_gfm(
            name,
            folder,
            architecture=meta["architecture"],
            num_labels=meta["num_labels"],
            train=spec.get("train", "head"),
            batch_size=batch,
            saved=True,
        )
    return HFClassifier.load(
        name,
        folder,
        trust_remote_code=spec.get("trust_remote_code", False),
        train=spec.get("train", "head"),
        batch_size=batch,
    )


def new_classifier(name: str, spec: dict[str, Any], *, base_folder: str | None, length: int, seed: int) -> Classifier:
    """An untrained classifier of the configured kind (``cnn`` or ``gfm_head``)."""
    kind = spec["kind"]
    if kind == "cnn":
        return CNNClassifier(
            name,
            length,
            num_labels=spec.get("num_labels", 2),
            channels=spec.get("channels", 64),
            kernel=spec.get("kernel", 9),
            architecture=spec.get("architecture", "basic"),
            seed=seed,
            batch_size=spec.get("batch_size", 256),
        )
    if kind == "gfm_head":
        import torch

        torch.manual_seed(seed)  # the new head's initial weights
        gfm = ModelSpec(name=name, path=str(base_folder), kind="classifier")
        architecture = registry.resolve("auto", read_checkpoint_config(gfm), name=name)
        if architecture != registry.TRANSFORMERS:
            return NativeHeadClassifier.from_gfm(
                name,
                base_folder,
                architecture=architecture,
                num_labels=spec.get("num_labels", 2),
                batch_size=spec.get("batch_size", 64),
            )
        return HFClassifier.load(
            name,
            base_folder,
            trust_remote_code=spec.get("trust_remote_code", False),
            train="head",
            num_labels=spec.get("num_labels", 2),
            batch_size=spec.get("batch_size", 64),
        )
    raise InputError(f"classifier '{name}': kind {kind} is not trained by the workflow (use cnn or gfm_head)")


def save_classifier(clf: Classifier, losses: Sequence[float], out_dir: str | os.PathLike) -> None:
    """Save the classifier and its loss log; a killed job leaves no classifier folder behind."""
    with atomic_directory(out_dir) as tmp:
        clf.save(tmp)
        write_loss_log(tmp, losses)


def accuracy(clf: Classifier, codes: np.ndarray, labels: np.ndarray) -> float:
    return float((clf.predict_proba(codes).argmax(axis=1) == labels).mean()) if len(codes) else float("nan")
