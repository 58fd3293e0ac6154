"""Recorders for real sources (games, photographs, videos) and the TFDS writer for episodes."""
