"""PyTorch restatement of the Lightweight-Manipulation networks, state_dict-compatible."""

from third_party.lightweight_torch.attention import (
    ChannelAttention,
    SpatialAttention,
    tile_mask_upstream,
)
from third_party.lightweight_torch.blocks import (
    ACM,
    GLU,
    Block3x3_leakRelu,
    NearestScale,
    ResBlock,
    conv1x1,
    conv3x3,
    downBlock,
    imgUpBlock,
    upBlock,
)
from third_party.lightweight_torch.discriminator import (
    D_GET_LOGITS,
    D_NET256,
    encode_image_by_16times,
    sharp_region_mask,
)
from third_party.lightweight_torch.encoders import (
    CNN_ENCODER,
    RNN_ENCODER,
    VGGNet,
    resize_to_inception,
)
from third_party.lightweight_torch.generator import (
    CA_NET,
    G_NET,
    GET_IMAGE_G,
    INIT_STAGE_G,
    NEXT_STAGE_G,
)
from third_party.lightweight_torch.weights import weights_init

__all__ = [
    "ACM",
    "CA_NET",
    "CNN_ENCODER",
    "D_GET_LOGITS",
    "D_NET256",
    "GET_IMAGE_G",
    "GLU",
    "G_NET",
    "INIT_STAGE_G",
    "NEXT_STAGE_G",
    "RNN_ENCODER",
    "Block3x3_leakRelu",
    "ChannelAttention",
    "NearestScale",
    "ResBlock",
    "SpatialAttention",
    "VGGNet",
    "conv1x1",
    "conv3x3",
    "downBlock",
    "encode_image_by_16times",
    "imgUpBlock",
    "resize_to_inception",
    "sharp_region_mask",
    "tile_mask_upstream",
    "upBlock",
    "weights_init",
]
