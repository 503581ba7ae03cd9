"""Normalization: an archived raw record through its format's crosswalk into one `Record`."""
