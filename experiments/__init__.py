"""Experiments as a product feature: A/B/n tests and Thompson bandits over serving arms (docs/ARCHITECTURE.md)."""
