"""Generator and discriminator against the PyTorch restatement, compat switches on and off."""

import jax
import numpy as np
import pytest
import torch
from flax import traverse_util

from configs import bird
from jaxmani.models import registry
from tests.parity.conftest import (
    assert_close,
    convert_module,
    nchw,
    nhwc_to_torch,
    small_gan_config,
)
from third_party import lightweight_torch as lt

pytestmark = pytest.mark.parity

COMPAT_SWITCHES = (
    "attention_mask_other_sample",
    "channel_attention_batch_padding",
    "skip_init_bn_at_batch_one",
    "nearest_scale_index",
    "ca_noise_at_eval",
)


def torch_generator(config):
    """The PyTorch G with the same sizes and switches as `config`, seeded random weights."""
    model, compat = config.model, config.compat
    torch.manual_seed(0)
    module = lt.G_NET(
        gf_dim=model.g.gf_dim,
        z_dim=model.g.z_dim,
        condition_dim=model.g.condition_dim,
        embedding_dim=model.embedding_dim,
        r_num=model.g.r_num,
        **{name: bool(compat[name]) for name in COMPAT_SWITCHES},
    )
    module.apply(lt.weights_init)
    for norm in (module.h_net1.fc[1], module.imgUpSample2[1]):  # Non-trivial running stats.
        norm.running_mean.uniform_(-0.5, 0.5)
        norm.running_var.uniform_(0.5, 2.0)
    return module


def generator_inputs(config, batch, lengths, extra_columns):
    """Seeded inputs; PyTorch sees T = longest caption, jaxmani `extra_columns` more padding."""
    rng = np.random.default_rng(batch)
    e, t = config.model.embedding_dim, max(lengths)
    words = rng.standard_normal((batch, t, e)).astype(np.float32)
    mask = np.arange(t)[None, :] >= np.asarray(lengths)[:, None]
    words[mask] = 0.0  # The text encoder's outputs are exactly 0 at padding.
    return {
        "z": rng.standard_normal((batch, config.model.g.z_dim)).astype(np.float32),
        "sent_emb": rng.standard_normal((batch, e)).astype(np.float32),
        "words": words,
        "mask": mask,
        "cnn_code": rng.standard_normal((batch, e)).astype(np.float32),
        "region": rng.standard_normal((batch, 17, 17, e)).astype(np.float32),
        "vgg": np.abs(rng.standard_normal((batch, 128, 128, 128))).astype(np.float32),
        "ca_eps": rng.standard_normal((batch, config.model.g.condition_dim)).astype(np.float32),
        "extra": extra_columns,
    }


def run_torch(module, x, train):
    """PyTorch G forward on the inputs of `generator_inputs`.

    Without noise at eval, jaxmani's G ignores an injected eps and uses mu; the restatement always
    uses an injected eps, so it gets zeros there (c = mu + 0 * sigma).
    """
    module.train(train)
    eps = x["ca_eps"]
    if not train and not module.ca_net.ca_noise_at_eval:
        eps = np.zeros_like(eps)
    with torch.no_grad():
        images, attention, mu, logvar = module(
            torch.from_numpy(x["z"]),
            torch.from_numpy(x["sent_emb"]),
            torch.from_numpy(x["words"].transpose(0, 2, 1).copy()),
            torch.from_numpy(x["mask"]),
            torch.from_numpy(x["cnn_code"]),
            nhwc_to_torch(x["region"]),
            nhwc_to_torch(x["vgg"]),
            ca_eps=torch.from_numpy(eps),
        )
    return nchw(images[0]), nchw(attention[0]), mu.numpy(), logvar.numpy()


def run_jax(config, variables, x, train):
    """jaxmani G forward on the same inputs, with extra all-padding word columns appended."""
    pad = ((0, 0), (0, x["extra"]))
    outputs, updates = registry.create_network("generator", config).apply(
        variables,
        z=x["z"],
        sent_emb=x["sent_emb"],
        words_emb=np.pad(x["words"], (*pad, (0, 0))),
        mask=np.pad(x["mask"], pad, constant_values=True),
        cnn_code=x["cnn_code"],
        region_features=x["region"],
        vgg_features=x["vgg"],
        train=train,
        ca_eps=x["ca_eps"],
        mutable=["batch_stats"],
    )
    return outputs, updates


