"""The Lightweight manipulation generator G_NET (BASELINE_SPEC §3.5) as a linen module (NHWC)."""

import jax
import jax.numpy as jnp
from flax import linen as nn

from jaxmani.models.attention import ChannelAttention, SpatialAttention
from jaxmani.models.blocks import (
    ACM,
    KERNEL_INIT,
    DownBlock,
    ImgUpBlock,
    ResBlock,
    UpBlock,
    batch_norm,
    conv3x3,
)
from jaxmani.models.layers import glu

INIT_SIZE = 4
INIT_ATTENTION_SIZE = 32
NEXT_ATTENTION_SIZE = 64


def fc_code_to_nhwc(x: jax.Array, channels: int) -> jax.Array:
    """Reshapes (B, channels * 16) channel-major like PyTorch's view to (B, C, 4, 4), as NHWC."""
    return x.reshape(x.shape[0], channels, INIT_SIZE, INIT_SIZE).transpose(0, 2, 3, 1)


def fuse_text_and_image(
    x: jax.Array,
    words: jax.Array,
    mask: jax.Array,
    img_code: jax.Array,
    *,
    size: int,
    r_num: int,
    mask_other_sample: bool,
    batch_padding: bool,
) -> tuple[jax.Array, jax.Array]:
    """Shared stage body: attention, concat, ACM and residual blocks (call inside a compact method).

    Creates the submodules `att`, `channel_att`, `ACM` and `residual_{i}` in the calling module.

    Returns:
      The fused features (B, H, W, 3C) and the spatial attention map (B, H, W, T).
    """
    features = x.shape[-1]
    context, attention = SpatialAttention(features, mask_other_sample, name="att")(x, words, mask)
    channel_context = ChannelAttention(size, batch_padding, name="channel_att")(
        context, words, mask
    )
    h = jnp.concatenate([x, context, channel_context], axis=-1)
    h = ACM(3 * features, name="ACM")(h, img_code)
    for i in range(r_num):
        h = ResBlock(3 * features, name=f"residual_{i}")(h)
    return h, attention


class CANet(nn.Module):
    """Conditioning augmentation head: Dense to 4 * condition_dim, GLU, split into mu and logvar."""

    condition_dim: int

    @nn.compact
    def __call__(self, sent_emb: jax.Array) -> tuple[jax.Array, jax.Array]:
        dense = nn.Dense(
            4 * self.condition_dim,
            kernel_init=KERNEL_INIT,
            bias_init=nn.initializers.zeros,
            name="fc",
        )
        x = glu(dense(sent_emb))
        return x[:, : self.condition_dim], x[:, self.condition_dim :]


