"""Datasets (TFDS builders), the caption vocabulary and the input pipeline."""
