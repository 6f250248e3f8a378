"""VAE poisoning: interpolate between latent codes of a sample and its target, decode.

VAE (Kingma & Welling, ICLR 2014): MLP encoder to (mu, log var), tanh decoder
(data are scaled to [-1, 1]); loss = sum of squared errors + KL(q(z|x) || N(0, I)).
A poisoned sample is decode((1 - a) mu(x) + a mu(e)), with e the sample's FIMBA endpoint.
"""

from __future__ import annotations

import time

import numpy as np

from ...determinism import single_cpu_thread


def train_vae(X: np.ndarray, *, latent: int, epochs: int, seed: int, hidden: int = 128, lr: float = 1e-3):
    with single_cpu_thread():
        return _train_vae(X, latent, epochs, seed, hidden, lr)


def _train_vae(X: np.ndarray, latent: int, epochs: int, seed: int, hidden: int, lr: float):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    n_features = X.shape[1]

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU())
            self.mu, self.logvar = nn.Linear(hidden, latent), nn.Linear(hidden, latent)
            self.dec = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, n_features), nn.Tanh())

        def encode(self, x):
            h = self.enc(x)
            return self.mu(h), self.logvar(h)

        def forward(self, x):
            mu, logvar = self.encode(x)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            return self.dec(z), mu, logvar

    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xs = torch.as_tensor(X, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for rows in torch.randperm(len(xs), generator=gen).split(64):
            recon, mu, logvar = model(xs[rows])
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss = ((recon - xs[rows]) ** 2).sum() + kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


def poison(model, X: np.ndarray, E: np.ndarray, *, alpha: float) -> tuple[np.ndarray, float]:
    """Decoded latent interpolations and the seconds it took (TTG)."""
    import torch

    start = time.perf_counter()
    with torch.inference_mode():
        mu_x, _ = model.encode(torch.as_tensor(X, dtype=torch.float32))
        mu_e, _ = model.encode(torch.as_tensor(E, dtype=torch.float32))
        out = model.dec((1 - alpha) * mu_x + alpha * mu_e).double().numpy()
    return out, time.perf_counter() - start


def similarity(original: np.ndarray, poisoned: np.ndarray) -> dict[str, float]:
    """MSE, SSIM (matrices as images, range [-1, 1] -> 2) and mean row cosine similarity."""
    from skimage.metrics import structural_similarity

    win = min(7, min(original.shape) - (1 - min(original.shape) % 2))
    num = (original * poisoned).sum(axis=1)
    den = np.linalg.norm(original, axis=1) * np.linalg.norm(poisoned, axis=1)
    return {
        "mse": float(((original - poisoned) ** 2).mean()),
        "ssim": float(structural_similarity(original, poisoned, data_range=2.0, win_size=win)),
        "cosine": float(np.mean(num / np.where(den > 0, den, 1.0))),
    }
