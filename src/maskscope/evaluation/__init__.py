"""Scoring enhanced speech and its cost, and enhancing files with a trained model."""
