r"""ADFAR (``robustness.ga.adversarial_training.scheme: adfar``): adversarial detection and frequency-aware
randomisation.

Bao, Wang & Zhang, "Defending Pre-trained Language Models from Adversarial Word Substitutions Without Performance
Sacrifice", Findings of ACL 2021. A multi-task model: the classifier's own head (main task) and an auxiliary
detection head on the same features, trained together,

.. math:: L = L_{main}(X \cup R(X_{adv}), y) + L_{det}(X \cup X_{adv}, d), \qquad d = [x \in X_{adv}],

where :math:`X_{adv}` are adversarial examples of training sequences (made by an attack on the current model; here
the GA, as the ``iterative`` scheme makes them) and :math:`R` is frequency-aware randomisation. At inference

.. math:: \hat y(x) = \begin{cases} f(R(x)) & \text{if } P_{det}(adv \mid x) > \tau, \\ f(x) & \text{else,}\end{cases}

so clean inputs the detector passes keep the undefended prediction ("without performance sacrifice").

Frequency-aware randomisation for DNA. The paper swaps low-frequency words for higher-frequency synonyms, because
word substitution attacks favour rare words. DNA has four bases and no synonyms, so frequency is that of k-mers
(``adfar.kmer``) in the training split, for every classifier kind alike (the CNN has no tokens; for a GFM the
k-mers are read on the bases, not on its tokenizer's tokens, so one definition serves every kind). The rarity of a
position ``i`` is the mean log frequency of the ``k`` k-mers that cover it; positions whose rarity is below the
``rare_quantile`` quantile of the training split's positions are *rare*. :math:`R(x)` visits each rare position
with probability ``rate`` and puts there the base (of the three others) that makes its covering k-mers most
frequent, if that beats the current base. Its randomness is seeded by ``seed`` and the sequence itself, so the
defended classifier is a deterministic function that a black-box attack (the GA) can query like any other.

Detection head: a linear layer on the input of the classifier's own head (the CNN's flattened feature map, a
native GFM's mean-pooled hidden states, a Hugging Face head's input, mean-pooled over tokens when it is per token),
trained with class-balanced cross-entropy. With the encoder frozen (``gfm_head``) both heads train on frozen
features; the CNN trains end to end, as the paper's multi-task BERT does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError
from .attack import attack_sequences, sample_rows
from .classifiers import Classifier, CNNClassifier
from .constraints import Constraints
from .data import LabelledSequences, encode
from .search import GAParams

log = logging.getLogger(__name__)

ADFAR_FILE = "adfar.json"


class KmerFrequencies:
    """Training-split k-mer frequencies (add-one smoothed) and the rarity threshold of a position."""

    def __init__(self, codes: np.ndarray, *, k: int, rare_quantile: float):
        self.k = k
        counts = np.bincount(self.kmer_ids(codes).ravel(), minlength=4**k).astype(float) + 1.0
        self.log_freq = np.log(counts / counts.sum())
        self.threshold = float(np.quantile(self.rarity(codes), rare_quantile))

    def kmer_ids(self, codes: np.ndarray) -> np.ndarray:
        """(N, L - k + 1) index of the k-mer starting at each position (base-4 number)."""
        codes = codes.astype(np.int64)
        windows = np.lib.stride_tricks.sliding_window_view(codes, self.k, axis=1)
        return windows @ (4 ** np.arange(self.k - 1, -1, -1))

    def rarity(self, codes: np.ndarray) -> np.ndarray:
        """(N, L) mean log frequency of the k-mers covering each position (fewer at the ends)."""
        score = self.log_freq[self.kmer_ids(codes)]
        n, length = codes.shape
        total, count = np.zeros((n, length)), np.zeros(length)
        for offset in range(self.k):
            total[:, offset : offset + score.shape[1]] += score
            count[offset : offset + score.shape[1]] += 1
        return total / count

    def randomise(self, codes: np.ndarray, *, rate: float, seed: int) -> np.ndarray:
        """R(x): each rare position, with probability ``rate``, gets the base whose covering k-mers are most
        frequent (kept when the current base already is); seeded by ``seed`` and each sequence's bases."""
        out = codes.copy()
        rare = self.rarity(codes) < self.threshold
        for row in range(len(codes)):
            digest = hashlib.blake2b(codes[row].tobytes(), digest_size=8).digest()
            rng = np.random.default_rng([seed, int.from_bytes(digest, "little")])
            visit = rare[row] & (rng.random(codes.shape[1]) < rate)
            for pos in np.flatnonzero(visit):
                options = np.repeat(out[row][None, :], 4, axis=0)
                options[:, pos] = np.arange(4)
                lo, hi = max(0, pos - self.k + 1), min(codes.shape[1], pos + self.k)
                scores = self.log_freq[self.kmer_ids(options[:, lo:hi])].sum(axis=1)
                out[row, pos] = int(np.argmax(scores))
        return out

    def state(self) -> dict[str, Any]:
        return {"k": self.k, "threshold": self.threshold, "log_freq": self.log_freq.tolist()}


