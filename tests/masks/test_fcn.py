"""Tests of jaxmani.masks.fcn on tiny hand-made ONNX graphs, and the ResNet-101 export parity."""

import pathlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from jaxmani.masks import fcn

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])
RED_THRESHOLD = (
    0.6  # The tiny graph calls a pixel "bird" where its red value (in [0, 1]) exceeds it.
)


def save_conv_graph(
    path: pathlib.Path,
    weight: np.ndarray,
    bias: np.ndarray,
    input_shape: list,
    output_shape: list,
) -> pathlib.Path:
    """Writes a graph of one 1x1 Conv with fixed weights, declaring the given I/O shapes."""
    graph = helper.make_graph(
        [helper.make_node("Conv", ["images", "w", "b"], ["logits"])],
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, output_shape)],
        [
            helper.make_tensor("w", TensorProto.FLOAT, weight.shape, weight.ravel().tolist()),
            helper.make_tensor("b", TensorProto.FLOAT, bias.shape, bias.ravel().tolist()),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def save_red_graph(path: pathlib.Path) -> pathlib.Path:
    """A 21-class graph in which class 3 wins where red > RED_THRESHOLD, class 0 elsewhere.

    Logit 3 is the normalised red channel minus the normalised threshold; logit 0 is 0; the others
    are -100. The weights are powers of two so that the comparison is exact in float32.
    """
    weight = np.zeros((21, 3, 1, 1), np.float32)
    bias = np.full(21, -100.0, np.float32)
    weight[3, 0] = 1.0
    bias[3] = np.float32(-(RED_THRESHOLD - MEAN[0]) / STD[0])
    bias[0] = 0.0
    dims = ["B", 3, "H", "W"], ["B", 21, "H", "W"]
    return save_conv_graph(path, weight, bias, *dims)


def interpolation_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out, in) matrix of PyTorch's bilinear align_corners=False taps, built one row at a time."""
    matrix = np.zeros((out_size, in_size))
    for i in range(out_size):
        x = max((i + 0.5) * in_size / out_size - 0.5, 0.0)
        left = min(int(x), in_size - 1)
        right = left + 1 if left < in_size - 1 else left
        matrix[i, left] += 1.0 - (x - left)
        matrix[i, right] += x - left
    return matrix