@pytest.mark.parametrize("compat", [False, True], ids=["clean", "upstream"])
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("batch", [1, 10])
def test_generator(tmp_path, compat, train, batch):
    config = small_gan_config(**{name: compat for name in COMPAT_SWITCHES})
    if batch == 1 and train and not compat:
        pytest.skip("PyTorch BatchNorm1d refuses one sample in train mode; upstream never does it")
    module = torch_generator(config)
    variables = convert_module(tmp_path, "generator", module, config)
    lengths = [1 + (7 * i) % 6 for i in range(batch)]
    lengths[0] = 6
    x = generator_inputs(config, batch, lengths, extra_columns=3)
    image, attention, mu, logvar = run_torch(module, x, train)
    outputs, updates = run_jax(config, variables, x, train)
    assert_close(outputs["image"], image)
    assert_close(outputs["attention"][..., : attention.shape[-1]], attention)
    assert_close(outputs["mu"], mu)
    assert_close(outputs["logvar"], logvar)
    if train:
        flat = traverse_util.flatten_dict(updates["batch_stats"], sep=".")
        assert_close(flat["h_net1.fc_bn.mean"], module.h_net1.fc[1].running_mean)
        assert_close(flat["h_net1.fc_bn.var"], module.h_net1.fc[1].running_var)
        assert_close(flat["imgUpSample2.bn.var"], module.imgUpSample2[1].running_var)


def test_compat_switches_change_generator_outputs(tmp_path):
    config = small_gan_config()
    variables = convert_module(tmp_path, "generator", torch_generator(config), config)
    x = generator_inputs(config, 4, [6, 2, 4, 1], extra_columns=0)
    clean = run_jax(config, variables, x, train=False)[0]["image"]
    for name in ("attention_mask_other_sample", "channel_attention_batch_padding"):
        switched = run_jax(small_gan_config(**{name: True}), variables, x, train=False)[0]
        assert float(np.max(np.abs(switched["image"] - clean))) > 1e-4, name


@pytest.mark.slow
def test_generator_bird_size_upstream(tmp_path):
    config = bird.get_config()
    for name in COMPAT_SWITCHES:
        config.compat[name] = True
    module = torch_generator(config)
    variables = convert_module(tmp_path, "generator", module, config)
    x = generator_inputs(config, 2, [5, 3], extra_columns=2)
    image, attention, _, _ = run_torch(module, x, train=False)
    outputs, _ = run_jax(config, variables, x, train=False)
    assert_close(outputs["image"], image)
    assert_close(outputs["attention"][..., :5], attention)


def torch_discriminator(df_dim, embedding_dim):
    """The PyTorch D with seeded orthogonal init."""
    torch.manual_seed(5)
    module = lt.D_NET256(df_dim=df_dim, embedding_dim=embedding_dim)
    module.apply(lt.weights_init)
    return module.train()


@pytest.mark.parametrize("size", ["small", "bird"])
def test_discriminator(tmp_path, size):
    config = small_gan_config() if size == "small" else bird.get_config()
    module = torch_discriminator(config.model.d.df_dim, config.model.embedding_dim)
    variables = convert_module(tmp_path, "discriminator", module, config)
    rng = np.random.default_rng(6)
    images = rng.uniform(-1, 1, (3, 256, 256, 3)).astype(np.float32)
    sentence = rng.standard_normal((3, config.model.embedding_dim)).astype(np.float32)
    with torch.no_grad():
        features = module(nhwc_to_torch(images))
        cond = module.COND_DNET(features, torch.from_numpy(sentence))
        uncond = module.UNCOND_DNET(features)
    (cond_logits, uncond_logits), _ = registry.create_network("discriminator", config).apply(
        variables,
        images,
        sentence,
        train=True,
        mutable=["batch_stats"],
        method=registry.apply_fn("discriminator"),
    )
    assert_close(jax.nn.sigmoid(cond_logits), cond)
    assert_close(jax.nn.sigmoid(uncond_logits), uncond)
