"""Name rules from PyTorch state-dict keys to jaxmani's flax module paths, per network.

Each network has an ordered list of regex substitutions applied to the key without its last part
(weight, bias, running_mean, ...), and patterns of keys that are read but deliberately not used
(for example the classifier of torchvision's VGG16, of which jaxmani only keeps up to relu2_2).
"""

import re

_UPSAMPLE_CONV = (r"(upsample\d*|imgUpSample[134])\.1$", r"\1.conv")
_SEQ_CONV_BN = (
    (r"^(imgUpSample2|img_code_s32|img_code_s64|img_code_s64_1|img_code_s64_2)\.0$", r"\1.conv"),
    (r"^(imgUpSample2|img_code_s32|img_code_s64|img_code_s64_1|img_code_s64_2)\.1$", r"\1.bn"),
)

RENAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "generator": (
        (r"^h_net1\.fc\.0$", "h_net1.fc"),
        (r"^h_net1\.fc\.1$", "h_net1.fc_bn"),
        _UPSAMPLE_CONV,
        *_SEQ_CONV_BN,
        (r"residual\.(\d+)\.block\.0$", r"residual_\1.conv1"),
        (r"residual\.(\d+)\.block\.3$", r"residual_\1.conv2"),
        (r"^img_net\.img\.0$", "img_net.conv"),
    ),
    "discriminator": (
        *_SEQ_CONV_BN,
        (r"^img_code_s16\.0$", "img_code_s16.conv1"),
        (r"^img_code_s16\.2$", "img_code_s16.conv2"),
        (r"^img_code_s16\.3$", "img_code_s16.bn2"),
        (r"^img_code_s16\.5$", "img_code_s16.conv3"),
        (r"^img_code_s16\.6$", "img_code_s16.bn3"),
        (r"^img_code_s16\.8$", "img_code_s16.conv4"),
        (r"^img_code_s16\.9$", "img_code_s16.bn4"),
        (r"^COND_DNET\.jointConv\.0$", "COND_DNET.jointConv.conv"),
        (r"^COND_DNET\.jointConv\.1$", "COND_DNET.jointConv.bn"),
        (r"\.outlogits\.0$", ".outlogits"),
    ),
    "text_encoder": (),
    "image_encoder": ((r"^(?!emb_)", "trunk."),),
    "vgg": (  # torchvision's vgg16 keys features.N, upstream VGGNet's module keys vgg.N.
        (r"^(features|vgg)\.0$", "conv1_1"),
        (r"^(features|vgg)\.2$", "conv1_2"),
        (r"^(features|vgg)\.5$", "conv2_1"),
        (r"^(features|vgg)\.7$", "conv2_2"),
    ),
    "inception": (),
    "fid_inception": (),
}

IGNORED: dict[str, tuple[str, ...]] = {
    "vgg": (r"^(features|vgg)\.(1\d|2\d|3\d)\.", r"^classifier\."),
    "inception": (r"^AuxLogits\.",),
}

_LSTM = re.compile(r"^rnn\.(weight_ih|weight_hh|bias_ih|bias_hh)_l0(_reverse)?$")
_LSTM_NAMES = {"weight_ih": "w_ih", "weight_hh": "w_hh", "bias_ih": "b_ih", "bias_hh": "b_hh"}
_LEAF = {"running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}


def is_ignored(network: str, key: str) -> bool:
    """Whether `key` is a tensor that network `network` reads but deliberately drops."""
    return key.endswith(".num_batches_tracked") or any(
        re.search(pattern, key) for pattern in IGNORED.get(network, ())
    )


def flax_path(network: str, key: str, ndim: int) -> tuple[str, tuple[str, ...]]:
    """Maps a PyTorch key and its tensor rank to (collection, flax path)."""
    lstm = _LSTM.match(key)
    if lstm:
        direction = "backward" if lstm.group(2) else "forward"
        return "params", (direction, _LSTM_NAMES[lstm.group(1)])
    if key == "encoder.weight" and network == "text_encoder":
        return "params", ("encoder", "embedding")
    module, _, leaf = key.rpartition(".")
    for pattern, replacement in RENAMES[network]:
        module = re.sub(pattern, replacement, module)
    path = tuple(module.split("."))
    if leaf in _LEAF:
        collection, name = _LEAF[leaf]
        return collection, (*path, name)
    if leaf == "weight":
        return "params", (*path, "scale" if ndim == 1 else "kernel")
    return "params", (*path, leaf)
