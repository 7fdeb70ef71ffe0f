"""One model per module; see ml_core.registry.MODELS for the names."""