def resize_oracle(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Separable bilinear resize of (H, W[, C]) with the interpolation matrices."""
    rows = interpolation_matrix(array.shape[0], height)
    columns = interpolation_matrix(array.shape[1], width)
    resized = np.tensordot(rows, np.asarray(array, np.float64), axes=(1, 0))
    return np.moveaxis(np.tensordot(columns, resized, axes=(1, 1)), 0, 1)


def soft_background_oracle(image: np.ndarray, size: int = 224) -> np.ndarray:
    """The soft background map the red graph implies, through the steps of BASELINE_SPEC §6.3."""
    normalised = (resize_oracle(image / 255.0, size, size) - MEAN) / STD
    logit3 = normalised[..., 0].astype(np.float32) + np.float32(-(RED_THRESHOLD - MEAN[0]) / STD[0])
    bird = (logit3 > 0).astype(np.float64)
    return 1.0 - resize_oracle(bird, *image.shape[:2])


def assert_matches_oracle(mask: np.ndarray, image: np.ndarray) -> None:
    """`mask` is the thresholded oracle, except where the oracle is 0.5 up to rounding."""
    soft = soft_background_oracle(image)
    assert mask.dtype == np.uint8 and mask.shape == image.shape[:2]
    decided = np.abs(soft - 0.5) > 1e-9
    np.testing.assert_array_equal(mask[decided], (soft[decided] > 0.5).astype(np.uint8))
    assert decided.mean() > 0.9


def smooth_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An RGB uint8 image with a red blob and noise: mixed bird and background after the graph."""
    y, x = np.mgrid[0:height, 0:width]
    blob = np.exp(
        -(((y - 0.4 * height) / (0.25 * height)) ** 2 + ((x - 0.6 * width) / (0.3 * width)) ** 2)
    )
    red = 255 * blob + rng.normal(0, 20, (height, width))
    others = rng.integers(0, 256, (height, width, 2))
    image = np.concatenate([red[..., None], others], axis=-1)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def red_graph(tmp_path_factory) -> pathlib.Path:
    """The red-threshold graph, written once for the module."""
    return save_red_graph(tmp_path_factory.mktemp("graphs") / "red.onnx")


@pytest.mark.parametrize(
    ("in_shape", "out_shape"),
    [((256, 256), (224, 224)), ((224, 224), (256, 256)), ((37, 50), (224, 224)), ((7, 3), (2, 9))],
)
def test_resize_bilinear_matches_interpolation_matrices(in_shape, out_shape):
    image = np.random.default_rng(0).uniform(0, 1, (*in_shape, 3))
    np.testing.assert_allclose(
        fcn.resize_bilinear(image, *out_shape), resize_oracle(image, *out_shape), atol=1e-12
    )


def test_resize_bilinear_closed_form_values():
    row = np.array([[0.0, 10.0, 20.0, 30.0]])
    # Downsampling 4 -> 2 takes the midpoints of pixel pairs (sources 0.5 and 2.5), no antialias.
    np.testing.assert_allclose(fcn.resize_bilinear(row, 1, 2), [[5.0, 25.0]])
    # Upsampling 2 -> 4: sources -0.25 (clamped to 0), 0.25, 0.75, 1.25 (capped at the last pixel).
    np.testing.assert_allclose(fcn.resize_bilinear(row[:, ::2], 1, 4), [[0.0, 5.0, 15.0, 20.0]])


@pytest.mark.parametrize(
    ("in_shape", "out_shape"),
    [((256, 256), (224, 224)), ((31, 45), (224, 224)), ((224, 224), (97, 60))],
)
def test_resize_bilinear_matches_torch_interpolate(in_shape, out_shape):
    torch = pytest.importorskip("torch")
    image = np.random.default_rng(1).uniform(0, 1, (*in_shape, 3))
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(image.transpose(2, 0, 1)[None]),
        size=out_shape,
        mode="bilinear",
        align_corners=False,
    )
    np.testing.assert_allclose(
        fcn.resize_bilinear(image, *out_shape), expected[0].numpy().transpose(1, 2, 0), atol=1e-12
    )


def test_preprocess_normalises_resized_image():
    image = np.random.default_rng(2).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    expected = (resize_oracle(image / 255.0, 224, 224) - MEAN) / STD
    result = fcn.preprocess(image)
    assert result.dtype == np.float32 and result.shape == (224, 224, 3)
    np.testing.assert_allclose(result, expected, atol=1e-6)


def test_background_masks_match_hand_computed_pipeline(red_graph):
    rng = np.random.default_rng(3)
    shapes = [(60, 80), (300, 256), (224, 224), (31, 45), (90, 90)]
    images = [smooth_image(rng, *shape) for shape in shapes]
    masks = fcn.FcnMasker(red_graph, batch_size=2).background_masks(images)
    for image, mask in zip(images, masks, strict=True):
        assert_matches_oracle(mask, image)
        assert 0.05 < mask.mean() < 0.95


def test_background_masks_do_not_depend_on_batch_size(red_graph):
    rng = np.random.default_rng(4)
    images = [smooth_image(rng, 20 + 7 * i, 30 + 5 * i) for i in range(5)]
    one = fcn.FcnMasker(red_graph, batch_size=1).background_masks(images)
    three = fcn.FcnMasker(red_graph, batch_size=3).background_masks(images, progress=True)
    for a, b in zip(one, three, strict=True):
        np.testing.assert_array_equal(a, b)


def test_background_from_classes_inverts_and_thresholds_soft_resize():
    classes = np.zeros((4, 4), np.int64)
    classes[:, 2:] = fcn.BIRD_CLASS
    classes[0, 0] = 5
    # Upsampling 4 -> 8 columns: the soft bird map is 0, 0, 0, .25, .75, 1, 1, 1 on every row.
    expected = np.tile(np.array([1, 1, 1, 1, 0, 0, 0, 0], np.uint8), (8, 1))
    np.testing.assert_array_equal(fcn.background_from_classes(classes, 8, 8), expected)


