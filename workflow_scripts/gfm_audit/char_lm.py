"""Character-level DNA tokenizer and small model architectures, saved as checkpoint folders.

The demo target is such a folder holding only ``config.json`` and the
tokenizer (no weights): the workflow trains it from scratch. Tests build tiny
causal and masked models the same way and load them through the same
``AutoTokenizer`` / ``AutoModelFor*`` path as a user's checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors

SPECIALS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]", "[MASK]")
BASES = ("A", "C", "G", "T", "N")


def char_tokenizer(add_bos: bool = True):
    """One token per base (HyenaDNA-style), with a BOS token so the first base is scored too."""
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIALS + BASES)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(single="[BOS] $A", special_tokens=[("[BOS]", 2)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="[BOS]",
        eos_token="[EOS]",
        pad_token="[PAD]",
        unk_token="[UNK]",
        mask_token="[MASK]",
    )


def save_char_causal_lm(
    path: str | os.PathLike,
    *,
    hidden: int = 256,
    layers: int = 2,
    heads: int = 4,
    max_positions: int = 2048,
    weights_seed: int | None = None,
) -> Path:
    """Write a GPT-2-style character causal LM folder (config + tokenizer; weights if ``weights_seed``)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = char_tokenizer()
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=max_positions,
        n_embd=hidden,
        n_layer=layers,
        n_head=heads,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        architectures=["GPT2LMHeadModel"],
    )
    return _save(path, config, tokenizer, GPT2LMHeadModel, weights_seed)


def save_char_masked_lm(
    path: str | os.PathLike, *, hidden: int = 64, layers: int = 2, heads: int = 4, weights_seed: int | None = 0
) -> Path:
    """Write an ESM-style (Nucleotide Transformer v1 architecture) masked LM folder."""
    from transformers import EsmConfig, EsmForMaskedLM

    tokenizer = char_tokenizer()
    config = EsmConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        max_position_embeddings=2050,
        position_embedding_type="rotary",
        pad_token_id=tokenizer.pad_token_id,
        mask_token_id=tokenizer.mask_token_id,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        architectures=["EsmForMaskedLM"],
    )
    return _save(path, config, tokenizer, EsmForMaskedLM, weights_seed)


def _save(path, config, tokenizer, model_class, weights_seed) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(path)
    if weights_seed is None:
        config.save_pretrained(path)
    else:
        import torch

        torch.manual_seed(weights_seed)
        model_class(config).save_pretrained(path)
    return path


if __name__ == "__main__":
    # python -m gfm_audit.char_lm OUT_DIR [masked]: the demo's untrained architecture folder (resources/demo/char_lm),
    # or with ``masked`` the masked demo's (resources/demo/char_mlm: the architecture bench_masked_cost.py trains).
    import sys

    if sys.argv[2:] == ["masked"]:
        save_char_masked_lm(sys.argv[1], hidden=64, layers=2, heads=4, weights_seed=None)
    else:
        save_char_causal_lm(sys.argv[1], hidden=256, layers=2, heads=4, max_positions=1024)
