"""Harvesting: OAI-PMH protocol, raw archive and state, normalization, harvest runs, the CLI."""