def test_masker_logits_are_nhwc(red_graph):
    inputs = np.random.default_rng(5).normal(size=(3, 5, 7, 3)).astype(np.float32)
    logits = fcn.FcnMasker(red_graph, batch_size=2).logits(inputs)
    assert logits.shape == (3, 5, 7, 21)
    red_logit = inputs[..., 0] - (RED_THRESHOLD - MEAN[0]) / STD[0]
    np.testing.assert_allclose(logits[..., 3], red_logit, atol=1e-6)
    np.testing.assert_array_equal(logits[..., 0], 0.0)


def test_missing_file_names_it_and_the_export_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent\.onnx.*third_party\.fcn_onnx\.export"):
        fcn.FcnMasker(tmp_path / "absent.onnx")


def test_unreadable_file_is_refused(tmp_path):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"not a protobuf at all" * 10)
    with pytest.raises(ValueError, match=r"garbage\.onnx is not a readable ONNX graph"):
        fcn.FcnMasker(path)


def test_graph_with_ten_classes_is_refused(tmp_path):
    path = save_conv_graph(
        tmp_path / "ten.onnx",
        np.ones((10, 3, 1, 1), np.float32),
        np.zeros(10, np.float32),
        ["B", 3, "H", "W"],
        ["B", 10, "H", "W"],
    )
    with pytest.raises(ValueError, match=r"ten\.onnx is not an FCN graph"):
        fcn.FcnMasker(path)


def test_graph_with_rank_two_input_is_refused(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["images", "w", "b"], ["logits"], transB=1)],
        "flat",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["B", 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", 21])],
        [
            helper.make_tensor("w", TensorProto.FLOAT, (21, 3), [1.0] * 63),
            helper.make_tensor("b", TensorProto.FLOAT, (21,), [0.0] * 21),
        ],
    )
    path = tmp_path / "flat.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(ValueError, match=r"flat\.onnx is not an FCN graph"):
        fcn.FcnMasker(path)


def test_symbolic_class_axis_is_checked_when_the_graph_runs(tmp_path):
    # Resize to the runtime shape of the conv output: shape inference cannot fix the class axis.
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["images", "w"], ["features"]),
            helper.make_node("Shape", ["features"], ["sizes"]),
            helper.make_node("Resize", ["features", "", "", "sizes"], ["logits"]),
        ],
        "symbolic",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["B", 3, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", "C", "H", "W"])],
        [helper.make_tensor("w", TensorProto.FLOAT, (10, 3, 1, 1), [1.0] * 30)],
    )
    path = tmp_path / "symbolic.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    masker = fcn.FcnMasker(path)
    with pytest.raises(ValueError, match=r"symbolic\.onnx: the graph returned logits \(1, 10"):
        masker.background_masks([np.zeros((8, 8, 3), np.uint8)])


def test_image_that_is_not_rgb_uint8_is_refused(red_graph):
    masker = fcn.FcnMasker(red_graph)
    with pytest.raises(ValueError, match="RGB uint8"):
        masker.background_masks([np.zeros((8, 8), np.uint8)])
    with pytest.raises(ValueError, match="RGB uint8"):
        masker.background_masks([np.zeros((8, 8, 3), np.float32)])


@pytest.mark.parity
def test_exported_resnet101_matches_torch(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    pytest.importorskip("onnxscript")
    from third_party.fcn_onnx import export

    torch.manual_seed(0)
    model = export.build_fcn().eval()
    weights = tmp_path / "fcn.pth"
    torch.save(model.state_dict(), weights)
    masker = fcn.FcnMasker(export.export_fcn(weights, tmp_path / "fcn.onnx"), input_size=64)
    rng = np.random.default_rng(6)
    images = [smooth_image(rng, 80, 70), smooth_image(rng, 50, 64)]
    inputs = np.stack([fcn.preprocess(image, 64) for image in images])
    with torch.no_grad():
        expected = model(torch.from_numpy(inputs.transpose(0, 3, 1, 2)))["out"].numpy()
    classes = np.argmax(masker.logits(inputs), axis=-1)
    expected_classes = np.argmax(expected, axis=1)
    assert len(np.unique(expected_classes)) > 1
    np.testing.assert_array_equal(classes, expected_classes)
