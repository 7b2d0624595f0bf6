"""Drop intermediate tensor names from a ``.tflite``: they are flash the MCU pays for and never reads.

litert-torch names every tensor after its full module path; on the ECG-CL segmentation
model that was 85 KB of a 174 KB flatbuffer. ai-edge-litert's ``flatbuffer_utils`` reads
and repacks the model (its ``strip_strings`` also drops the signature and input/output
names, which the runtime and the manifest use, so we keep those). Its packer aligns weight
buffers to their element size only; TFLite's schema asks for 16 bytes (``force_align``) and
CMSIS-NN kernels may load them with word-multiple instructions, so the builder here aligns
every byte vector to 16.
"""

from __future__ import annotations

import flatbuffers
import numpy as np

__all__ = ["strip_tensor_names"]


class _AlignedBuilder(flatbuffers.Builder):
    def CreateNumpyVector(self, x):  # noqa: N802 (flatbuffers' name)
        if x.dtype != np.uint8 or x.ndim != 1:
            return super().CreateNumpyVector(x)
        self.StartVector(1, x.size, 16)
        payload = x.tobytes()
        self.head = self.head - len(payload)
        self.Bytes[self.head:self.head + len(payload)] = payload
        self.vectorNumElems = x.size
        return self.EndVector()


def strip_tensor_names(model: bytes) -> bytes:
    """The same model without the names of tensors other than the graph inputs and outputs."""
    from ai_edge_litert.tools import flatbuffer_utils

    obj = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    obj.description = None
    for subgraph in obj.subgraphs:
        keep = set(subgraph.inputs or []) | set(subgraph.outputs or [])
        for k, tensor in enumerate(subgraph.tensors or []):
            if k not in keep:
                tensor.name = None
    for buffer in obj.buffers or []:
        if buffer.data is not None:
            buffer.data = np.frombuffer(bytes(buffer.data), dtype=np.uint8)
    builder = _AlignedBuilder(len(model))
    builder.Finish(obj.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
