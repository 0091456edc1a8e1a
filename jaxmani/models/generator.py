"""The Lightweight manipulation generator G_NET (BASELINE_SPEC §3.5) as a linen module (NHWC).

The network builds for image sides S in {64, 128, 256} with one structure, every stage at a
resolution proportional to S: the init stage grows a 4x4 map to S/8, where it attends to the words
and fuses the region features; the next stage attends at S/4 and fuses the VGG features; two
up-blocks reach S. At S = 256 the parameter tree is the upstream one.
"""

import math

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax.typing import Dtype

from jaxmani.models.attention import ChannelAttention, SpatialAttention
from jaxmani.models.blocks import (
    ACM,
    KERNEL_INIT,
    DownBlock,
    ImgUpBlock,
    ResBlock,
    UpBlock,
    batch_norm,
    check_image_size,
    conv3x3,
)
from jaxmani.models.layers import dtypes, glu

INIT_SIZE = 4


def count_init_upsamples(image_size: int) -> int:
    """Up-blocks of the init stage from its 4x4 map to the attention map at image_size / 8."""
    return round(math.log2(image_size // 8 // INIT_SIZE))


def fc_code_to_nhwc(x: jax.Array, channels: int) -> jax.Array:
    """Reshapes (B, channels * 16) channel-major like PyTorch's view to (B, C, 4, 4), as NHWC."""
    return x.reshape(x.shape[0], channels, INIT_SIZE, INIT_SIZE).transpose(0, 2, 3, 1)


def fuse_text_and_image(
    module: nn.Module,
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

    Creates the submodules `att`, `channel_att`, `ACM` and `residual_{i}` in the calling module,
    with its `dtype` and `param_dtype`.

    Returns:
      The fused features (B, H, W, 3C) and the spatial attention map (B, H, W, T).
    """
    features, kw = x.shape[-1], dtypes(module)
    context, attention = SpatialAttention(features, mask_other_sample, name="att", **kw)(
        x, words, mask
    )
    channel_context = ChannelAttention(size, batch_padding, name="channel_att", **kw)(
        context, words, mask
    )
    h = jnp.concatenate([x, context, channel_context], axis=-1)
    h = ACM(3 * features, name="ACM", **kw)(h, img_code)
    for i in range(r_num):
        h = ResBlock(3 * features, name=f"residual_{i}", **kw)(h)
    return h, attention


class CANet(nn.Module):
    """Conditioning augmentation head: Dense to 4 * condition_dim, GLU, split into mu and logvar."""

    condition_dim: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, sent_emb: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Returns mu and logvar, each (B, condition_dim)."""
        dense = nn.Dense(
            4 * self.condition_dim,
            kernel_init=KERNEL_INIT,
            bias_init=nn.initializers.zeros,
            name="fc",
            **dtypes(self),
        )
        x = glu(dense(sent_emb))
        return x[:, : self.condition_dim], x[:, self.condition_dim :]


class InitStage(nn.Module):
    """INIT_STAGE_G: code -> 4x4 -> S/8 with word attention and ACM -> (B, S/4, S/4, gf).

    The fc starts at width 2 * gf_dim * 2**n (n up-blocks to S/8, named upsample1..n), so the
    attention runs at 2 * gf_dim channels at every size (16 * gf_dim and 3 up-blocks at S = 256);
    the up-block after the residual blocks is upsample{n+1}.
    """

    gf_dim: int
    r_num: int
    image_size: int = 256
    attention_mask_other_sample: bool = False
    channel_attention_batch_padding: bool = False
    skip_bn_at_batch_one: bool = False
    bn_axis_name: str | None = None
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(
        self,
        code: jax.Array,
        words: jax.Array,
        mask: jax.Array,
        img_code: jax.Array,
        train: bool,
    ) -> tuple[jax.Array, jax.Array]:
        """Returns the stage output (B, S/4, S/4, gf_dim) and the attention (B, S/8, S/8, T)."""
        upsamples = count_init_upsamples(self.image_size)
        ngf = 2 * self.gf_dim * 2**upsamples
        x = nn.Dense(
            ngf * INIT_SIZE * INIT_SIZE * 2,
            use_bias=False,
            kernel_init=KERNEL_INIT,
            name="fc",
            **dtypes(self),
        )(code)
        skip_bn = self.skip_bn_at_batch_one and self.global_batch_size(code, train) == 1
        # fc_bn runs (without updating statistics) even when skipped, so that its variables exist
        # for every batch size and the parameter tree always matches the PyTorch state dict.
        normed = batch_norm("fc_bn", self.bn_axis_name, **dtypes(self))(x, train and not skip_bn)
        x = glu(x if skip_bn else normed)
        x = fc_code_to_nhwc(x, ngf)
        for i in range(1, upsamples + 1):
            x = UpBlock(ngf // 2**i, name=f"upsample{i}", **dtypes(self))(x)
        h, attention = fuse_text_and_image(
            self,
            x,
            words,
            mask,
            img_code,
            size=self.image_size // 8,
            r_num=self.r_num,
            mask_other_sample=self.attention_mask_other_sample,
            batch_padding=self.channel_attention_batch_padding,
        )
        out = UpBlock(self.gf_dim, name=f"upsample{upsamples + 1}", **dtypes(self))(h)
        return out, attention

    def global_batch_size(self, code: jax.Array, train: bool) -> int:
        """Samples in the BatchNorm batch: the local ones, times the axis size in train mode."""
        batch = code.shape[0]
        if train and self.bn_axis_name is not None and not self.is_initializing():
            batch *= jax.lax.axis_size(self.bn_axis_name)
        return batch


class NextStage(nn.Module):
    """NEXT_STAGE_G: (B, S/4, S/4, gf) with word attention and ACM -> (B, S, S, gf)."""

    gf_dim: int
    r_num: int
    image_size: int = 256
    attention_mask_other_sample: bool = False
    channel_attention_batch_padding: bool = False
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(
        self, x: jax.Array, words: jax.Array, mask: jax.Array, img_code: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """Returns the stage output (B, S, S, gf_dim) and the attention (B, S/4, S/4, T)."""
        h, attention = fuse_text_and_image(
            self,
            x,
            words,
            mask,
            img_code,
            size=self.image_size // 4,
            r_num=self.r_num,
            mask_other_sample=self.attention_mask_other_sample,
            batch_padding=self.channel_attention_batch_padding,
        )
        h = UpBlock(self.gf_dim, name="upsample", **dtypes(self))(h)
        return UpBlock(self.gf_dim, name="upsample2", **dtypes(self))(h), attention


class ImageHead(nn.Module):
    """GET_IMAGE_G: conv3x3 to RGB and tanh."""

    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Maps features to a [-1, 1] RGB image."""
        return jnp.tanh(conv3x3(3, "conv", **dtypes(self))(x))


class Generator(nn.Module):
    """G_NET: edits an image (given as encoder features) towards a caption; S x S tanh output.

    `image_size` S is 64, 128 or 256. The compat switches reproduce baseline quirks
    (BASELINE_SPEC §9): `attention_mask_other_sample` (item 1), `channel_attention_batch_padding`
    (channel softmax over the batch's padded words), `skip_init_bn_at_batch_one` (item 6),
    `nearest_scale_index` (PyTorch >= 1.6 nearest map) and `ca_noise_at_eval` (item 9).
    `bn_axis_name` makes both BatchNorms use the global batch of that pmap/shard_map axis; `dtype`
    is the computation dtype and `param_dtype` the storage one.
    """

    gf_dim: int = 32
    z_dim: int = 100
    condition_dim: int = 100
    embedding_dim: int = 256
    r_num: int = 2
    image_size: int = 256
    attention_mask_other_sample: bool = False
    channel_attention_batch_padding: bool = False
    skip_init_bn_at_batch_one: bool = False
    nearest_scale_index: bool = False
    ca_noise_at_eval: bool = False
    bn_axis_name: str | None = None
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

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
        """Returns "image" (B, S, S, 3), "attention" (B, S/4, S/4, T), "mu" and "logvar".

        Args:
          z: noise (B, z_dim).
          sent_emb: sentence embedding (B, embedding_dim).
          words_emb: word features (B, T, embedding_dim), zero at padding.
          mask: (B, T) bool, True = padding.
          cnn_code: global image code (B, embedding_dim).
          region_features: image region features (B, R, R, embedding_dim), any grid side R.
          vgg_features: VGG16 relu2_2 features (B, S/2, S/2, 128).
          train: BatchNorm batch statistics and CA noise.
          ca_eps: CA noise to use instead of drawing it from the 'noise' stream.
        """
        check_image_size(self.image_size, "Generator")
        self.check_widths(z, sent_emb, words_emb, cnn_code, region_features)
        half = self.image_size // 2
        if vgg_features.shape[1:3] != (half, half):
            raise ValueError(
                f"Generator at {self.image_size}x{self.image_size} needs vgg_features at "
                f"{half}x{half}, got {vgg_features.shape[1]}x{vgg_features.shape[2]}"
            )
        kw = dtypes(self)
        mu, logvar = CANet(self.condition_dim, name="ca_net", **kw)(sent_emb)
        c = self.sample_condition(mu, logvar, train, ca_eps)
        img_code_init = ImgUpBlock(
            self.gf_dim,
            self.image_size // 8,
            self.nearest_scale_index,
            name="imgUpSample1",
            **kw,
        )(region_features)
        h_code1, _ = InitStage(
            self.gf_dim,
            self.r_num,
            self.image_size,
            attention_mask_other_sample=self.attention_mask_other_sample,
            channel_attention_batch_padding=self.channel_attention_batch_padding,
            skip_bn_at_batch_one=self.skip_init_bn_at_batch_one,
            bn_axis_name=self.bn_axis_name,
            name="h_net1",
            **kw,
        )(jnp.concatenate([c, z, cnn_code], axis=-1), words_emb, mask, img_code_init, train)
        img_code_next = DownBlock(self.gf_dim, self.bn_axis_name, name="imgUpSample2", **kw)(
            vgg_features, train
        )
        h_code2, attention = NextStage(
            self.gf_dim,
            self.r_num,
            self.image_size,
            attention_mask_other_sample=self.attention_mask_other_sample,
            channel_attention_batch_padding=self.channel_attention_batch_padding,
            name="h_net3",
            **kw,
        )(h_code1, words_emb, mask, img_code_next)
        img_code_half = UpBlock(self.gf_dim, name="imgUpSample3", **kw)(img_code_next)
        img_code_full = UpBlock(self.gf_dim, name="imgUpSample4", **kw)(img_code_half)
        h_code3 = ACM(self.gf_dim, name="ACM", **kw)(h_code2, img_code_full)
        image = ImageHead(name="img_net", **kw)(h_code3)
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
