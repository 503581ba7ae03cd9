"""In-process orchestration: harvest runs, the normalize-and-index pipeline, rebuilds, checks."""
