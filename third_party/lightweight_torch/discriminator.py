"""Discriminator D_NET256 with its sigmoid heads (upstream model.py, seed 4-channel option)."""

import torch
from torch import nn
from torch.nn import functional as F

from third_party.lightweight_torch.blocks import Block3x3_leakRelu, downBlock

LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))
SHARP_FLOOR = 0.5 / 255.0
SHARP_BOX = 5
SHARP_EPOCH = 50


def sharp_region_mask(x: torch.Tensor) -> torch.Tensor:
    """Seed SharpDetector mask: (B, C, H, W) image -> (B, 1, H, W) float in {0, 1}.

    grey = channel mean; |Laplacian| (zero padding 1); floored at 0.5/255; 5x5 box mean (zero
    padding 2); 1 where the result exceeds its per-image spatial mean.
    """
    grey = x.detach().mean(dim=1, keepdim=True)
    kernel = grey.new_tensor(LAPLACIAN).view(1, 1, 3, 3)
    sharp = F.conv2d(grey, kernel, padding=1).abs().clamp(min=SHARP_FLOOR)
    box = grey.new_full((1, 1, SHARP_BOX, SHARP_BOX), 1.0 / SHARP_BOX**2)
    smooth = F.conv2d(sharp, box, padding=SHARP_BOX // 2)
    return (smooth > smooth.mean(dim=(2, 3), keepdim=True)).to(x.dtype)


def encode_image_by_16times(in_channels: int, ndf: int) -> nn.Sequential:
    """Four stride-2 4x4 convs (BatchNorm after all but the first) with LeakyReLU(0.2)."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, ndf, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2),
    ]
    for scale in (1, 2, 4):
        layers += [
            nn.Conv2d(ndf * scale, ndf * scale * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * scale * 2),
            nn.LeakyReLU(0.2),
        ]
    return nn.Sequential(*layers)


class D_GET_LOGITS(nn.Module):  # noqa: N801
    """Discriminator head returning probabilities (B,); conditional when ``bcondition``."""

    def __init__(self, ndf: int, nef: int, bcondition: bool = False) -> None:
        super().__init__()
        self.ef_dim = nef
        self.bcondition = bcondition
        if bcondition:
            self.jointConv = Block3x3_leakRelu(ndf * 8 + nef, ndf * 8)
        self.outlogits = nn.Sequential(nn.Conv2d(ndf * 8, 1, kernel_size=4, stride=4), nn.Sigmoid())

    def forward(self, h_code: torch.Tensor, c_code: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 8 ndf, 4, 4) features (and (B, nef) sentence when conditional) -> (B,)."""
        if self.bcondition and c_code is not None:
            c_code = c_code.view(-1, self.ef_dim, 1, 1).repeat(1, 1, 4, 4)
            h_code = self.jointConv(torch.cat((h_code, c_code), dim=1))
        return self.outlogits(h_code).view(-1)


class D_NET256(nn.Module):  # noqa: N801
    """256x256 discriminator backbone with unconditional and conditional heads.

    ``use_sharp_region_mask=True`` is the seed's 4-channel mode: the stem takes 4 channels
    and forward appends ``sharp_region_mask(x)`` for epoch > 50, zeros otherwise.
    """

    def __init__(
        self,
        df_dim: int = 64,
        embedding_dim: int = 256,
        b_jcu: bool = True,
        *,
        use_sharp_region_mask: bool = False,
    ) -> None:
        super().__init__()
        ndf, nef = df_dim, embedding_dim
        self.use_sharp_region_mask = use_sharp_region_mask
        self.img_code_s16 = encode_image_by_16times(4 if use_sharp_region_mask else 3, ndf)
        self.img_code_s32 = downBlock(ndf * 8, ndf * 16)
        self.img_code_s64 = downBlock(ndf * 16, ndf * 32)
        self.img_code_s64_1 = Block3x3_leakRelu(ndf * 32, ndf * 16)
        self.img_code_s64_2 = Block3x3_leakRelu(ndf * 16, ndf * 8)
        self.UNCOND_DNET = D_GET_LOGITS(ndf, nef, bcondition=False) if b_jcu else None
        self.COND_DNET = D_GET_LOGITS(ndf, nef, bcondition=True)

    def forward(self, x: torch.Tensor, epoch: int = 0) -> torch.Tensor:
        """(B, 3, 256, 256) images -> (B, 8 ndf, 4, 4) features; epoch matters in 4-channel mode."""
        if self.use_sharp_region_mask:
            extra = sharp_region_mask(x) if epoch > SHARP_EPOCH else x.new_zeros(x[:, :1].shape)
            x = torch.cat((x, extra), dim=1)
        x = self.img_code_s32(self.img_code_s16(x))
        x = self.img_code_s64(x)
        return self.img_code_s64_2(self.img_code_s64_1(x))
