"""Generator G_NET and its stages (upstream model.py, seed changes behind switches), NCHW."""

import torch
from torch import nn

from third_party.lightweight_torch.attention import ChannelAttention, SpatialAttention
from third_party.lightweight_torch.blocks import (
    ACM,
    GLU,
    ResBlock,
    conv3x3,
    downBlock,
    imgUpBlock,
    upBlock,
)

VGG_CHANNELS = 128
INIT_SIZE = 32
NEXT_SIZE = 64


class CA_NET(nn.Module):  # noqa: N801
    """Conditioning augmentation: sentence -> (c, mu, logvar), c = mu + eps * exp(logvar / 2).

    ``ca_noise_at_eval=True`` is upstream (eps is drawn in eval mode too); False gives c = mu
    in eval mode. An injected ``eps`` is always used when given.
    """

    def __init__(self, t_dim: int, c_dim: int, ca_noise_at_eval: bool = True) -> None:
        super().__init__()
        self.c_dim = c_dim
        self.ca_noise_at_eval = ca_noise_at_eval
        self.fc = nn.Linear(t_dim, c_dim * 4, bias=True)
        self.relu = GLU()

    def forward(
        self, text: torch.Tensor, eps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return c_code, mu, logvar, each (B, c_dim)."""
        x = self.relu(self.fc(text))
        mu, logvar = x[:, : self.c_dim], x[:, self.c_dim :]
        if eps is None:
            if not (self.training or self.ca_noise_at_eval):
                return mu, mu, logvar
            eps = torch.randn_like(mu)
        return mu + eps * torch.exp(0.5 * logvar), mu, logvar


class INIT_STAGE_G(nn.Module):  # noqa: N801
    """First stage: code vector -> 4x4 -> 32x32 with attention and ACM -> 64x64.

    ``skip_init_bn_at_batch_one=True`` is the seed: the fc BatchNorm is skipped when the batch
    size is 1, in train and eval mode.
    """

    def __init__(
        self,
        ngf: int,
        ncf: int,
        nef: int,
        z_dim: int,
        r_num: int,
        img_dim: int,
        attention_mask_other_sample: bool = True,
        channel_attention_batch_padding: bool = True,
        skip_init_bn_at_batch_one: bool = False,
    ) -> None:
        super().__init__()
        self.gf_dim = ngf
        self.skip_init_bn_at_batch_one = skip_init_bn_at_batch_one
        width = ngf // 8 * 3
        self.fc = nn.Sequential(
            nn.Linear(ncf + z_dim + nef, ngf * 4 * 4 * 2, bias=False),
            nn.BatchNorm1d(ngf * 4 * 4 * 2),
            GLU(),
        )
        self.upsample1 = upBlock(ngf, ngf // 2)
        self.upsample2 = upBlock(ngf // 2, ngf // 4)
        self.upsample3 = upBlock(ngf // 4, ngf // 8)
        self.upsample4 = upBlock(width, ngf // 16)
        self.residual = nn.Sequential(*[ResBlock(width) for _ in range(r_num)])
        self.ACM = ACM(width, img_dim)
        self.att = SpatialAttention(ngf // 8, nef, attention_mask_other_sample)
        self.channel_att = ChannelAttention(
            ngf // 8, nef, INIT_SIZE, channel_attention_batch_padding
        )

    def _fc(self, code: torch.Tensor) -> torch.Tensor:
        """Linear, BatchNorm1d (unless skipped at batch 1), GLU."""
        if self.skip_init_bn_at_batch_one and code.size(0) == 1:
            return self.fc[2](self.fc[0](code))
        return self.fc(code)

    def forward(
        self,
        z_code: torch.Tensor,
        c_code: torch.Tensor,
        cnn_code: torch.Tensor,
        word_embs: torch.Tensor,
        mask: torch.Tensor | None,
        img_code32: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return h_code1 (B, ngf/16, 64, 64) and the attention map (B, T, 32, 32)."""
        cnn_code = cnn_code.expand(c_code.size(0), -1)
        out = self._fc(torch.cat((c_code, z_code, cnn_code), dim=1))
        out = out.view(-1, self.gf_dim, 4, 4)
        out_code32 = self.upsample3(self.upsample2(self.upsample1(out)))
        c_code_s, att = self.att(out_code32, word_embs, mask)
        c_code_channel, _ = self.channel_att(c_code_s, word_embs, mask)
        h = torch.cat((out_code32, c_code_s, c_code_channel), dim=1)
        h = self.residual(self.ACM(h, img_code32))
        return self.upsample4(h), att


class NEXT_STAGE_G(nn.Module):  # noqa: N801
    """Second stage: 64x64 with attention and ACM -> 256x256."""

    def __init__(
        self,
        ngf: int,
        nef: int,
        r_num: int,
        size: int,
        attention_mask_other_sample: bool = True,
        channel_attention_batch_padding: bool = True,
    ) -> None:
        super().__init__()
        width = ngf * 3
        self.att = SpatialAttention(ngf, nef, attention_mask_other_sample)
        self.channel_att = ChannelAttention(ngf, nef, size, channel_attention_batch_padding)
        self.residual = nn.Sequential(*[ResBlock(width) for _ in range(r_num)])
        self.upsample = upBlock(width, ngf)
        self.ACM = ACM(width, ngf)
        self.upsample2 = upBlock(ngf, ngf)

    def forward(
        self,
        h_code: torch.Tensor,
        word_embs: torch.Tensor,
        mask: torch.Tensor | None,
        img_code: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return h_code2 (B, ngf, 4H, 4W) and the attention map (B, T, H, W)."""
        c_code, att = self.att(h_code, word_embs, mask)
        c_code_channel, _ = self.channel_att(c_code, word_embs, mask)
        h = torch.cat((h_code, c_code, c_code_channel), dim=1)
        h = self.residual(self.ACM(h, img_code))
        return self.upsample2(self.upsample(h)), att


class GET_IMAGE_G(nn.Module):  # noqa: N801
    """Output head: conv3x3 to RGB, tanh."""

    def __init__(self, ngf: int) -> None:
        super().__init__()
        self.img = nn.Sequential(conv3x3(ngf, 3), nn.Tanh())

    def forward(self, h_code: torch.Tensor) -> torch.Tensor:
        """(B, ngf, H, W) -> (B, 3, H, W) in [-1, 1]."""
        return self.img(h_code)


class G_NET(nn.Module):  # noqa: N801
    """Lightweight manipulation generator producing one 256x256 image.

    Defaults are the bird config and upstream behaviour; see the README for the switches.
    """

    def __init__(
        self,
        gf_dim: int = 32,
        z_dim: int = 100,
        condition_dim: int = 100,
        embedding_dim: int = 256,
        r_num: int = 2,
        *,
        attention_mask_other_sample: bool = True,
        channel_attention_batch_padding: bool = True,
        skip_init_bn_at_batch_one: bool = False,
        nearest_scale_index: bool = True,
        ca_noise_at_eval: bool = True,
    ) -> None:
        super().__init__()
        attention = {
            "attention_mask_other_sample": attention_mask_other_sample,
            "channel_attention_batch_padding": channel_attention_batch_padding,
        }
        self.ca_net = CA_NET(embedding_dim, condition_dim, ca_noise_at_eval)
        self.h_net1 = INIT_STAGE_G(
            gf_dim * 16,
            condition_dim,
            embedding_dim,
            z_dim,
            r_num,
            gf_dim,
            skip_init_bn_at_batch_one=skip_init_bn_at_batch_one,
            **attention,
        )
        self.imgUpSample1 = imgUpBlock(embedding_dim, gf_dim, nearest_scale_index)
        self.h_net3 = NEXT_STAGE_G(gf_dim, embedding_dim, r_num, NEXT_SIZE, **attention)
        self.img_net = GET_IMAGE_G(gf_dim)
        self.ACM = ACM(gf_dim, gf_dim)
        self.imgUpSample2 = downBlock(VGG_CHANNELS, gf_dim)
        self.imgUpSample3 = upBlock(gf_dim, gf_dim)
        self.imgUpSample4 = upBlock(gf_dim, gf_dim)

    def forward(
        self,
        z_code: torch.Tensor,
        sent_emb: torch.Tensor,
        word_embs: torch.Tensor,
        mask: torch.Tensor | None,
        cnn_code: torch.Tensor,
        region_features: torch.Tensor,
        vgg_features: torch.Tensor,
        ca_eps: torch.Tensor | None = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Generate from noise, text, image codes and VGG features.

        Args:
          z_code: (B, z_dim) noise.
          sent_emb: (B, nef) sentence embedding.
          word_embs: (B, nef, T) word embeddings, zero past each caption's length.
          mask: (B, T) bool, True at padding words, or None.
          cnn_code: (B or 1, nef) global image code.
          region_features: (B or 1, nef, 17, 17) image region features.
          vgg_features: (B or 1, 128, 128, 128) VGG relu2_2 features.
          ca_eps: (B, condition_dim) conditioning noise; drawn inside when None.

        Returns:
          [fake image (B, 3, 256, 256)], [attention (B, T, 64, 64)], mu, logvar.
        """
        c_code, mu, logvar = self.ca_net(sent_emb, ca_eps)
        img_code32 = self.imgUpSample1(region_features)
        h_code1, _ = self.h_net1(z_code, c_code, cnn_code, word_embs, mask, img_code32)
        img_code64 = self.imgUpSample2(vgg_features)
        h_code2, att2 = self.h_net3(h_code1, word_embs, mask, img_code64)
        img_code256 = self.imgUpSample4(self.imgUpSample3(img_code64))
        fake_img = self.img_net(self.ACM(h_code2, img_code256))
        return [fake_img], [att2], mu, logvar
