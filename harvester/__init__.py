"""Harvesting in layers: OAI-PMH, what is kept, normalization, runs, and the entry points."""
