"""DNA sequence classifiers the GA attacks, behind one interface.

- ``cnn``: a small 1-D CNN on one-hot DNA, trained here (the demo);
- ``huggingface``: a user's ``AutoModelForSequenceClassification`` checkpoint folder;
- ``gfm_head``: a GFM from the ``models`` block with a new classification head,
  encoder frozen and head trained (the set-up of the earlier GA study this
  attack follows); it is saved as a Hugging Face checkpoint and reloaded
  through the ``huggingface`` path.

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
from ...errors import InputError
from ...models import ModelSpec, first_line, quiet_transformers, read_checkpoint_config
from ...outputs import atomic_directory, write_loss_log
from .data import decode

log = logging.getLogger(__name__)

CLASSIFIER_FILE = "gfm_audit_classifier.json"


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _build_cnn(length: int, num_labels: int, channels: int, kernel: int):
    """Two conv + max-pool blocks and a dense layer over the flattened map: a fixed input length by design."""
    from torch import nn

    pooled = length // 4 // 4
    if pooled < 1:
        raise InputError(f"the CNN needs sequences of at least 16 bp, got {length}")
    return nn.Sequential(
        nn.Conv1d(4, channels, kernel, padding=kernel // 2),
        nn.ReLU(),
        nn.MaxPool1d(4),
        nn.Conv1d(channels, channels, kernel, padding=kernel // 2),
        nn.ReLU(),
        nn.MaxPool1d(4),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(channels * pooled, num_labels),
    )


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
        seed: int = 0,
        batch_size: int = 256,
    ):
        import torch

        torch.manual_seed(seed)
        self.name, self.num_labels, self.fixed_length, self.batch_size = name, num_labels, length, batch_size
        self.hyper = {"length": length, "num_labels": num_labels, "channels": channels, "kernel": kernel}
        self.device = _device()
        self.model = _build_cnn(length, num_labels, channels, kernel).to(self.device).eval()

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
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        spec = ModelSpec(name=name, path=str(folder), kind="classifier", trust_remote_code=trust_remote_code)
        read_checkpoint_config(spec)
        quiet_transformers()
        extra = {"num_labels": num_labels} if num_labels else {}
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                folder, trust_remote_code=trust_remote_code, local_files_only=True
            )
            model = AutoModelForSequenceClassification.from_pretrained(
                folder, trust_remote_code=trust_remote_code, local_files_only=True, **extra
            )
        except (OSError, ValueError) as exc:
            raise InputError(
                f"classifier '{name}': cannot load {folder} as a sequence classifier: {first_line(exc)}"
            ) from None
        return cls(name, model, tokenizer, train=train, batch_size=batch_size)


def load_classifier(name: str, folder: str | os.PathLike, spec: dict[str, Any]) -> Classifier:
    """A trained classifier folder (ours: has ``gfm_audit_classifier.json``) or a user's HF checkpoint."""
    meta_file = Path(folder) / CLASSIFIER_FILE
    kind = json.loads(meta_file.read_text())["kind"] if meta_file.is_file() else "huggingface"
    batch = spec.get("batch_size", 256)
    if kind == "cnn":
        return CNNClassifier.load(name, folder, batch_size=batch)
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
            seed=seed,
            batch_size=spec.get("batch_size", 256),
        )
    if kind == "gfm_head":
        import torch

        torch.manual_seed(seed)  # the new head's initial weights
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
