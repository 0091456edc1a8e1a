"""FCN-ResNet101 background masks (BASELINE_SPEC §6.3), precomputed with onnxruntime on the CPU.

The graph is torchvision's `fcn_resnet101` exported by `third_party.fcn_onnx.export`: one float32
input (B, 3, H, W), ImageNet-normalised, and one output, the 'out' logits (B, 21, H, W) over the
Pascal-VOC classes (0 background, ..., 3 bird, ...). For every RGB uint8 image, of any size:

1. x01 = image / 255, resized to 224x224 bilinearly as PyTorch's `interpolate` with
   align_corners=False and no antialiasing (BASELINE_SPEC §7.1), then ImageNet-normalised;
2. the graph runs on batches of these inputs; the class of a pixel is the argmax of its logits;
3. the bird map (class == 3) is resized back to the image's own size with the same bilinear
   resize, giving soft values at the boundary, and thresholded at 0.5;
4. the result is inverted: uint8 (H, W), 1 = background, 0 = bird.

The seed computes the mask on the 256x256 training crop in every step and keeps the soft boundary of
step 3. jaxmani computes it once per stored image, at the stored resolution, and keeps it binary;
the input pipeline then crops, flips and resizes the mask bilinearly with the image, which makes the
boundary soft again at the training resolution.
"""

import os
import pathlib
from collections.abc import Sequence

import numpy as np
import onnxruntime
import tqdm
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

NUM_CLASSES = 21
BIRD_CLASS = 3
INPUT_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EXPORT_COMMAND = (
    "python -m third_party.fcn_onnx.export --weights=fcn_resnet101_coco-7ecb50ca.pth --out={path}"
)

_ORT_LOAD_ERRORS = (ort_errors.InvalidProtobuf, ort_errors.InvalidGraph, ort_errors.Fail)


def _axis_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Low and high source indices and the high tap's weight of each output position on one axis."""
    source = np.maximum((np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    return low, high, source - low


def resize_bilinear(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resizes (H, W) or (H, W, C) to (height, width) as PyTorch bilinear, align_corners=False.

    No antialiasing, also when downsampling; computed in float64, columns first, then rows.
    """
    values = np.asarray(array, dtype=np.float64)
    trailing = (1,) * (values.ndim - 2)
    low, high, weight = _axis_taps(values.shape[1], width)
    weight = weight.reshape((1, width, *trailing))
    columns = values[:, low] * (1.0 - weight) + values[:, high] * weight
    low, high, weight = _axis_taps(values.shape[0], height)
    weight = weight.reshape((height, 1, *trailing))
    return columns[low] * (1.0 - weight) + columns[high] * weight


def preprocess(image: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """An RGB uint8 (H, W, 3) image -> the graph's input: (size, size, 3) float32, normalised."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
    resized = resize_bilinear(image / 255.0, size, size)
    normalised = (resized - np.asarray(IMAGENET_MEAN)) / np.asarray(IMAGENET_STD)
    return normalised.astype(np.float32)


def background_from_classes(classes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Class map (h, w) -> uint8 (height, width) background mask: 1 where the bird map is <= 0.5."""
    bird = (np.asarray(classes) == BIRD_CLASS).astype(np.float64)
    return (resize_bilinear(bird, height, width) <= 0.5).astype(np.uint8)


def _describe(arguments: Sequence[onnxruntime.NodeArg]) -> str:
    """Names, types and shapes of graph inputs or outputs, for error messages."""
    return ", ".join(f"{a.name}: {a.type} {a.shape}" for a in arguments) or "none"


def _dim_is(dim: object, value: int) -> bool:
    """True when a graph dimension is `value` or symbolic (checked again when the graph runs)."""
    return not isinstance(dim, int) or dim == value


def check_fcn_signature(path: pathlib.Path, session: onnxruntime.InferenceSession) -> None:
    """Raises ValueError unless the graph maps one (B, 3, H, W) float to one (B, 21, H, W)."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    valid = (
        len(inputs) == 1
        and len(outputs) == 1
        and inputs[0].type == "tensor(float)"
        and len(inputs[0].shape) == 4
        and _dim_is(inputs[0].shape[1], 3)
        and len(outputs[0].shape) == 4
        and _dim_is(outputs[0].shape[1], NUM_CLASSES)
    )
    if not valid:
        raise ValueError(
            f"{path} is not an FCN graph: expected one float input (B, 3, H, W) and one output "
            f"(B, {NUM_CLASSES}, H, W), got inputs [{_describe(inputs)}], "
            f"outputs [{_describe(outputs)}]"
        )


def open_session(path: pathlib.Path) -> onnxruntime.InferenceSession:
    """An onnxruntime CPU session of the FCN graph at `path`, with its signature checked."""
    if not path.is_file():
        raise FileNotFoundError(
            f"FCN ONNX graph {path} not found; export it with `{EXPORT_COMMAND.format(path=path)}`"
        )
    try:
        session = onnxruntime.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    except _ORT_LOAD_ERRORS as error:
        raise ValueError(f"{path} is not a readable ONNX graph ({error})") from error
    check_fcn_signature(path, session)
    return session


class FcnMasker:
    """Background masks (1 = background, 0 = bird) from an FCN-ResNet101 ONNX graph."""

    def __init__(
        self, onnx_path: str | os.PathLike, batch_size: int = 8, input_size: int = INPUT_SIZE
    ):
        """Opens the graph; `input_size` is the side the images are resized to (224 in §6.3)."""
        if batch_size < 1 or input_size < 1:
            raise ValueError(
                f"batch_size and input_size must be >= 1, got {batch_size}, {input_size}"
            )
        self.path = pathlib.Path(onnx_path)
        self.batch_size = batch_size
        self.input_size = input_size
        self._session = open_session(self.path)
        self._input_name = self._session.get_inputs()[0].name

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        """Runs the graph on (N, H, W, 3) float32 inputs in batches; returns (N, H, W, 21)."""
        outputs = []
        for start in range(0, len(inputs), self.batch_size):
            batch = np.asarray(inputs[start : start + self.batch_size], dtype=np.float32)
            (logits,) = self._session.run(
                None, {self._input_name: np.ascontiguousarray(batch.transpose(0, 3, 1, 2))}
            )
            expected = (len(batch), NUM_CLASSES, *batch.shape[1:3])
            if logits.shape != expected:
                raise ValueError(
                    f"{self.path}: the graph returned logits {logits.shape}, expected {expected}"
                )
            outputs.append(logits.transpose(0, 2, 3, 1))
        if not outputs:
            return np.zeros((0, *np.shape(inputs)[1:3], NUM_CLASSES), np.float32)
        return np.concatenate(outputs)

    def background_masks(
        self, images_uint8: Sequence[np.ndarray], progress: bool = False
    ) -> list[np.ndarray]:
        """Masks of RGB uint8 (H, W, 3) images of any size: uint8 (H, W), 1 = background."""
        masks = []
        with tqdm.tqdm(
            total=len(images_uint8), desc="FCN masks", unit="image", disable=not progress
        ) as bar:
            for start in range(0, len(images_uint8), self.batch_size):
                chunk = images_uint8[start : start + self.batch_size]
                inputs = np.stack([preprocess(image, self.input_size) for image in chunk])
                classes = np.argmax(self.logits(inputs), axis=-1)
                masks += [
                    background_from_classes(c, *np.shape(image)[:2])
                    for c, image in zip(classes, chunk, strict=True)
                ]
                bar.update(len(chunk))
        return masks
