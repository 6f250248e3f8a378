"""Caduceus (bidirectional, reverse-complement equivariant Mamba) in plain PyTorch, no remote code.

Schiff et al. 2024, "Caduceus: Bi-Directional Equivariant Long-Range DNA Sequence Modeling" (ICML). Checkpoints:
kuleshov-group/caduceus-ph_* (`rcps: false`) and caduceus-ps_* (`rcps: true`), model_type "caduceus",
CaduceusForMaskedLM. The modules below read the hub's config.json and load its weight names unchanged.

- Mamba mixer (Gu & Dao 2023): in_proj -> (x, z); x = silu(causal depthwise conv1d(x)); (dt, B, C) = x_proj(x);
  delta = dt_proj(dt) (softplus inside the scan); A = -exp(A_log); y = scan(x, delta, A, B, C, D) * silu(z);
  out_proj(y). The scan is `caduceus_scan.selective_scan`.
- BiMamba: out = M_fwd(x) + flip_L(M_rev(flip_L(x))) ("add"; "ew_multiply" multiplies); with
  bidirectional_weight_tie the two share in_proj / out_proj.
- Blocks are "add -> norm -> mixer" (mamba_ssm's Block): residual = h + residual; h = mixer(norm(residual)).
- RCPS (reverse-complement parameter sharing): hidden states carry 2 * d_model channels [fwd | rc], where
  rc(v) flips both length and channel axes. Embedding: [E(x), rc(E(comp(flip_L(x))))]. Mixer and norms run one
  shared module on the fwd half and on rc(second half). LM head: W h_fwd + W[comp] flip_C(h_rc). Hence
  logits(RC(x))[t, v] = logits(x)[L-1-t, comp(v)] exactly.
- `fused_add_norm: true` (every hub checkpoint) reproduces the original's fused code path, which in the RCPS
  block feeds the SECOND half to the forward add-norm and the flipped FIRST half to the rc one (the halves trade
  places each layer; the model stays RC-equivariant). `false` reproduces its unfused path (no swap).
"""

from __future__ import annotations

import json
import math
import pathlib
import types

import torch
import torch.nn.functional as F
from torch import nn

from gfm_audit.errors import InputError
from gfm_audit.gfm.caduceus_scan import selective_scan
from gfm_audit.gfm.checkpoint_files import read_json

ARCHITECTURE = "caduceus"
KINDS = ("masked",)
ACCEPTS_ATTENTION_MASK = False

_PREFIX = "caduceus.backbone"


# Deeper than any Caduceus checkpoint (the hub's have 4 to 16 layers): TIED_WEIGHTS must be one fixed dict.
_MAX_LAYERS = 128


def _rev_ties(n_layer: int, *, rcps_layouts: tuple[bool, ...], biases: bool) -> dict[str, str]:
    tied = {}
    for rcps in rcps_layouts:
        sub = "submodule." if rcps else ""
        for i in range(n_layer):
            base = f"{_PREFIX}.layers.{i}.mixer.{sub}"
            for proj in ("in_proj", "out_proj"):
                for leaf in ("weight", "bias") if biases else ("weight",):
                    tied[f"{base}mamba_rev.{proj}.{leaf}"] = f"{base}mamba_fwd.{proj}.{leaf}"
    return tied


# The LM head is tied to the input embedding (tie_word_embeddings, true unless config.json says otherwise), and with
# bidirectional_weight_tie each layer's reverse Mamba shares in_proj / out_proj with the forward one; files saved by
# transformers' save_pretrained lack the second name of each pair. Entries for layers a checkpoint does not have
# are never looked up. `tied_weights(config)` gives the exact dict of one config.
TIED_WEIGHTS: dict[str, str] = {
    "lm_head.weight": f"{_PREFIX}.embeddings.word_embeddings.weight",
    "lm_head.lm_head.weight": f"{_PREFIX}.embeddings.word_embeddings.embedding.weight",
    **_rev_ties(_MAX_LAYERS, rcps_layouts=(False, True), biases=True),
}

# Persistent buffers fixed by config.json alone (regular expressions over weight names): the complement maps of the
# RCPS embedding and LM head, which the original saves with the weights.
DERIVED_BUFFERS = (
    r"caduceus\.backbone\.embeddings\.word_embeddings\.complement_map",
    r"lm_head\.complement_map",
)


