"""The measurement engine: pure numpy, sample blocks in, readings out (no I/O, no asyncio)."""
