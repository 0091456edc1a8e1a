"""Exports torchvision's FCN-ResNet101 (COCO weights, 21 VOC classes) to ONNX for jaxmani.

python -m third_party.fcn_onnx.export --weights=fcn_resnet101_coco-7ecb50ca.pth --out=fcn.onnx

The graph takes one float32 input `images` (B, 3, H, W), ImageNet-normalised, and returns one
output `logits` (B, 21, H, W): the model's 'out' head (the 'aux' head is dropped). Batch, height and
width are dynamic. It is written by the torch.export-based exporter (`dynamo=True`, opset 18),
which works offline and keeps the class axis static.
"""

import argparse
import os
import pathlib
import sys
from collections.abc import Sequence

import torch
import torchvision

NUM_CLASSES = 21
OPSET = 18
INPUT_NAME = "images"
OUTPUT_NAME = "logits"
_EXAMPLE_SHAPE = (2, 3, 64, 64)


class OutLogits(torch.nn.Module):
    """Wraps a torchvision segmentation model so that it returns only its 'out' logits."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, 21, H, W) logits."""
        return self.model(images)["out"]


def build_fcn() -> torch.nn.Module:
    """FCN-ResNet101 with the layout of fcn_resnet101_coco-7ecb50ca.pth, no weights loaded."""
    return torchvision.models.segmentation.fcn_resnet101(
        weights=None, weights_backbone=None, num_classes=NUM_CLASSES, aux_loss=True
    )


def load_fcn(state_dict_path: str | os.PathLike) -> torch.nn.Module:
    """Builds the FCN and loads the state dict at `state_dict_path` strictly; eval mode."""
    path = pathlib.Path(state_dict_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found; download torchvision's fcn_resnet101_coco-7ecb50ca.pth yourself"
        )
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state_dict, dict):
        raise ValueError(f"{path} holds a {type(state_dict).__name__}, not a state dict")
    model = build_fcn()
    try:
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as error:
        message = " ".join(str(error).split())
        raise ValueError(f"{path} is not an fcn_resnet101 state dict: {message}") from error
    if missing or unexpected:
        raise ValueError(
            f"{path} is not an fcn_resnet101 state dict (21 classes, aux head): "
            f"{len(missing)} missing keys {missing[:3]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:3]}"
        )
    return model.eval()


def export_model(model: torch.nn.Module, out_path: str | os.PathLike) -> pathlib.Path:
    """Writes the 'out' logits of a torchvision FCN as an ONNX graph with dynamic B, H, W."""
    out = pathlib.Path(out_path)
    wrapper = OutLogits(model).eval()
    dims = {
        0: torch.export.Dim("batch"),
        2: torch.export.Dim("height"),
        3: torch.export.Dim("width"),
    }
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            (torch.zeros(_EXAMPLE_SHAPE),),
            out,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=OPSET,
            dynamo=True,
            dynamic_shapes=(dims,),
            external_data=False,
            verbose=False,
        )
    return out


def export_fcn(state_dict_path: str | os.PathLike, out_path: str | os.PathLike) -> pathlib.Path:
    """Loads the FCN-ResNet101 state dict and writes its ONNX graph to `out_path`."""
    return export_model(load_fcn(state_dict_path), out_path)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: --weights=FILE --out=FILE."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--weights", required=True, help="fcn_resnet101_coco-7ecb50ca.pth")
    parser.add_argument("--out", required=True, help="ONNX file to write, e.g. fcn.onnx")
    args = parser.parse_args(argv)
    try:
        out = export_fcn(args.weights, args.out)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
