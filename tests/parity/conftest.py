"""Shared helpers of the PyTorch parity tests: seeded torch modules -> converted flax variables."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from configs import tiny  # noqa: E402
from jaxmani import params_io  # noqa: E402
from jaxmani.convert import converter  # noqa: E402

TOLERANCE = 1e-4  # Max abs difference allowed between PyTorch and jaxmani outputs (float32).


def small_gan_config(**compat):
    """Bird architecture (256x256, Inception encoder) at reduced widths, with the given switches."""
    config = tiny.get_config()
    config.data.image_size = 256
    config.model.image.encoder = "inception"
    config.model.g.gf_dim = 8
    config.model.d.df_dim = 8
    config.model.embedding_dim = 32
    config.model.g.z_dim = 16
    config.model.g.condition_dim = 16
    config.model.g.r_num = 2
    for name, value in compat.items():
        config.compat[name] = value
    return config


def convert_module(tmp_path, network, module, config, legacy=False):
    """Saves `module`'s state dict with torch, converts it with jaxmani and loads it back."""
    src = tmp_path / f"{network}.pth"
    dst = tmp_path / f"{network}.msgpack"
    torch.save(module.state_dict(), src, _use_new_zipfile_serialization=not legacy)
    converter.convert_file(network, str(src), str(dst), config)
    return params_io.load_variables(str(dst), network, config)


def condition_weights(module, seed):
    """Seeded He-scaled weights and near-identity BatchNorm stats: activations stay O(1).

    Default initialisations with calibrated statistics make deep nets so ill-conditioned that
    PyTorch's own float32 result is 2e-3 away from float64; these weights keep both frameworks'
    rounding far below the parity tolerance, so the comparison measures implementation errors.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
                fan_in = m.weight[0].numel()
                m.weight.copy_(
                    torch.randn(m.weight.shape, generator=generator) * (2 / fan_in) ** 0.5
                )
                if m.bias is not None:
                    m.bias.copy_(torch.rand(m.bias.shape, generator=generator) * 0.2 - 0.1)
            elif isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                for tensor, (low, high) in (
                    (m.weight, (0.8, 1.2)),
                    (m.bias, (-0.1, 0.1)),
                    (m.running_mean, (-0.1, 0.1)),
                    (m.running_var, (0.8, 1.2)),
                ):
                    tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)
    return module.eval()


def nchw(x):
    """A torch NCHW tensor -> numpy NHWC."""
    return x.detach().numpy().transpose(0, 2, 3, 1)


def nhwc_to_torch(x):
    """A numpy NHWC array -> torch NCHW tensor."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2)))


def assert_close(actual, expected, tolerance=TOLERANCE):
    """Max abs difference within tolerance, reporting it on failure."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    diff = float(np.max(np.abs(actual - expected)))
    assert diff <= tolerance, f"max abs difference {diff:.3g} > {tolerance}"