class InitStage(nn.Module):
    """INIT_STAGE_G: code vector -> 4x4 -> 32x32 with word attention and ACM -> (B, 64, 64, gf)."""

    gf_dim: int
    r_num: int
    attention_mask_other_sample: bool = False
    channel_attention_batch_padding: bool = False
    skip_bn_at_batch_one: bool = False

    @nn.compact
    def __call__(
        self,
        code: jax.Array,
        words: jax.Array,
        mask: jax.Array,
        img_code: jax.Array,
        train: bool,
    ) -> tuple[jax.Array, jax.Array]:
        batch = code.shape[0]
        ngf = 16 * self.gf_dim
        x = nn.Dense(
            ngf * INIT_SIZE * INIT_SIZE * 2, use_bias=False, kernel_init=KERNEL_INIT, name="fc"
        )(code)
        skip_bn = self.skip_bn_at_batch_one and batch == 1
        # fc_bn runs (without updating statistics) even when skipped, so that its variables exist
        # for every batch size and the parameter tree always matches the PyTorch state dict.
        normed = batch_norm("fc_bn")(x, train and not skip_bn)
        x = glu(x if skip_bn else normed)
        x = fc_code_to_nhwc(x, ngf)
        x = UpBlock(ngf // 2, name="upsample1")(x)
        x = UpBlock(ngf // 4, name="upsample2")(x)
        x = UpBlock(ngf // 8, name="upsample3")(x)
        h, attention = fuse_text_and_image(
            x,
            words,
            mask,
            img_code,
            size=INIT_ATTENTION_SIZE,
            r_num=self.r_num,
            mask_other_sample=self.attention_mask_other_sample,
            batch_padding=self.channel_attention_batch_padding,
        )
        return UpBlock(self.gf_dim, name="upsample4")(h), attention


class NextStage(nn.Module):
    """NEXT_STAGE_G: (B, 64, 64, gf) with word attention and ACM -> (B, 256, 256, gf)."""

    gf_dim: int
    r_num: int
    attention_mask_other_sample: bool = False
    channel_attention_batch_padding: bool = False

    @nn.compact
    def __call__(
        self, x: jax.Array, words: jax.Array, mask: jax.Array, img_code: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        h, attention = fuse_text_and_image(
            x,
            words,
            mask,
            img_code,
            size=NEXT_ATTENTION_SIZE,
            r_num=self.r_num,
            mask_other_sample=self.attention_mask_other_sample,
            batch_padding=self.channel_attention_batch_padding,
        )
        h = UpBlock(self.gf_dim, name="upsample")(h)
        return UpBlock(self.gf_dim, name="upsample2")(h), attention


class ImageHead(nn.Module):
    """GET_IMAGE_G: conv3x3 to RGB and tanh."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.tanh(conv3x3(3, "conv")(x))


class Generator(nn.Module):
    """G_NET: edits an image (given as encoder features) towards a caption; 256x256 tanh output.

    The compat switches reproduce baseline quirks (BASELINE_SPEC §9): `attention_mask_other_sample`
    (item 1), `channel_attention_batch_padding` (channel softmax over the batch's padded words),
    `skip_init_bn_at_batch_one` (item 6), `nearest_scale_index` (PyTorch >= 1.6 nearest map) and
    `ca_noise_at_eval` (item 9).
    """

    gf_dim: int = 32
    z_dim: int = 100
    condition_dim: int = 100
    embedding_dim: int = 256
    r_num: int = 2
    attention_mask_other_sample: bool = False
    channel_attention_batch_padding: bool = False
    skip_init_bn_at_batch_one: bool = False
    nearest_scale_index: bool = False
    ca_noise_at_eval: bool = False

    @nn.compact
    def __call__(
        self,
        z: jax.Array,
        sent_emb: jax.Array,
        words_emb: jax.Array,
        mask: jax.Array,
        cnn_code: jax.Array,
        region_features: jax.Array,
        vgg_features: jax.Array,
        train: bool,
        ca_eps: jax.Array | None = None,
    ) -> dict[str, jax.Array]:
        self.check_widths(z, sent_emb, words_emb, cnn_code, region_features)
        mu, logvar = CANet(self.condition_dim, name="ca_net")(sent_emb)
        c = self.sample_condition(mu, logvar, train, ca_eps)
        img_code32 = ImgUpBlock(self.gf_dim, self.nearest_scale_index, name="imgUpSample1")(
            region_features
        )
        h_code1, _ = InitStage(
            self.gf_dim,
            self.r_num,
            attention_mask_other_sample=self.attention_mask_other_sample,
            channel_attention_batch_padding=self.channel_attention_batch_padding,
            skip_bn_at_batch_one=self.skip_init_bn_at_batch_one,
            name="h_net1",
        )(jnp.concatenate([c, z, cnn_code], axis=-1), words_emb, mask, img_code32, train)
        img_code64 = DownBlock(self.gf_dim, name="imgUpSample2")(vgg_features, train)
        h_code2, attention = NextStage(
            self.gf_dim,
            self.r_num,
            attention_mask_other_sample=self.attention_mask_other_sample,
            channel_attention_batch_padding=self.channel_attention_batch_padding,
            name="h_net3",
        )(h_code1, words_emb, mask, img_code64)
        img_code128 = UpBlock(self.gf_dim, name="imgUpSample3")(img_code64)
        img_code256 = UpBlock(self.gf_dim, name="imgUpSample4")(img_code128)
        h_code3 = ACM(self.gf_dim, name="ACM")(h_code2, img_code256)
        image = ImageHead(name="img_net")(h_code3)
        return {"image": image, "attention": attention, "mu": mu, "logvar": logvar}

    def sample_condition(
        self, mu: jax.Array, logvar: jax.Array, train: bool, ca_eps: jax.Array | None
    ) -> jax.Array:
        """Returns mu + eps * exp(logvar / 2), or mu in eval mode unless `ca_noise_at_eval`."""
        if not (train or self.ca_noise_at_eval):
            return mu
        eps = jax.random.normal(self.make_rng("noise"), mu.shape) if ca_eps is None else ca_eps
        return mu + eps * jnp.exp(0.5 * logvar)

    def check_widths(
        self,
        z: jax.Array,
        sent_emb: jax.Array,
        words_emb: jax.Array,
        cnn_code: jax.Array,
        region_features: jax.Array,
    ) -> None:
        """Raises ValueError when an input width disagrees with z_dim or embedding_dim."""
        widths = {
            "z": (z.shape[-1], self.z_dim),
            "sent_emb": (sent_emb.shape[-1], self.embedding_dim),
            "words_emb": (words_emb.shape[-1], self.embedding_dim),
            "cnn_code": (cnn_code.shape[-1], self.embedding_dim),
            "region_features": (region_features.shape[-1], self.embedding_dim),
        }
        for name, (got, expected) in widths.items():
            if got != expected:
                raise ValueError(f"Generator input {name} has width {got}, expected {expected}")
