"""Word-level spatial and channel attention (upstream attention.py), NCHW."""

import torch
from torch import nn

from third_party.lightweight_torch.blocks import conv1x1


def tile_mask_upstream(mask: torch.Tensor, query_len: int) -> torch.Tensor:
    """Upstream mask tiling: row (b, q) of the logits gets mask[(b * query_len + q) mod B].

    Args:
      mask: (B, T) bool, True marks padding.
      query_len: number of image locations per sample.

    Returns:
      (B, query_len, T) bool.
    """
    batch, words = mask.shape
    return mask.repeat(query_len, 1).view(batch, query_len, words)


class SpatialAttention(nn.Module):
    """Attention of every image location over the words of a caption.

    ``attention_mask_other_sample=True`` reproduces the upstream tiling of the padding mask
    (location q of sample b uses the mask of sample (b * H * W + q) mod B); False uses
    sample b's own mask everywhere.
    """

    def __init__(self, idf: int, cdf: int, attention_mask_other_sample: bool = True) -> None:
        super().__init__()
        self.conv_context = conv1x1(cdf, idf)
        self.attention_mask_other_sample = attention_mask_other_sample

    def forward(
        self, h: torch.Tensor, words: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend (B, idf, H, W) image features over (B, cdf, T) words.

        Returns:
          weighted context (B, idf, H, W) and attention map (B, T, H, W).
        """
        batch, idf, height, width = h.shape
        query_len = height * width
        source = self.conv_context(words.unsqueeze(3)).squeeze(3)
        logits = torch.bmm(h.reshape(batch, idf, query_len).transpose(1, 2), source)
        if mask is not None:
            logits = logits.masked_fill(self._logit_mask(mask, query_len), float("-inf"))
        attn = torch.softmax(logits, dim=-1).transpose(1, 2)
        context = torch.bmm(source, attn).view(batch, idf, height, width)
        return context, attn.reshape(batch, -1, height, width)

    def _logit_mask(self, mask: torch.Tensor, query_len: int) -> torch.Tensor:
        """(B, query_len, T) mask applied to the logits."""
        if self.attention_mask_other_sample:
            return tile_mask_upstream(mask, query_len)
        return mask.unsqueeze(1).expand(-1, query_len, -1)


class ChannelAttention(nn.Module):
    """Attention of every feature channel over the words, on the spatial-attention output.

    ``channel_attention_batch_padding=True`` is upstream: the softmax runs over all T columns
    (padding included, whose projected features are zero). False masks each sample's padding
    words to -inf.
    """

    def __init__(
        self, idf: int, cdf: int, size: int, channel_attention_batch_padding: bool = True
    ) -> None:
        super().__init__()
        self.conv_context = conv1x1(cdf, size * size)
        self.channel_attention_batch_padding = channel_attention_batch_padding

    def forward(
        self, context: torch.Tensor, words: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend the channels of (B, idf, size, size) over (B, cdf, T) words.

        Returns:
          channel context (B, idf, size, size) and attention (B, T, idf).
        """
        batch, idf, height, width = context.shape
        source = self.conv_context(words.unsqueeze(3)).squeeze(3)
        logits = torch.bmm(context.reshape(batch, idf, height * width), source)
        if mask is not None and not self.channel_attention_batch_padding:
            logits = logits.masked_fill(mask.unsqueeze(1), float("-inf"))
        attn = torch.softmax(logits, dim=-1).transpose(1, 2)
        out = torch.bmm(source, attn).transpose(1, 2)
        return out.reshape(batch, idf, height, width), attn
