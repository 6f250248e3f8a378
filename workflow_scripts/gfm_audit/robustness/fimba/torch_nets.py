"""The torch modules of the ResNet and ViT expression classifiers (classifiers.py).

At module level, not inside the classifiers' methods, so that a trained classifier pickles (model.joblib);
imported only when a network is built, because the stages modules must load without torch.
"""

from __future__ import annotations

import torch
from torch import nn


class Residual(nn.Module):
    """Two same-width convolutions with an identity shortcut: relu(x + conv2(relu(conv1(x))))."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, 5, padding=2)
        self.conv2 = nn.Conv1d(channels, channels, 5, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.relu(x + self.conv2(nn.functional.relu(self.conv1(x))))


class GenePatchViT(nn.Module):
    """Patches of ``patch`` consecutive genes (zero-padded at the end) as tokens, a class token, learned
    position embeddings, ``depth`` pre-norm encoder layers; the class token's output is classified."""

    def __init__(self, n_features: int, *, patch: int, dim: int, depth: int):
        super().__init__()
        self.patch = patch
        self.n_tokens = -(-n_features // patch)
        self.embed = nn.Linear(patch, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(0.02 * torch.randn(1, self.n_tokens + 1, dim))
        layer = nn.TransformerEncoderLayer(
            dim, nhead=4, dim_feedforward=2 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.pad(x, (0, self.n_tokens * self.patch - x.shape[1]))
        x = x.reshape(len(x), self.n_tokens, self.patch)
        tokens = torch.cat([self.cls.expand(len(x), -1, -1), self.embed(x)], dim=1) + self.pos
        return self.head(self.norm(self.encoder(tokens)[:, 0]))
