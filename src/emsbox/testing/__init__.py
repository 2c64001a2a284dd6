"""Helpers for tests and plugins: in-memory sources and writers of recording files."""
