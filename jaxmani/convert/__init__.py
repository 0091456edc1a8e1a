"""PyTorch checkpoints -> jaxmani params files. torch is imported lazily, only in this package."""