def head_module(clf: Classifier):
    """The classifier's own head, whose input the detection head shares."""
    import torch

    if isinstance(clf, CNNClassifier):
        return clf.model[-1]
    model = clf.model
    if isinstance(model, torch.nn.ModuleDict) and "head" in model:
        return model["head"]
    for name in ("classifier", "score"):
        if isinstance(getattr(model, name, None), torch.nn.Module):
            return getattr(model, name)
    raise InputError(
        f"classifier '{clf.name}': robustness.ga.adversarial_training.scheme adfar puts a detection head beside "
        f"the classifier's head, and {type(clf).__name__} has no head module (classifier, score or head) to share "
        "features with; use scheme iterative, madry or freelb for it"
    )


class AdfarClassifier(Classifier):
    """The defended classifier: the wrapped one's prediction, or its prediction on R(x) where the detector flags x.

    Before its first training round the detector flags nothing (the undefended classifier, iteration 0).
    """

    def __init__(self, inner: Classifier, train: LabelledSequences, *, settings: Mapping[str, Any]):
        import torch

        self.inner, self.block = inner, settings["adfar"]
        self.name, self.num_labels, self.batch_size = inner.name, inner.num_labels, inner.batch_size
        self.fixed_length, self.device, self.model = inner.fixed_length, inner.device, inner.model
        self.seed = settings["seed"]
        self.frequencies = KmerFrequencies(
            encode(train.sequences), k=self.block["kmer"], rare_quantile=self.block["rare_quantile"]
        )
        self.head = head_module(inner)
        self.features_of = None
        torch.manual_seed(self.seed)
        width = self._features(encode(train.sequences[:1])).shape[-1]
        self.detector = torch.nn.Linear(width, 2).to(self.device)
        self.trained = False
        self.adversarial = np.zeros((0, len(train.sequences[0])), dtype=np.uint8)
        self.adversarial_labels = np.zeros(0, dtype=np.int64)

    def _features(self, codes: np.ndarray):
        """The input of the wrapped classifier's head for ``codes`` (one forward), and the main logits."""
        features, logits = self.forward(codes)
        return features

    def forward(self, codes: np.ndarray):
        captured = []
        handle = self.head.register_forward_pre_hook(lambda module, args: captured.append(args[0]))
        try:
            logits = self.inner.logits(codes)
        finally:
            handle.remove()
        features = captured[-1]
        if features.dim() == 3:  # a per-token head (e.g. GPT-2's score): mean over tokens
            features = features.mean(dim=1)
        return features.float(), logits

    def logits(self, codes: np.ndarray):
        return self.inner.logits(codes)

    def trainable(self) -> list:
        return self.inner.trainable() + list(self.detector.parameters())

    def fit(self, codes: np.ndarray, labels: np.ndarray, *, training: dict[str, Any], seed: int) -> list[float]:
        return self.inner.fit(codes, labels, training=training, seed=seed)

    def detect(self, codes: np.ndarray) -> np.ndarray:
        """P(adversarial | x) of each sequence (0 before the detector is trained)."""
        import torch

        if not self.trained or not len(codes):
            return np.zeros(len(codes))
        self.model.eval()
        out = []
        with torch.inference_mode():
            for start in range(0, len(codes), self.batch_size):
                features, _ = self.forward(codes[start : start + self.batch_size])
                out.append(torch.softmax(self.detector(features), dim=-1)[:, 1].cpu().numpy())
        return np.concatenate(out).astype(np.float64)

    def randomise(self, codes: np.ndarray) -> np.ndarray:
        return self.frequencies.randomise(codes, rate=self.block["rate"], seed=self.seed)

    def predict_proba(self, codes: np.ndarray) -> np.ndarray:
        probs = self.inner.predict_proba(codes)
        flagged = self.detect(codes) > self.block["threshold"]
        if flagged.any():
            probs[flagged] = self.inner.predict_proba(self.randomise(codes[flagged]))
        return probs

    def train_round(
        self,
        train: LabelledSequences,
        *,
        constraints: Constraints,
        params: GAParams,
        settings: Mapping[str, Any],
        training: Mapping[str, Any],
        seed: int,
    ) -> tuple[int, int]:
        """One ADFAR round: GA adversarial examples of a seeded training sample (against the defended model as it
        stands), then ``epochs`` epochs of the joint loss. Returns (adversarial sequences made, GA queries)."""
        pick = sample_rows(len(train), settings["train_sample"], seed)
        run = attack_sequences(
            self, train.subset(pick), constraints=constraints, params=params, seed=seed, baseline=False, prune=False
        )
        won = run.ga.success
        self.adversarial = np.concatenate([self.adversarial, run.ga.adversarial[won]])
        self.adversarial_labels = np.concatenate([self.adversarial_labels, run.attacked.labels[won]])
        log.info("ADFAR: %d adversarial training sequences from %d attacked", won.sum(), len(run.attacked))
        if len(self.adversarial):
            self.fit_joint(encode(train.sequences), train.labels, settings=settings, training=training, seed=seed)
        return int(won.sum()), int(run.ga.queries.sum())

    def fit_joint(
        self,
        codes: np.ndarray,
        labels: np.ndarray,
        *,
        settings: Mapping[str, Any],
        training: Mapping[str, Any],
        seed: int,
    ) -> list[float]:
        """The joint loss L_main(X + R(X_adv)) + L_det(X vs X_adv) over ``settings['epochs']`` epochs."""
        from ...determinism import single_cpu_thread

        with single_cpu_thread():
            return self._fit_joint(codes, labels, settings, training, seed)

    def _fit_joint(self, codes, labels, settings, training, seed) -> list[float]:
        import torch

        torch.manual_seed(seed)
        adv, adv_labels = self.adversarial, self.adversarial_labels
        main_x = np.concatenate([codes, self.randomise(adv)])
        main_y = np.concatenate([labels, adv_labels])
        det_x = np.concatenate([codes, adv])
        det_y = np.concatenate([np.zeros(len(codes), dtype=np.int64), np.ones(len(adv), dtype=np.int64)])
        # Class-balanced detection loss: adversarial examples are a small share of the detection set.
        weight = torch.as_tensor(
            [len(det_y) / (2 * (det_y == 0).sum()), len(det_y) / (2 * (det_y == 1).sum())],
            dtype=torch.float32,
            device=self.device,
        )
        optimizer = torch.optim.AdamW(
            self.trainable(), lr=settings["learning_rate"], weight_decay=training["weight_decay"]
        )
        generator = torch.Generator().manual_seed(seed)
        batch = training["batch_size"]
        losses = []
        for _ in range(settings["epochs"]):
            main_order = torch.randperm(len(main_x), generator=generator).numpy()
            det_order = torch.randperm(len(det_x), generator=generator).numpy()
            steps = max(-(-len(main_x) // batch), -(-len(det_x) // batch))
            total = 0.0
            self.model.train()
            for step in range(steps):
                m = main_order[(step * batch) % len(main_x) :][:batch]
                d = det_order[(step * batch) % len(det_x) :][:batch]
                main_logits = self.inner.logits(main_x[m])
                main_loss = torch.nn.functional.cross_entropy(
                    main_logits.float(), torch.as_tensor(main_y[m], device=main_logits.device)
                )
                features, _ = self.forward(det_x[d])
                det_loss = torch.nn.functional.cross_entropy(
                    self.detector(features), torch.as_tensor(det_y[d], device=features.device), weight=weight
                )
                loss = main_loss + det_loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach())
            self.model.eval()
            losses.append(total / steps)
            log.info("ADFAR: epoch %d joint loss %.4f", len(losses), losses[-1])
        self.trained = True
        return losses

    def save(self, folder: str | os.PathLike) -> None:
        """The wrapped classifier as it saves itself, plus the detection head and the k-mer table."""
        from safetensors.torch import save_file

        self.inner.save(folder)
        state = {k: v.detach().contiguous().cpu() for k, v in self.detector.state_dict().items()}
        save_file(state, Path(folder) / "adfar_detector.safetensors")
        meta = {"settings": dict(self.block), "seed": self.seed, "frequencies": self.frequencies.state()}
        (Path(folder) / ADFAR_FILE).write_text(json.dumps(meta) + "\n")
