"""Frozen encoders: DAMSM text and image encoders (upstream model.py) and VGG-16 relu2_2."""

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import rnn as rnn_utils
from torchvision import models

from third_party.lightweight_torch.blocks import conv1x1

INCEPTION_SIZE = 299
INCEPTION_TRUNK = (
    "Conv2d_1a_3x3",
    "Conv2d_2a_3x3",
    "Conv2d_2b_3x3",
    "Conv2d_3b_1x1",
    "Conv2d_4a_3x3",
    "Mixed_5b",
    "Mixed_5c",
    "Mixed_5d",
    "Mixed_6a",
    "Mixed_6b",
    "Mixed_6c",
    "Mixed_6d",
    "Mixed_6e",
    "Mixed_7a",
    "Mixed_7b",
    "Mixed_7c",
)
VGG_RELU2_2 = 8


class RNN_ENCODER(nn.Module):  # noqa: N801
    """DAMSM text encoder: word embedding, input dropout, one-layer bidirectional LSTM."""

    def __init__(
        self,
        ntoken: int,
        ninput: int = 300,
        drop_prob: float = 0.5,
        nhidden: int = 256,
        nlayers: int = 1,
        bidirectional: bool = True,
    ) -> None:
        super().__init__()
        self.num_directions = 2 if bidirectional else 1
        self.nhidden = nhidden // self.num_directions
        self.nlayers = nlayers
        self.encoder = nn.Embedding(ntoken, ninput)
        self.drop = nn.Dropout(drop_prob)
        self.rnn = nn.LSTM(
            ninput,
            self.nhidden,
            nlayers,
            batch_first=True,
            dropout=drop_prob if nlayers > 1 else 0.0,
            bidirectional=bidirectional,
        )
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)

    def init_hidden(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero initial (h, c), each (layers * directions, B, nhidden per direction)."""
        shape = (self.nlayers * self.num_directions, batch, self.nhidden)
        weight = self.encoder.weight
        return weight.new_zeros(shape), weight.new_zeros(shape)

    def forward(
        self,
        captions: torch.Tensor,
        cap_lens: torch.Tensor,
        hidden: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode (B, T_in) int64 captions with lengths sorted in descending order.

        Returns:
          words (B, nhidden, T) with T = max(cap_lens) and exact zeros past each length, and
          sentence (B, nhidden) = [forward final state, backward final state].
        """
        if hidden is None:
            hidden = self.init_hidden(captions.size(0))
        emb = self.drop(self.encoder(captions))
        packed = rnn_utils.pack_padded_sequence(
            emb, cap_lens.detach().cpu().long(), batch_first=True, enforce_sorted=True
        )
        output, (h_n, _) = self.rnn(packed, hidden)
        output = rnn_utils.pad_packed_sequence(output, batch_first=True)[0]
        words = output.transpose(1, 2)
        sentence = h_n.transpose(0, 1).reshape(-1, self.nhidden * self.num_directions)
        return words, sentence


def resize_to_inception(x: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of NCHW images to 299x299 (align_corners False, no antialias)."""
    size = (INCEPTION_SIZE, INCEPTION_SIZE)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class CNN_ENCODER(nn.Module):  # noqa: N801
    """DAMSM image encoder: torchvision Inception-v3 trunk plus two projections to nef."""

    def __init__(self, nef: int = 256) -> None:
        super().__init__()
        inception = models.inception_v3(weights=None, aux_logits=False, init_weights=False)
        for name in INCEPTION_TRUNK:
            setattr(self, name, getattr(inception, name))
        self.emb_features = conv1x1(768, nef)
        self.emb_cnn_code = nn.Linear(2048, nef)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode [-1, 1] images of any size.

        Returns:
          region features (B, nef, 17, 17) and global code (B, nef).
        """
        x = resize_to_inception(x)
        x = self.Conv2d_1a_3x3(x)
        x = self.Conv2d_2a_3x3(x)
        x = self.Conv2d_2b_3x3(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_3b_1x1(x)
        x = self.Conv2d_4a_3x3(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))
        x = self.Mixed_6a(x)
        features = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(features)))
        pooled = F.avg_pool2d(x, kernel_size=8).flatten(1)
        return self.emb_features(features), self.emb_cnn_code(pooled)


class VGGNet(nn.Module):
    """torchvision VGG-16 ``features`` returning the relu2_2 activation (layer index 8)."""

    def __init__(self) -> None:
        super().__init__()
        self.vgg = models.vgg16(weights=None).features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) [-1, 1] images (no ImageNet normalisation) -> (B, 128, H/2, W/2)."""
        for layer in self.vgg[: VGG_RELU2_2 + 1]:
            x = layer(x)
        return x
