"""VGG-16 features up to relu2_2, the perceptual-loss network of the baseline."""

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxmani.models.layers import Conv, padding


def max_pool_2x2(x: jax.Array) -> jax.Array:
    """2x2 stride-2 max-pool of (B,H,W,C), odd last rows/columns dropped (PyTorch's default).

    A reshape and a max: its gradient is elementwise, where `nn.max_pool`'s select-and-scatter
    becomes, on XLA:CPU, a scatter with a (B*H*W*C/4, 4) index array (slower, and 1 GB of
    buffers at 256x256, batch 10). The gradient differs only at ties inside a window, which it
    splits evenly where PyTorch gives it to one element; after a ReLU such ties are zeros, whose
    ReLU gradient is zero either way.
    """
    b, h, w, c = x.shape
    x = x[:, : h - h % 2, : w - w % 2]
    return jnp.max(x.reshape(b, h // 2, 2, w // 2, 2, c), axis=(2, 4))


class VGG16Features(nn.Module):
    """conv1_1, conv1_2, max-pool, conv2_1, conv2_2 (3x3, padding 1, bias), each with a ReLU."""

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        """Maps (B,H,W,3) images, fed as they are, to relu2_2 features (B,H/2,W/2,128)."""
        x = images
        for name, features in (("conv1_1", 64), ("conv1_2", 64)):
            x = nn.relu(Conv(features, (3, 3), padding=padding(1), name=name)(x))
        x = max_pool_2x2(x)
        for name, features in (("conv2_1", 128), ("conv2_2", 128)):
            x = nn.relu(Conv(features, (3, 3), padding=padding(1), name=name)(x))
        return x
