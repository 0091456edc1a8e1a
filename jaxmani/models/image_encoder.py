"""DAMSM image encoder (CNN_ENCODER): Inception-v3 trunk with two linear projections."""

import jax
from flax import linen as nn

from jaxmani.models.inception import InceptionV3
from jaxmani.models.layers import resize_bilinear

INCEPTION_SIZE = 299


class ImageEncoder(nn.Module):
    """Maps [-1,1] images to 17x17 region features and a global code, both embedding_dim wide."""

    embedding_dim: int = 256

    @nn.compact
    def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Encodes (B,H,W,3) images with the trunk's BatchNorm in eval mode.

        Returns:
            region features (B,17,17,embedding_dim) and the code (B,embedding_dim).
        """
        x = resize_bilinear(images, INCEPTION_SIZE, INCEPTION_SIZE)
        trunk = InceptionV3(variant="torchvision", name="trunk")(x, train=False)
        region = nn.Conv(self.embedding_dim, (1, 1), use_bias=False, name="emb_features")(
            trunk["mixed_6e"]
        )
        code = nn.Dense(self.embedding_dim, name="emb_cnn_code")(trunk["pool"])
        return region, code
