"""maskscope: dynamic speech-enhancement networks and what their gate masks know."""

__version__ = "0.1.0"
