"""garagelab: five recent AI research systems re-created to run on one machine."""

__version__ = "0.1.0"

SYSTEMS: dict[str, str] = {
    "playground": "batched MuJoCo robot environments and PPO (MuJoCo Playground)",
    "distill": "distillation scaling laws: fit, predict, plan compute (Busbridge et al. 2025)",
    "kernels": "LLM + verifier loop for GPU kernels (KernelBench)",
    "cogsearch": "LLM-guided program search for cognitive models (CogFunSearch)",
    "wafer": "LLM inference on a simulated wafer-scale mesh (WaferLLM)",
}

# shared parts with their own verbs (used by the systems above, also usable on their own)
SHARED: dict[str, str] = {
    "evolve": "program search: islands, sandboxed evaluation, LLM and offline proposers",
    "llm": "model clients and the local llama.cpp server",
}