def claims(config: dict) -> bool:
    """True for a Caduceus config.json as on the hub (model_type, architectures or auto_map)."""
    if config.get("model_type") == "caduceus":
        return True
    if any(str(a).startswith("Caduceus") for a in config.get("architectures") or ()):
        return True
    auto_map = config.get("auto_map") or {}
    return any("modeling_caduceus." in str(v) for v in auto_map.values())


def check_supported(config: dict, *, name: str) -> None:
    """Stop with one line for a Caduceus variant this implementation does not cover."""
    strategy = config.get("bidirectional_strategy", "add")
    if config.get("bidirectional", True) and strategy not in (None, "add", "ew_multiply"):
        raise InputError(
            f"model {name}: config.json bidirectional_strategy={strategy!r} is not a Caduceus strategy this "
            "library implements ('add' or 'ew_multiply'); use a checkpoint with one of those"
        )
    ssm = config.get("ssm_cfg") or {}
    layer_cfg = config.get("layer_cfg") or {}
    mamba_cfg = layer_cfg.get("mamba_cfg") or {} if isinstance(layer_cfg, dict) else {}
    if str(mamba_cfg.get("version", "v1")) != "v1" or "headdim" in ssm or "ngroups" in ssm:
        raise InputError(
            f"model {name}: config.json asks for a Mamba-2 mixer (layer_cfg.mamba_cfg.version / ssm_cfg.headdim); "
            "only the Mamba-1 Caduceus checkpoints (kuleshov-group/caduceus-ph_*, caduceus-ps_*) are supported"
        )
    if config.get("rcps") and not config.get("complement_map"):
        raise InputError(
            f"model {name}: config.json has rcps: true but no complement_map; add the complement_map of the hub "
            "checkpoint (token id -> complement token id)"
        )
    for key in ("d_model", "n_layer", "vocab_size"):
        if not isinstance(config.get(key), int) or config[key] <= 0:
            raise InputError(f"model {name}: config.json lacks a positive integer {key!r}; use the hub's config.json")
    if config["n_layer"] > _MAX_LAYERS:
        raise InputError(
            f"model {name}: config.json n_layer={config['n_layer']} is deeper than the {_MAX_LAYERS} layers whose "
            "tied weight names gfm_audit.gfm.caduceus lists; raise _MAX_LAYERS there"
        )


def tied_weights(config: dict) -> dict[str, str]:
    """The exact {weight name: name it is tied to} of one checkpoint's config (see TIED_WEIGHTS)."""
    c = _Cfg(config)
    tied = {}
    if c.tie_word_embeddings:
        tied.update(
            {"lm_head.lm_head.weight": f"{_PREFIX}.embeddings.word_embeddings.embedding.weight"}
            if c.rcps
            else {"lm_head.weight": f"{_PREFIX}.embeddings.word_embeddings.weight"}
        )
    if c.bidirectional and c.bidirectional_weight_tie:
        tied.update(_rev_ties(c.n_layer, rcps_layouts=(c.rcps,), biases=bool(c.ssm.get("bias", False))))
    return tied


class _Cfg:
    """The config.json keys used here, with CaduceusConfig's defaults."""

    def __init__(self, config: dict) -> None:
        self.d_model = int(config["d_model"])
        self.n_layer = int(config["n_layer"])
        self.ssm = dict(config.get("ssm_cfg") or {})
        self.rms_norm = bool(config.get("rms_norm", True))
        self.residual_in_fp32 = bool(config.get("residual_in_fp32", True))
        self.fused_add_norm = bool(config.get("fused_add_norm", True))
        self.norm_epsilon = float(config.get("norm_epsilon", 1e-5))
        self.bidirectional = bool(config.get("bidirectional", True))
        self.bidirectional_strategy = config.get("bidirectional_strategy", "add") or "add"
        self.bidirectional_weight_tie = bool(config.get("bidirectional_weight_tie", True))
        self.rcps = bool(config.get("rcps", False))
        self.tie_word_embeddings = bool(config.get("tie_word_embeddings", True))
        vocab = int(config["vocab_size"])
        multiple = int(config.get("pad_vocab_size_multiple", 8) or 1)
        # The original pads the vocabulary to a multiple and maps the padding ids to themselves.
        if vocab % multiple:
            vocab += multiple - vocab % multiple
        self.vocab_size = vocab
        comp = {int(k): int(v) for k, v in (config.get("complement_map") or {}).items()}
        self.complement = [comp.get(i, i) for i in range(vocab)]


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2) + eps) * weight (Zhang & Sennrich 2019), computed in float32 as mamba_ssm's kernel."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + self.eps) * self.weight.float()).to(x.dtype)


