"""Helpers for tests and plugins: in-memory sources, writers of recording files, `emsbox run`."""
