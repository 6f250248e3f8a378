"""The gene-expression classifiers FIMBA is run against, all behind ``predict_proba``: scikit-learn's random
forest, gradient boosting and MLP, and three torch networks (CNN, ResNet, ViT) that white-box attacks can also use."""

from __future__ import annotations

import numpy as np

from ...determinism import single_cpu_thread

MODELS = ("random_forest", "gradient_boosting", "mlp", "cnn", "resnet", "vit")
TORCH_MODELS = ("cnn", "resnet", "vit")  # the ones white-box (gradient) attacks can run on


class TorchTabular:
    """A torch network over the gene vector, trained with Adam on one CPU thread; sklearn-style API.

    Subclasses give the network (``_net``); ``net`` maps a float32 (n, genes) batch to two logits, which is
    what the white-box comparison attacks differentiate.
    """

    def __init__(self, *, seed: int = 0, epochs: int = 60, lr: float = 1e-3):
        self.seed, self.epochs, self.lr = seed, epochs, lr

    def _net(self, n_features: int):
        raise NotImplementedError

    def fit(self, X: np.ndarray, y: np.ndarray) -> TorchTabular:
        with single_cpu_thread():
            return self._fit(X, y)

    def _fit(self, X: np.ndarray, y: np.ndarray) -> TorchTabular:
        import torch

        torch.manual_seed(self.seed)
        self.n_features_in_ = X.shape[1]
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

    def __getstate__(self) -> dict:
        # Pickled as plain arrays: torch's own pickling names each storage by its memory address, so the same
        # trained network would give a different model.joblib in every process.
        state = dict(self.__dict__)
        net = state.pop("net", None)
        if net is not None:
            state["weights"] = [(name, t.detach().cpu().numpy()) for name, t in net.state_dict().items()]
        return state

    def __setstate__(self, state: dict) -> None:
        weights = state.pop("weights", None)
        self.__dict__.update(state)
        if weights is None:
            return
        import torch

        # Building the network draws its initial weights: from a forked generator, so that loading a model
        # does not move the process's random stream.
        with torch.random.fork_rng(devices=[]):
            self.net = self._net(self.n_features_in_)
        self.net.load_state_dict({name: torch.from_numpy(np.array(a)) for name, a in weights}, strict=True)
        self.net.eval()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = [
                torch.softmax(self.net(torch.as_tensor(X[i : i + 4096], dtype=torch.float32)), dim=1)
                for i in range(0, len(X), 4096)
            ]
        return torch.cat(out).double().numpy() if out else np.zeros((0, 2))


class CNN1D(TorchTabular):
    """A 1-D CNN over the gene vector (genes in file order)."""

    def __init__(self, *, seed: int = 0, epochs: int = 60, channels: int = 16, lr: float = 1e-3):
        super().__init__(seed=seed, epochs=epochs, lr=lr)
        self.channels = channels

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


class ResNet1D(TorchTabular):
    """A 1-D residual network over the gene vector (the FIMBA paper's ResNet, scaled to the demo): a stem
    convolution, ``blocks`` residual blocks of two convolutions with an identity shortcut, global pooling.
    No batch norm: its running statistics would make the CPU training less reproducible for no gain here."""

    def __init__(self, *, seed: int = 0, epochs: int = 60, channels: int = 16, blocks: int = 2, lr: float = 1e-3):
        super().__init__(seed=seed, epochs=epochs, lr=lr)
        self.channels, self.blocks = channels, blocks

    def _net(self, n_features: int):
        from torch import nn

        from .torch_nets import Residual

        return nn.Sequential(
            nn.Unflatten(1, (1, n_features)),
            nn.Conv1d(1, self.channels, 7, padding=3),
            nn.ReLU(),
            nn.MaxPool1d(4),
            *[Residual(self.channels) for _ in range(self.blocks)],
            nn.AdaptiveAvgPool1d(8),
            nn.Flatten(),
            nn.Linear(8 * self.channels, 2),
        )


class GeneViT(TorchTabular):
    """A small ViT-style transformer over gene tokens: the gene vector is cut into patches of ``patch``
    consecutive genes (zero-padded at the end), each patch is a token (linear embedding plus a learned
    position embedding), a class token is prepended, ``depth`` pre-norm encoder layers, and the class
    token's output is classified (Dosovitskiy et al. 2021, with genes in place of pixels)."""

    def __init__(
        self, *, seed: int = 0, epochs: int = 40, patch: int = 16, dim: int = 32, depth: int = 2, lr: float = 1e-3
    ):
        super().__init__(seed=seed, epochs=epochs, lr=lr)
        self.patch, self.dim, self.depth = patch, dim, depth

    def _net(self, n_features: int):
        from .torch_nets import GenePatchViT

        return GenePatchViT(n_features, patch=self.patch, dim=self.dim, depth=self.depth)


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
    if name == "resnet":
        return ResNet1D(seed=seed)
    if name == "vit":
        return GeneViT(seed=seed)
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