def _make_norm(c: _Cfg) -> nn.Module:
    return RMSNorm(c.d_model, c.norm_epsilon) if c.rms_norm else nn.LayerNorm(c.d_model, eps=c.norm_epsilon)


def _add_norm(norm: nn.Module, x: torch.Tensor, residual: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused add + norm semantics: returns (norm(x + residual), x + residual), the sum taken in float32."""
    summed = x.float() + residual.float() if residual is not None else x
    return norm(summed.to(norm.weight.dtype)).to(x.dtype), summed


def _rc(x: torch.Tensor) -> torch.Tensor:
    """Reverse complement of an RCPS half: flip length and channel axes."""
    return torch.flip(x, dims=[-2, -1])


class Mamba(nn.Module):
    """Mamba-1 mixer with mamba_ssm's parameter names (in_proj, conv1d, x_proj, dt_proj, A_log, D, out_proj)."""

    def __init__(self, d_model: int, ssm: dict) -> None:
        super().__init__()
        self.d_state = int(ssm.get("d_state", 16))
        self.d_conv = int(ssm.get("d_conv", 4))
        self.d_inner = int(ssm.get("expand", 2) * d_model)
        dt_rank = ssm.get("dt_rank", "auto")
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        bias = bool(ssm.get("bias", False))
        self.in_proj = nn.Linear(d_model, self.d_inner * 2, bias=bias)
        self.conv1d = nn.Conv1d(
            self.d_inner,
            self.d_inner,
            kernel_size=self.d_conv,
            groups=self.d_inner,
            padding=self.d_conv - 1,
            bias=bool(ssm.get("conv_bias", True)),
        )
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * self.d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        a = torch.arange(1, self.d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(a))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        length = hidden.shape[1]
        xz = self.in_proj(hidden).transpose(1, 2)  # (b, 2 * d_inner, L)
        x, z = xz.chunk(2, dim=1)
        x = F.silu(self.conv1d(x)[..., :length])  # causal: keep the first L outputs of the left-padded conv
        x_dbl = self.x_proj(x.transpose(1, 2))
        dt, b, c = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.linear(dt, self.dt_proj.weight).transpose(1, 2)
        y = selective_scan(
            x,
            delta,
            -torch.exp(self.A_log.float()),
            B=b.transpose(1, 2).contiguous(),
            C=c.transpose(1, 2).contiguous(),
            D=self.D.float(),
            z=z,
            delta_bias=self.dt_proj.bias.float(),
            delta_softplus=True,
        )
        return self.out_proj(y.transpose(1, 2))


class BiMambaWrapper(nn.Module):
    """Forward Mamba plus a Mamba over the flipped sequence, combined by add or elementwise product."""

    def __init__(self, c: _Cfg) -> None:
        super().__init__()
        self.strategy = c.bidirectional_strategy
        self.mamba_fwd = Mamba(c.d_model, c.ssm)
        self.mamba_rev = Mamba(c.d_model, c.ssm) if c.bidirectional else None
        if self.mamba_rev is not None and c.bidirectional_weight_tie:
            self.mamba_rev.in_proj.weight = self.mamba_fwd.in_proj.weight
            self.mamba_rev.in_proj.bias = self.mamba_fwd.in_proj.bias
            self.mamba_rev.out_proj.weight = self.mamba_fwd.out_proj.weight
            self.mamba_rev.out_proj.bias = self.mamba_fwd.out_proj.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.mamba_fwd(x)
        if self.mamba_rev is None:
            return out
        out_rev = self.mamba_rev(x.flip(1)).flip(1)
        return out + out_rev if self.strategy == "add" else out * out_rev


class RCPSWrapper(nn.Module):
    """Runs one module on the fwd half and on rc(second half); the attribute name matches the original."""

    def __init__(self, submodule: nn.Module) -> None:
        super().__init__()
        self.submodule = submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        # One call over both halves stacked on the batch axis: the module is per-sequence, so this is the same.
        both = self.submodule(torch.cat([x[..., :half], _rc(x[..., half:])], dim=0))
        fwd, rc = both.chunk(2, dim=0)
        return torch.cat([fwd, _rc(rc)], dim=-1)


class _NormHolder(nn.Module):
    """The original's RCPSAddNormWrapper: only here so the norm's weights are named `<norm>.submodule.*`."""

    def __init__(self, submodule: nn.Module) -> None:
        super().__init__()
        self.submodule = submodule


class Block(nn.Module):
    """Add -> norm -> mixer, returning (mixer output, residual), for plain and RCPS hidden states."""

    def __init__(self, c: _Cfg) -> None:
        super().__init__()
        self.rcps = c.rcps
        self.fused = c.fused_add_norm
        self.residual_in_fp32 = c.residual_in_fp32
        mixer = BiMambaWrapper(c)
        self.mixer = RCPSWrapper(mixer) if c.rcps else mixer
        norm = _make_norm(c)
        self.norm = _NormHolder(norm) if (c.rcps and not c.fused_add_norm) else norm

    def _norm_module(self) -> nn.Module:
        return self.norm.submodule if isinstance(self.norm, _NormHolder) else self.norm

    def forward(self, h: torch.Tensor, residual: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        norm = self._norm_module()
        if not self.rcps:
            h, residual = _add_norm(norm, h, residual)
        else:
            half = h.shape[-1] // 2
            if self.fused:
                # The original's fused path: the forward add-norm reads the second half, the rc one the first.
                first, second = h[..., half:], _rc(h[..., :half])
                r1 = residual[..., half:] if residual is not None else None
                r2 = _rc(residual[..., :half]) if residual is not None else None
            else:
                first, second = h[..., :half], _rc(h[..., half:])
                r1 = residual[..., :half] if residual is not None else None
                r2 = _rc(residual[..., half:]) if residual is not None else None
            h1, res1 = _add_norm(norm, first, r1)
            h2, res2 = _add_norm(norm, second, r2)
            h = torch.cat([h1, _rc(h2)], dim=-1)
            residual = torch.cat([res1, _rc(res2)], dim=-1)
        if self.residual_in_fp32:
            residual = residual.float()
        return self.mixer(h), residual


class _Embeddings(nn.Module):
    def __init__(self, c: _Cfg) -> None:
        super().__init__()
        self.word_embeddings = RCPSEmbedding(c) if c.rcps else nn.Embedding(c.vocab_size, c.d_model)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.word_embeddings(input_ids)


class RCPSEmbedding(nn.Module):
    """[E(x), rc(E(comp(flip_L(x))))]: 2 * d_model channels."""

    def __init__(self, c: _Cfg) -> None:
        super().__init__()
        self.register_buffer("complement_map", torch.tensor(c.complement, dtype=torch.long))
        self.embedding = nn.Embedding(c.vocab_size, c.d_model)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        rc_ids = self.complement_map[input_ids.flip(-1)]
        return torch.cat([self.embedding(input_ids), _rc(self.embedding(rc_ids))], dim=-1)


class RCPSLMHead(nn.Module):
    """logits = W h_fwd + W[comp] flip_C(h_rc); W has the original name `lm_head.lm_head.weight`."""

    def __init__(self, c: _Cfg) -> None:
        super().__init__()
        self.register_buffer("complement_map", torch.tensor(c.complement, dtype=torch.long))
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        w = self.lm_head.weight
        return F.linear(x[..., :half], w) + F.linear(x[..., half:].flip(-1), w[self.complement_map])


class _Backbone(nn.Module):
    def __init__(self, c: _Cfg) -> None:
        super().__init__()
        self.rcps = c.rcps
        self.fused = c.fused_add_norm
        self.embeddings = _Embeddings(c)
        self.layers = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        norm = _make_norm(c)
        self.norm_f = _NormHolder(norm) if (c.rcps and not c.fused_add_norm) else norm

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h = self.embeddings(input_ids)
        residual = None
        states = []
        for layer in self.layers:
            states.append(h)
            h, residual = layer(h, residual)
        norm = self.norm_f.submodule if isinstance(self.norm_f, _NormHolder) else self.norm_f
        if self.rcps:
            half = h.shape[-1] // 2
            r1 = residual[..., :half] if residual is not None else None
            r2 = _rc(residual[..., half:]) if residual is not None else None
            h1, _ = _add_norm(norm, h[..., :half], r1)
            h2, _ = _add_norm(norm, _rc(h[..., half:]), r2)
            h = torch.cat([h1, _rc(h2)], dim=-1)
        else:
            h, _ = _add_norm(norm, h, residual)
        states.append(h)
        return h, states


class _Caduceus(nn.Module):
    def __init__(self, c: _Cfg) -> None:
        super().__init__()
        self.backbone = _Backbone(c)


class CaduceusForMaskedLM(nn.Module):
    """Masked LM with the hub's module tree: caduceus.backbone.{embeddings,layers,norm_f} and lm_head."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        c = _Cfg(config)
        self.config = dict(config)
        self.caduceus = _Caduceus(c)
        self.lm_head = RCPSLMHead(c) if c.rcps else nn.Linear(c.d_model, c.vocab_size, bias=False)
        if c.tie_word_embeddings:
            emb = self.caduceus.backbone.embeddings.word_embeddings
            if c.rcps:
                self.lm_head.lm_head.weight = emb.embedding.weight
            else:
                self.lm_head.weight = emb.weight

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        output_hidden_states: bool = False,
        **_: object,
    ) -> types.SimpleNamespace:
        # Caduceus has no attention mask (ACCEPTS_ATTENTION_MASK is False); a mask passed anyway is ignored
        # exactly as the original ignores padding.
        hidden, states = self.caduceus.backbone(input_ids)
        logits = self.lm_head(hidden).float()
        return types.SimpleNamespace(logits=logits, hidden_states=tuple(states) if output_hidden_states else None)


def build_lm(config: dict, *, kind: str) -> CaduceusForMaskedLM:
    """Caduceus masked LM from config.json alone (weights as initialised; load the checkpoint next)."""
    if kind not in KINDS:
        raise ValueError(f"Caduceus is a masked LM; kind {kind!r} is not available (use 'masked')")
    return CaduceusForMaskedLM(config).float().eval()


_SPECIALS = ("[CLS]", "[SEP]", "[BOS]", "[MASK]", "[PAD]", "[RESERVED]", "[UNK]")


def load_tokenizer(folder: pathlib.Path):
    """The CaduceusTokenizer of a hub folder, rebuilt as a fast tokenizer without its remote code.

    The original has a fixed vocabulary (no vocab file): ids 0-6 are [CLS] [SEP] [BOS] [MASK] [PAD] [RESERVED]
    [UNK], then one id per character (default A C G T N -> 7..11); text is upper-cased, every character is one
    token, characters outside the list become [UNK], and one [SEP] is appended.
    """
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    folder = pathlib.Path(folder)
    path = folder / "tokenizer_config.json"
    if not path.is_file():
        raise InputError(
            f"{path}: tokenizer file missing; copy tokenizer_config.json (and special_tokens_map.json) from the "
            "Caduceus checkpoint on the hub into the model folder"
        )
    try:
        tok_cfg = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); re-download it") from None
    special_map = {}
    special_path = folder / "special_tokens_map.json"
    if special_path.is_file():
        special_map = {k: v if isinstance(v, str) else v.get("content") for k, v in read_json(special_path).items()}
    characters = list(tok_cfg.get("characters") or ("A", "C", "G", "T", "N"))
    vocab = {t: i for i, t in enumerate(_SPECIALS)} | {ch: i + len(_SPECIALS) for i, ch in enumerate(characters)}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    # str.upper() on each character, as the original, for the letters of its alphabet (others become [UNK] anyway).
    tok.normalizer = normalizers.Sequence(
        [normalizers.Replace(ch.lower(), ch) for ch in characters if ch.lower() != ch]
    )
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.post_processor = processors.TemplateProcessing(
        single="$A [SEP]", pair="$A [SEP] $B:1 [SEP]:1", special_tokens=[("[SEP]", vocab["[SEP]"])]
    )

    def pick(key: str, default: str) -> str:
        value = tok_cfg.get(key, special_map.get(key, default))
        return value.get("content", default) if isinstance(value, dict) else value

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=pick("bos_token", "[BOS]"),
        eos_token=pick("eos_token", "[SEP]"),
        sep_token=pick("sep_token", "[SEP]"),
        cls_token=pick("cls_token", "[CLS]"),
        pad_token=pick("pad_token", "[PAD]"),
        mask_token=pick("mask_token", "[MASK]"),
        unk_token=pick("unk_token", "[UNK]"),
        model_max_length=int(tok_cfg.get("model_max_length", 131072)),
        padding_side=tok_cfg.get("padding_side", "left"),
        model_input_names=["input_ids"],
    )
    return fast
