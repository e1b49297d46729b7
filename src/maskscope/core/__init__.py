"""Foundations every stage shares: audio I/O, STFT framing, atomic outputs, seeding, errors, external tools."""
