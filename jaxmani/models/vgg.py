"""VGG-16 features up to relu2_2, the perceptual-loss network of the baseline."""

import jax
from flax import linen as nn

from jaxmani.models.layers import Conv, max_pool, padding


class VGG16Features(nn.Module):
    """conv1_1, conv1_2, max-pool, conv2_1, conv2_2 (3x3, padding 1, bias), each with a ReLU."""

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        """Maps (B,H,W,3) images, fed as they are, to relu2_2 features (B,H/2,W/2,128)."""
        x = images
        for name, features in (("conv1_1", 64), ("conv1_2", 64)):
            x = nn.relu(Conv(features, (3, 3), padding=padding(1), name=name)(x))
        x = max_pool(x, 2, 2)
        for name, features in (("conv2_1", 128), ("conv2_2", 128)):
            x = nn.relu(Conv(features, (3, 3), padding=padding(1), name=name)(x))
        return x
