"""The four gene-expression classifiers FIMBA is run against, all behind ``predict_proba``."""

from __future__ import annotations

import numpy as np

from ...determinism import single_cpu_thread

MODELS = ("random_forest", "gradient_boosting", "mlp", "cnn")


class CNN1D:
    """A 1-D CNN over the gene vector (genes in file order), trained with Adam; sklearn-style API."""

    def __init__(self, *, seed: int = 0, epochs: int = 60, channels: int = 16, lr: float = 1e-3):
        self.seed, self.epochs, self.channels, self.lr = seed, epochs, channels, lr

    def _net(self, n_features: int):
        from torch import nn

        return nn.Sequential(
            nn.Unflatten(1, (1, n_features)),
            nn.Conv1d(1, self.channels, 7, padding=3),
            nn.ReLU(),
            nn.MaxPool1d(4),
            nn.Conv1d(self.channels, self.channels, 5, padding=2),
            nn.ReLU(),
            nn.AdaptiveMaxPool1d(8),
            nn.Flatten(),
            nn.Linear(8 * self.channels, 2),
        )

    def fit(self, X: np.ndarray, y: np.ndarray) -> CNN1D:
        with single_cpu_thread():
            return self._fit(X, y)

    def _fit(self, X: np.ndarray, y: np.ndarray) -> CNN1D:
        import torch

        torch.manual_seed(self.seed)
        self.net = self._net(X.shape[1])
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        gen = torch.Generator().manual_seed(self.seed)
        xs, ys = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)
        for _ in range(self.epochs):
            self.net.train()
            for rows in torch.randperm(len(xs), generator=gen).split(32):
                loss = torch.nn.functional.cross_entropy(self.net(xs[rows]), ys[rows])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        self.net.eval()
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = [
                torch.softmax(self.net(torch.as_tensor(X[i : i + 4096], dtype=torch.float32)), dim=1)
                for i in range(0, len(X), 4096)
            ]
        return torch.cat(out).double().numpy() if out else np.zeros((0, 2))


def make_classifier(name: str, seed: int, threads: int = 1):
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.neural_network import MLPClassifier

    if name == "random_forest":
        return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=threads)
    if name == "gradient_boosting":
        return HistGradientBoostingClassifier(random_state=seed)
    if name == "mlp":
        return MLPClassifier(hidden_layer_sizes=(128,), max_iter=400, random_state=seed)
    if name == "cnn":
        return CNN1D(seed=seed)
    raise ValueError(name)


class Counted:
    """A black box: ``predict_proba`` with a count of the samples it was asked about (the queries)."""

    def __init__(self, model):
        self.model, self.queries = model, 0

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        self.queries += len(X)
        return np.asarray(self.model.predict_proba(X), dtype=np.float64)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)
