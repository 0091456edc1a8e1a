"""jaxmani: text-guided image manipulation (Lightweight GAN + the seed paper's methods) in JAX."""

__version__ = "0.1.0"
