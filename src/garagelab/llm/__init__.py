"""Model clients: any OpenAI-compatible endpoint, and a local llama.cpp server garagelab runs."""
