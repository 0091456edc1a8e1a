"""TensorBoard event files written directly: scalars and PNG images, no TensorFlow, no torch.

An event file is a sequence of TFRecords (length, masked CRC-32C of the length, payload, masked
CRC-32C of the payload), each payload one serialized `tensorboard.Event` protocol buffer. Only
the few fields jaxmani writes are encoded here, in protobuf's wire format.
"""

import io
import os
import socket
import struct
import time

import numpy as np
from PIL import Image

_CRC32C_POLY = 0x82F63B78  # CRC-32C (Castagnoli), reflected.
_CRC_MASK_DELTA = 0xA282EAD8
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


def _crc32c_table() -> tuple[int, ...]:
    """The 256-entry lookup table of the reflected CRC-32C polynomial."""
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (_CRC32C_POLY if crc & 1 else 0)
        table.append(crc)
    return tuple(table)


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C of `data` (crc32c(b"123456789") == 0xE3069283)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The masked CRC-32C that TFRecord framing stores."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _CRC_MASK_DELTA) & 0xFFFFFFFF


def tfrecord(payload: bytes) -> bytes:
    """One TFRecord: length, its masked CRC, the payload, its masked CRC (little-endian)."""
    length = struct.pack("<Q", len(payload))
    return (
        length
        + struct.pack("<I", masked_crc32c(length))
        + payload
        + struct.pack("<I", masked_crc32c(payload))
    )


def _varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer."""
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, wire_type: int, payload: bytes) -> bytes:
    """A protobuf field: its key, then (for length-delimited fields) the length, then `payload`."""
    key = _varint(number << 3 | wire_type)
    if wire_type == _BYTES:
        return key + _varint(len(payload)) + payload
    return key + payload


def event(wall_time: float, step: int, *, summary: bytes = b"", file_version: str = "") -> bytes:
    """A serialized Event: wall_time (1), step (2), file_version (3), summary (5)."""
    out = _field(1, _FIXED64, struct.pack("<d", wall_time))
    if step:  # proto3 leaves fields at their default out, as protobuf's own serializer does.
        out += _field(2, _VARINT, _varint(step))
    if file_version:
        out += _field(3, _BYTES, file_version.encode())
    if summary:
        out += _field(5, _BYTES, summary)
    return out


def scalar_summary(tag: str, value: float) -> bytes:
    """A serialized Summary with one Value: tag (1), simple_value (2, float32; in a oneof, so
    written even when 0)."""
    value_message = _field(1, _BYTES, tag.encode()) + _field(2, _FIXED32, struct.pack("<f", value))
    return _field(1, _BYTES, value_message)


def image_summary(tag: str, pixels: np.ndarray) -> bytes:
    """A serialized Summary with one Value: tag (1), image (4) holding (H, W, 3) uint8 as PNG."""
    height, width, channels = pixels.shape
    png = io.BytesIO()
    Image.fromarray(pixels).save(png, format="PNG")
    image = (
        _field(1, _VARINT, _varint(height))
        + _field(2, _VARINT, _varint(width))
        + _field(3, _VARINT, _varint(channels))
        + _field(4, _BYTES, png.getvalue())
    )
    return _field(1, _BYTES, _field(1, _BYTES, tag.encode()) + _field(4, _BYTES, image))


class EventWriter:
    """Appends events to `<logdir>/events.out.tfevents.<seconds>.<host>` (TensorBoard's name)."""

    def __init__(self, logdir: str):
        os.makedirs(logdir, exist_ok=True)
        now = time.time()
        name = f"events.out.tfevents.{int(now)}.{socket.gethostname()}"
        self.path = os.path.join(logdir, name)
        self.file = open(self.path, "ab")  # noqa: SIM115 (open until close()).
        self.file.write(tfrecord(event(now, 0, file_version="brain.Event:2")))

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        """Writes one scalar at `step`."""
        self.file.write(tfrecord(event(time.time(), step, summary=scalar_summary(tag, value))))

    def add_image(self, tag: str, pixels: np.ndarray, step: int) -> None:
        """Writes one (H, W, 3) uint8 image at `step`."""
        self.file.write(tfrecord(event(time.time(), step, summary=image_summary(tag, pixels))))

    def flush(self) -> None:
        """Pushes written events to the file."""
        self.file.flush()

    def close(self) -> None:
        """Flushes and closes the file."""
        self.file.close()
