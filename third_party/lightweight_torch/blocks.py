"""Shared building blocks of the baseline networks (upstream model.py), NCHW."""

import torch
from torch import nn
from torch.nn import functional as F


def conv3x3(in_planes: int, out_planes: int) -> nn.Conv2d:
    """3x3 convolution, stride 1, padding 1, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=1, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int) -> nn.Conv2d:
    """1x1 convolution, stride 1, no padding, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=1, padding=0, bias=False)


class GLU(nn.Module):
    """Gated linear unit over axis 1: first half times sigmoid of the second half."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Halve the channel (or feature) axis."""
        channels = x.size(1)
        if channels % 2:
            raise ValueError(f"GLU needs an even channel count, got {channels}")
        half = channels // 2
        return x[:, :half] * torch.sigmoid(x[:, half:])


class NearestScale(nn.Module):
    """Nearest-neighbour upsampling by a non-integer factor.

    With ``nearest_scale_index=True`` the source index is ``floor(i / scale)`` as in
    PyTorch >= 1.6 (``F.interpolate(scale_factor=...)``); with False it is
    ``floor(i * in / out)`` as in PyTorch <= 1.5 (the size-ratio map).
    """

    def __init__(self, scale: float, nearest_scale_index: bool = True) -> None:
        super().__init__()
        self.scale = scale
        self.nearest_scale_index = nearest_scale_index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upsample the two spatial axes of an NCHW tensor."""
        if self.nearest_scale_index:
            return F.interpolate(x, scale_factor=self.scale, mode="nearest")
        size = (int(x.size(2) * self.scale), int(x.size(3) * self.scale))
        return F.interpolate(x, size=size, mode="nearest")


def upBlock(in_planes: int, out_planes: int) -> nn.Sequential:  # noqa: N802
    """Nearest x2, conv3x3 to 2*out, InstanceNorm, GLU (out channels)."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        conv3x3(in_planes, out_planes * 2),
        nn.InstanceNorm2d(out_planes * 2),
        GLU(),
    )


def imgUpBlock(  # noqa: N802
    in_planes: int, out_planes: int, nearest_scale_index: bool = True
) -> nn.Sequential:
    """Nearest x1.9 (17 -> 32), conv3x3 to 2*out, InstanceNorm, GLU (out channels)."""
    return nn.Sequential(
        NearestScale(1.9, nearest_scale_index),
        conv3x3(in_planes, out_planes * 2),
        nn.InstanceNorm2d(out_planes * 2),
        GLU(),
    )


def downBlock(in_planes: int, out_planes: int) -> nn.Sequential:  # noqa: N802
    """Conv 4x4 stride 2 padding 1 (no bias), BatchNorm2d, LeakyReLU(0.2)."""
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel_size=4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_planes),
        nn.LeakyReLU(0.2),
    )


def Block3x3_leakRelu(in_planes: int, out_planes: int) -> nn.Sequential:  # noqa: N802
    """conv3x3, BatchNorm2d, LeakyReLU(0.2)."""
    return nn.Sequential(
        conv3x3(in_planes, out_planes),
        nn.BatchNorm2d(out_planes),
        nn.LeakyReLU(0.2),
    )


class ResBlock(nn.Module):
    """Residual block: x + [conv3x3(c, 2c), IN, GLU, conv3x3(c, c), IN](x)."""

    def __init__(self, channel_num: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            conv3x3(channel_num, channel_num * 2),
            nn.InstanceNorm2d(channel_num * 2),
            GLU(),
            conv3x3(channel_num, channel_num),
            nn.InstanceNorm2d(channel_num),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Add the block output to the input (no activation after the sum)."""
        return self.block(x) + x


class ACM(nn.Module):
    """Affine combination module: x * W(h) + b(h) with h = conv(img)."""

    def __init__(self, channel_num: int, img_dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.conv = conv3x3(img_dim, hidden)
        self.conv_weight = conv3x3(hidden, channel_num)
        self.conv_bias = conv3x3(hidden, channel_num)

    def forward(self, x: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        """Modulate x (B, channel_num, H, W) with image features img (B or 1, img_dim, H, W)."""
        h = self.conv(img)
        return x * self.conv_weight(h) + self.conv_bias(h)
