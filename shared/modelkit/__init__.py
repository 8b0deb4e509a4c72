"""A tiny real model kit: a LLaMA base and LoRA adapters that really learn, built on the CPU."""
