"""Talking OAI-PMH: HTTP with retries, safe XML, the protocol client and its datestamps."""
