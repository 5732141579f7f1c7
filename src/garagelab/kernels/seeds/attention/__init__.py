"""Seed kernels for the attention suite, composed from one fused template (`_fused.py`).

The seven problems differ only in a score modification and a mask, so each seed is the template
with three C++ snippets filled in rather than a copy: `score` rewrites the scaled score `x` of
query `i` and key `j` (head `h` of `H`); `keys` sets the range `[first, last)` of keys query `i`
of `n` attends, so that masked-out keys are skipped rather than computed and discarded
(FlexAttention's block sparsity, and where a fused kernel wins); `head` holds per-head constants,
computed once per pass rather than per score. The problems' fixed values (CAP, WINDOW, DOC_LEN)
are written into the snippets; sizes come from the tensors' shapes at run time.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE = Path(__file__).with_name("_fused.py")

_ALL = "first = 0; last = n;"
_CAUSAL = "first = 0; last = i + 1;"
VARIANTS: dict[str, dict[str, str]] = {
    "01_plain": {"score": "x", "keys": _ALL},
    "02_causal": {"score": "x", "keys": _CAUSAL},
    "03_relative_position": {"score": "x + (i - j)", "keys": _ALL},
    "04_alibi": {
        "head": "const float slope = std::exp2(-8.0f * (h + 1) / H);",
        "score": "x - slope * (i - j)",
        "keys": _CAUSAL,
    },
    "05_softcap": {"score": "cap * fast_tanh(x / cap)", "head": "constexpr float cap = 20.0f;", "keys": _ALL},
    "06_sliding_window": {
        "score": "x",
        "keys": "constexpr int64_t window = 64; first = std::max<int64_t>(0, i - window + 1); last = i + 1;",
    },
    "07_document_mask": {
        "score": "x",
        "keys": "constexpr int64_t doc = 48; first = i / doc * doc; last = std::min(n, first + doc);",
    },
}


def attention_seed(stem: str) -> str | None:
    """The seed kernel for an attention problem (`04_alibi`), or None for a stem we do not know."""
    variant = VARIANTS.get(stem)
    if variant is None:
        return None
    source = TEMPLATE.read_text()
    for marker, key in (("@HEAD@", "head"), ("@SCORE@", "score"), ("@RANGE@", "keys")):
        source = source.replace(marker, variant.get(key, ""))
    return f"# seed kernel for attention/{stem}, composed from seeds/attention/_fused.py\n{source}"
