"""CogFunSearch: LLM-guided program search for cognitive models of choice (Castro et al. 2025)."""
