"""Harvesting in layers: OAI-PMH (oai/), what is kept (store/), normalization, runs (run/), entry points."""
