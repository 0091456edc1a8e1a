"""Encoders, VGG and both Inception variants against PyTorch with seeded random weights."""

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torchvision
from pytorch_fid import inception as fid_blocks

from configs import bird
from jaxmani.models import registry
from tests.parity.conftest import (
    assert_close,
    condition_weights,
    convert_module,
    nchw,
)
from third_party import lightweight_torch as lt

pytestmark = pytest.mark.parity


def test_text_encoder_mixed_lengths(tmp_path):
    config = bird.get_config()
    config.model.text.vocab_size = 97
    torch.manual_seed(0)
    module = lt.RNN_ENCODER(97).eval()
    lengths = np.array([9, 7, 4, 1], np.int32)
    rng = np.random.default_rng(0)
    tokens = np.zeros((4, 9), np.int64)
    for i, n in enumerate(lengths):
        tokens[i, :n] = rng.integers(1, 97, n)
    with torch.no_grad():
        words, sentence = module(
            torch.from_numpy(tokens), torch.from_numpy(lengths.astype(np.int64))
        )
    variables = convert_module(tmp_path, "text_encoder", module, config)
    padded = np.pad(tokens, ((0, 0), (0, 3))).astype(np.int32)
    ours_words, ours_sentence = registry.create_network("text_encoder", config).apply(
        variables, padded, lengths
    )
    assert_close(ours_words[:, :9], words.numpy().transpose(0, 2, 1))
    assert_close(ours_words[:, 9:], np.zeros((4, 3, 256)))
    assert_close(ours_sentence, sentence)


def test_image_encoder(tmp_path):
    config = bird.get_config()
    torch.manual_seed(1)
    module = condition_weights(lt.CNN_ENCODER(256), seed=1)
    images = torch.rand(2, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        region, code = module(images)
    variables = convert_module(tmp_path, "image_encoder", module, config)
    ours_region, ours_code = registry.create_network("image_encoder", config).apply(
        variables, nchw(images)
    )
    assert_close(ours_region, nchw(region))
    assert_close(ours_code, code)


def test_vgg_against_torchvision_vgg16(tmp_path):
    config = bird.get_config()
    torch.manual_seed(2)
    vgg16 = torchvision.models.vgg16(weights=None).eval()
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        expected = vgg16.features[:9](images)
    variables = convert_module(tmp_path, "vgg", vgg16, config)
    ours = registry.create_network("vgg", config).apply(variables, nchw(images))
    assert_close(ours, nchw(expected))


def test_restated_vgg_matches_torchvision_slice():
    torch.manual_seed(3)
    module = lt.VGGNet().eval()
    images = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(module(images), module.vgg[:9](images))


def fid_inception_without_download():
    """pytorch-fid's FID Inception assembled from its public blocks, random weights."""
    net = torchvision.models.inception_v3(
        weights=None, num_classes=1008, aux_logits=False, init_weights=True
    )
    net.Mixed_5b = fid_blocks.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = fid_blocks.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = fid_blocks.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = fid_blocks.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = fid_blocks.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = fid_blocks.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = fid_blocks.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = fid_blocks.FIDInceptionE_1(1280)
    net.Mixed_7c = fid_blocks.FIDInceptionE_2(2048)
    return net


@pytest.mark.parametrize("network", ["inception", "fid_inception"])
def test_inception_variants(tmp_path, network):
    config = bird.get_config()
    torch.manual_seed(4)
    if network == "inception":
        module = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True)
    else:
        module = fid_inception_without_download()
    condition_weights(module, seed=4)
    images = torch.rand(2, 3, 299, 299) * 2 - 1
    pooled = {}
    module.avgpool.register_forward_hook(lambda m, i, o: pooled.setdefault("pool", o.flatten(1)))
    with torch.no_grad():
        logits = module(images)
    variables = convert_module(tmp_path, network, module, config)
    ours = registry.create_network(network, config).apply(variables, jnp.asarray(nchw(images)))
    assert_close(ours["pool"], pooled["pool"])
    assert_close(ours["logits"], logits)
