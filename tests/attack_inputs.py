"""Shared by the ReCaLL and gradient-norm tests: a tiny scoring shard written by hand, and tiny causal models."""

import gzip
from pathlib import Path

import numpy as np
from conftest import demo_sequence


def write_shard(folder: Path, n_windows: int = 6, length: int = 40) -> dict[str, str]:
    """``n_windows`` windows of the demo genome, each with one snp neighbor (its first base changed), as the
    scoring job's inputs under ``folder``; returns the windows' sequences by id."""
    folder.mkdir(parents=True, exist_ok=True)
    windows = {f"w{i}": demo_sequence(1000 + 97 * i, 1000 + 97 * i + length) for i in range(n_windows)}
    with open(folder / "windows.fa", "w") as fh:
        fh.writelines(f">{w}\n{s}\n" for w, s in windows.items())
    with open(folder / "neighbors.fa", "w") as fh:
        for w, s in windows.items():
            fh.write(f">{w}_n\n{'C' if s[0] != 'C' else 'G'}{s[1:]}\n")
    with open(folder / "neighbors.tsv", "w") as fh:
        fh.write("neighbor_id\twindow_id\tkind\tprob\treplicate\n")
        fh.writelines(f"{w}_n\t{w}\tsnp\t0.5\t0\n" for w in windows)
    with gzip.open(folder / "snps.tsv.gz", "wt") as fh:
        fh.write("window_id\toffset\n")
        fh.writelines(f"{w}\t5\n" for w in windows)
    return windows


def save_causal_lm(path: Path, *, add_bos: bool = True, max_positions: int = 300, seed: int = 0) -> Path:
    """A tiny GPT-2 over single bases, with or without a BOS token, weights from ``seed``, saved as a checkpoint."""
    import torch
    from gfm_audit.char_lm import char_tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = char_tokenizer(add_bos=add_bos)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=max_positions,
        n_embd=32,
        n_layer=2,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    GPT2LMHeadModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def token_logprobs(model, ids) -> np.ndarray:
    """log p(ids[t] | ids[:t]) for t >= 1, from one unbatched forward pass in float64."""
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
    logp = torch.log_softmax(logits[:-1], -1)
    return logp.gather(-1, torch.tensor(ids[1:])[:, None])[:, 0].numpy()
