"""A small, real logdir (scalars, a histogram, an image, text) without TensorFlow.

Used by ``nbboard demo``, by demo.ipynb and by the tests, so every dashboard
TensorBoard has for these kinds has something to show.
"""

from __future__ import annotations

import math
import random
import struct
import time
import zlib
from pathlib import Path

#: Tags the demo writes; tests look for them inside the rendered board.
SCALAR_TAGS = ("loss", "accuracy")
RUNS = ("train", "eval")


def _png(width: int, height: int, pixel) -> bytes:  # type: ignore[no-untyped-def]
    """A tiny RGB PNG encoder, so the demo needs no imaging library."""
    raw = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def write_demo_logs(logdir: str | Path, steps: int = 50, seed: int = 0) -> Path:
    """Write two runs of summaries under ``logdir``; returns its absolute path."""
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
    from tensorboard.compat.proto.summary_pb2 import HistogramProto
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    root = Path(logdir).expanduser().absolute()
    rng = random.Random(seed)
    wall = time.time() - steps
    for r, run in enumerate(RUNS):
        writer = EventFileWriter(str(root / run))
        for step in range(steps):
            loss = math.exp(-step / (12 + 6 * r)) + rng.uniform(0, 0.05)
            values = [
                summary_pb2.Summary.Value(tag="loss", simple_value=loss),
                summary_pb2.Summary.Value(tag="accuracy", simple_value=1 - loss / 1.2),
            ]
            writer.add_event(
                event_pb2.Event(wall_time=wall + step, step=step, summary=summary_pb2.Summary(value=values))
            )
        samples = [rng.gauss(0, 1 + r) for _ in range(500)]
        limits = [-4.0 + 0.5 * k for k in range(17)] + [1e12]
        buckets = [
            sum(1 for s in samples if lo <= s < hi) for lo, hi in zip([-1e12, *limits[:-1]], limits, strict=True)
        ]
        histo = HistogramProto(
            min=min(samples),
            max=max(samples),
            num=len(samples),
            sum=sum(samples),
            sum_squares=sum(s * s for s in samples),
            bucket_limit=limits,
            bucket=buckets,
        )
        shade = 80 + 120 * r
        image = summary_pb2.Summary.Image(
            height=32,
            width=32,
            colorspace=3,
            encoded_image_string=_png(32, 32, lambda x, y, shade=shade: (shade, 8 * x % 256, 8 * y % 256)),
        )
        text_meta = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text"))
        text = tensor_pb2.TensorProto(
            dtype=7,  # DT_STRING
            tensor_shape=tensor_shape_pb2.TensorShapeProto(),
            string_val=[f"**{run}** run of the nbboard demo: {steps} steps".encode()],
        )
        extras = [
            summary_pb2.Summary.Value(tag="weights", histo=histo),
            summary_pb2.Summary.Value(tag="sample_image", image=image),
            summary_pb2.Summary.Value(tag="notes", metadata=text_meta, tensor=text),
        ]
        writer.add_event(event_pb2.Event(wall_time=wall + steps, step=steps, summary=summary_pb2.Summary(value=extras)))
        writer.close()
    return root
