"""Flax linen modules (NHWC). Models never import optax, orbax, grain or tfds."""
