"""Transformer shapes: built-in configs of the paper's models, or any HuggingFace config.json."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from garagelab.core.errors import UserError
from garagelab.core.textfiles import read_user_text

ATTENTION = ("heads", "single")


@dataclass(frozen=True)
class LLMConfig:
    """What the simulator needs of a decoder-only transformer (GQA covers MHA and MQA)."""

    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    vocab: int
    tied_embeddings: bool = False
    # "heads": attention as the config says (multi-head or grouped-query); "single": one head as
    # wide as all of them, as the paper's kernels run it (n_heads=1, head_dim=dim in its code)
    attention: str = "heads"

    def __post_init__(self) -> None:
        if self.attention not in ATTENTION:
            raise UserError(f"attention {self.attention!r} is not one of {', '.join(ATTENTION)}")

    @property
    def attention_heads(self) -> int:
        """Heads the attention kernels compute separately (1 for the paper's single head)."""
        return 1 if self.attention == "single" else self.heads

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    def layer_params(self) -> int:
        attention = self.hidden * (self.q_dim + 2 * self.kv_dim) + self.q_dim * self.hidden
        return attention + 3 * self.hidden * self.ffn + 2 * self.hidden

    def params(self) -> int:
        embeddings = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        return self.layers * self.layer_params() + embeddings + self.hidden

    def kv_bytes_per_token(self, bytes_per_element: int = 2) -> int:
        """K and V of one token over all layers."""
        return 2 * self.layers * self.kv_dim * bytes_per_element

    def to_dict(self) -> dict:
        return asdict(self)


MODELS = {
    m.name: m
    for m in (
        LLMConfig("llama3-8b", hidden=4096, layers=32, heads=32, kv_heads=8, head_dim=128, ffn=14336, vocab=128256),
        LLMConfig("llama2-13b", hidden=5120, layers=40, heads=40, kv_heads=40, head_dim=128, ffn=13824, vocab=32000),
        LLMConfig("qwen2-72b", hidden=8192, layers=80, heads=64, kv_heads=8, head_dim=128, ffn=29568, vocab=152064),
    )
}

# the models as the paper's kernels run them (one head as wide as all, its released decode
# code's n_heads=1, head_dim=dim): what the tables reproduce and the calibration fits
PAPER_MODELS = {name: replace(model, attention="single") for name, model in MODELS.items()}

_REQUIRED = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")


# expert counts of mixture-of-experts configs (Mixtral, Qwen2-MoE, DeepSeek)
_EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts")


def from_hf_config(data: dict, name: str = "model", source: str = "config") -> LLMConfig:
    """An LLMConfig from the fields of a HuggingFace `config.json`."""
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise UserError(f"{source}: missing {', '.join(missing)}; a HuggingFace decoder config.json has them")
    experts = {key: data[key] for key in _EXPERT_KEYS if isinstance(data.get(key), int) and data[key] > 1}
    if experts:
        key, count = next(iter(experts.items()))
        raise UserError(
            f"{source}: a mixture-of-experts model ({key} = {count}); the simulator has no expert placement or "
            "all-to-all, and pricing it as a dense model would be wrong: use a dense config"
        )
    try:
        heads = int(data["num_attention_heads"])
        hidden = int(data["hidden_size"])
        config = LLMConfig(
            name=name,
            hidden=hidden,
            layers=int(data["num_hidden_layers"]),
            heads=heads,
            kv_heads=int(data.get("num_key_value_heads") or heads),
            head_dim=int(data.get("head_dim") or hidden // heads),
            ffn=int(data["intermediate_size"]),
            vocab=int(data["vocab_size"]),
            tied_embeddings=bool(data.get("tie_word_embeddings", False)),
        )
    except (TypeError, ValueError) as exc:
        raise UserError(f"{source}: a size field is not an integer ({exc})") from exc
    for field, value in config.to_dict().items():
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            raise UserError(f"{source}: {field} must be at least 1, got {value}")
    if config.heads % config.kv_heads:
        raise UserError(f"{source}: {config.heads} attention heads do not split into {config.kv_heads} KV heads")
    return config


def load_model(spec: str) -> LLMConfig:
    """A built-in name (llama3-8b, llama2-13b, qwen2-72b) or the path of a config.json."""
    if spec.lower() in MODELS:
        return MODELS[spec.lower()]
    path = Path(spec)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise UserError(f"model {spec!r}: not a built-in ({', '.join(MODELS)}) and no config.json there")
    try:
        data = json.loads(read_user_text(path))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc})") from exc
    return from_hf_config(data, name=path.parent.name or path.stem, source=str(path))
