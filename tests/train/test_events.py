"""TensorBoard event files: byte for byte what protobuf and tensorboardX write."""

import struct

import numpy as np
import pytest
from tensorboardX import record_writer, summary
from tensorboardX.proto.event_pb2 import Event

from jaxmani.train import events


def read_records(path: str) -> list[bytes]:
    """The payloads of a TFRecord file, checking both masked CRCs of every record."""
    with open(path, "rb") as f:
        data = f.read()
    payloads, offset = [], 0
    while offset < len(data):
        header = data[offset : offset + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[offset + 8 : offset + 12])
        assert header_crc == record_writer.masked_crc32c(header)
        payload = data[offset + 12 : offset + 12 + length]
        (payload_crc,) = struct.unpack("<I", data[offset + 12 + length : offset + 16 + length])
        assert payload_crc == record_writer.masked_crc32c(payload)
        payloads.append(payload)
        offset += 16 + length
    return payloads


def test_crc32c_check_value_and_masking_match_tensorboardx():
    assert events.crc32c(b"123456789") == 0xE3069283
    for data in (b"", b"\x00", bytes(range(256)) * 3):
        assert events.masked_crc32c(data) == record_writer.masked_crc32c(data)


@pytest.mark.parametrize("value", [0.0, -0.0, 1.5, -3e-8, float("inf"), 123456.789])
@pytest.mark.parametrize("step", [0, 1, 300, 2**40])
def test_scalar_event_is_the_protobuf_serialization(value, step):
    expected = Event(wall_time=1234.5, step=step, summary=summary.scalar("g/loss", value))
    ours = events.event(1234.5, step, summary=events.scalar_summary("g/loss", value))
    assert ours == expected.SerializeToString()


def test_image_event_is_the_protobuf_serialization():
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    image = summary.image("samples", pixels, dataformats="HWC")
    expected = Event(wall_time=2.0, step=9, summary=image)
    ours = events.event(2.0, 9, summary=events.image_summary("samples", pixels))
    assert ours == expected.SerializeToString()


def test_writer_file_reads_back_as_events(tmp_path):
    writer = events.EventWriter(str(tmp_path / "tb"))
    writer.add_scalar("d/loss", 0.25, 3)
    writer.add_image("samples", np.zeros((2, 3, 3), np.uint8), 4)
    writer.close()
    assert "tfevents" in writer.path
    first, scalar, image = (Event.FromString(p) for p in read_records(writer.path))
    assert first.file_version == "brain.Event:2"
    assert (scalar.step, scalar.summary.value[0].tag, scalar.summary.value[0].simple_value) == (
        3,
        "d/loss",
        0.25,
    )
    assert image.step == 4
    assert (image.summary.value[0].image.height, image.summary.value[0].image.width) == (2, 3)
    assert image.summary.value[0].image.encoded_image_string.startswith(b"\x89PNG")
