"""Test corpora built on the fly: tiny base specs, good LoRA adapters and bad variants."""
