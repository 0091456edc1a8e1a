"""Strict conversion: wrong, truncated, unsafe or foreign checkpoints give one clear error."""

import os
import pickle
import re

import numpy as np
import pytest
from flax import traverse_util

torch = pytest.importorskip("torch")

from configs import tiny  # noqa: E402
from jaxmani import params_io  # noqa: E402
from jaxmani.convert import converter, torch_io  # noqa: E402
from jaxmani.errors import UserError  # noqa: E402
from third_party import lightweight_torch as lt  # noqa: E402

# torchvision vgg16 `features` index -> (out, in) channels of its 3x3 conv (BASELINE_SPEC §3.4).
VGG_CONVS = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128)}


def text_encoder(config):
    """A seeded PyTorch text encoder sized by `config`."""
    torch.manual_seed(0)
    model = config.model
    return lt.RNN_ENCODER(
        model.text.vocab_size, ninput=model.text.word_dim, nhidden=model.embedding_dim
    )


def vgg_state(prefix: str) -> dict:
    """A seeded VGG16 state dict with keys `<prefix>.N.weight`, including an unused layer."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    for index, (out, inp) in {**VGG_CONVS, 28: (512, 512)}.items():
        state[f"{prefix}.{index}.weight"] = torch.randn(out, inp, 3, 3, generator=generator)
        state[f"{prefix}.{index}.bias"] = torch.randn(out, generator=generator)
    return state


@pytest.fixture
def config():
    return tiny.get_config()


def save(tmp_path, obj, name="model.pth", legacy=False):
    path = tmp_path / name
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return str(path)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_round_trip_keeps_every_value(tmp_path, config, legacy):
    module = text_encoder(config)
    src = save(tmp_path, module.state_dict(), legacy=legacy)
    dst = str(tmp_path / "out.msgpack")
    converter.convert_file("text_encoder", src, dst, config)
    variables = params_io.load_variables(dst, "text_encoder", config)
    state = module.state_dict()
    np.testing.assert_array_equal(
        variables["params"]["encoder"]["embedding"], state["encoder.weight"].numpy()
    )
    np.testing.assert_array_equal(
        variables["params"]["backward"]["w_hh"], state["rnn.weight_hh_l0_reverse"].numpy().T
    )


def test_nested_key(tmp_path, config):
    src = save(tmp_path, {"netG": {}, "text": text_encoder(config).state_dict()})
    with pytest.raises(UserError, match="--key"):
        torch_io.read_state_dict(src)
    assert "encoder.weight" in torch_io.read_state_dict(src, key="text")
    with pytest.raises(UserError, match="no entry 'nope'"):
        torch_io.read_state_dict(src, key="nope")


def test_truncated_file_names_the_file(tmp_path, config):
    src = save(tmp_path, text_encoder(config).state_dict())
    with open(src, "r+b") as f:
        f.truncate(os.path.getsize(src) // 2)
    with pytest.raises(UserError, match=f"^{re.escape(src)}: not a loadable PyTorch checkpoint"):
        converter.convert_file("text_encoder", src, str(tmp_path / "out.msgpack"), config)
    assert not os.path.exists(tmp_path / "out.msgpack")


class RunsCode:
    """A pickle payload that would create a file if it were ever unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoint_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "ran"
    src = tmp_path / "evil.pth"
    with open(src, "wb") as f:
        pickle.dump({"weight": RunsCode(str(marker))}, f)
    with pytest.raises(UserError, match=r"evil\.pth: not a loadable PyTorch checkpoint"):
        torch_io.read_state_dict(str(src))
    assert not marker.exists()


def test_checkpoint_of_another_network(tmp_path, config):
    src = save(tmp_path, text_encoder(config).state_dict())
    with pytest.raises(UserError) as error:
        converter.convert_file("vgg", src, str(tmp_path / "out.msgpack"), config)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{src}: does not fit network 'vgg'")
    assert "unexpected (9): encoder.weight" in message
    assert "missing (8): params/conv1_1/bias" in message


def test_misshaped_and_missing_parameters(tmp_path, config):
    state = text_encoder(config).state_dict()
    del state["rnn.bias_hh_l0"]
    src = save(tmp_path, state)
    config.model.text.vocab_size = 65
    with pytest.raises(UserError) as error:
        converter.convert_file("text_encoder", src, str(tmp_path / "out.msgpack"), config)
    message = str(error.value)
    assert "missing (1): params/forward/b_hh" in message
    assert "mis-shaped (1): params/encoder/embedding (64, 12)!=(65, 12)" in message


def test_unknown_network_and_missing_file(tmp_path, config):
    with pytest.raises(UserError, match="unknown network 'gen'; choose one of generator"):
        converter.convert_file("gen", "a.pth", "b.msgpack", config)
    with pytest.raises(UserError, match="no such file"):
        converter.convert_file("generator", str(tmp_path / "a.pth"), "b.msgpack", config)


def test_params_file_checks(tmp_path, config):
    src = save(tmp_path, text_encoder(config).state_dict())
    dst = str(tmp_path / "text.msgpack")
    converter.convert_file("text_encoder", src, dst, config)
    with pytest.raises(UserError, match="holds network 'text_encoder', not 'vgg'"):
        params_io.load_variables(dst, "vgg", config)
    with pytest.raises(UserError, match="jaxmani convert --network=vgg"):
        params_io.load_variables(str(tmp_path / "none.msgpack"), "vgg", config)
    with pytest.raises(UserError, match="not a jaxmani params file"):
        params_io.load_variables(src, "text_encoder", config)
    config.model.embedding_dim = 8
    with pytest.raises(UserError, match="mis-shaped"):
        params_io.load_variables(dst, "text_encoder", config)


def test_vgg_prefix_of_upstream_vggnet(tmp_path, config):
    """Upstream VGGNet keys vgg.N.* convert exactly like torchvision's features.N.*."""
    torchvision = converter.convert_file(
        "vgg", save(tmp_path, vgg_state("features")), str(tmp_path / "a.msgpack"), config
    )
    upstream = converter.convert_file(
        "vgg", save(tmp_path, vgg_state("vgg"), "vgg.pth"), str(tmp_path / "b.msgpack"), config
    )
    flat_a, flat_b = traverse_util.flatten_dict(torchvision), traverse_util.flatten_dict(upstream)
    assert sorted(flat_a) == sorted(flat_b)
    assert len(flat_a) == 2 * len(VGG_CONVS)
    for name in flat_a:
        np.testing.assert_array_equal(flat_a[name], flat_b[name])
    state = vgg_state("vgg")["vgg.5.weight"].numpy()
    np.testing.assert_array_equal(
        upstream["params"]["conv2_1"]["kernel"], state.transpose(2, 3, 1, 0)
    )


def test_two_keys_for_one_parameter(tmp_path, config):
    src = save(tmp_path, {**vgg_state("features"), "vgg.0.weight": torch.zeros(64, 3, 3, 3)})
    message = "features.0.weight and vgg.0.weight both give params/conv1_1/kernel; keep one"
    with pytest.raises(UserError, match=re.escape(message)):
        converter.convert_file("vgg", src, str(tmp_path / "out.msgpack"), config)
    assert not os.path.exists(tmp_path / "out.msgpack")
