"""Speech-enhancement networks."""
