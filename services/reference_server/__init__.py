"""A small serving target speaking vLLM's LoRA endpoints, on transformers + PEFT (CPU)."""
