"""Durable storage: what must survive a restart or a power cut (counter states first)."""
