"""Exporter of torchvision's FCN-ResNet101 to the ONNX graph that jaxmani's FCN masks run."""
