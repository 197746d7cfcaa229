"""Model files made from a package's file once, at setup (or the image build), never in a job:
the manifest pins the package's file and the converted one by sha256 (see assets.Conversion).
Needs the `onnx` package, a setup-time dependency the Lambda images do not carry."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from silhouette.names import PROJECT_ROOT

# The activation ranges IS-Net int8 is quantized with: measured once on photos by
# benchmarks/calibrate_matting.py and kept here, so that setup quantizes without running the
# model and makes the same bytes on every machine (the manifest pins them).
ISNET_INT8_CALIBRATION = PROJECT_ROOT / "layers" / "models" / "isnet-int8-calibration.json"


def isnet_fp32(model: bytes) -> bytes:
    """IMG.LY's fp16 IS-Net export as an fp32 model of any input size, with the matte alone.

    On CPU onnxruntime computes fp16 as fp32 anyway, behind 111 casts and as many reorders:
    the fp32 model gives the same matte about 10% faster. The export also fixes the input at
    1024 x 1024 (every upsampling has its target size as a constant), which costs 2.2 s a photo;
    here each upsampling is sized like the tensor it is joined with, as the model's own
    `_upsample_like(source, target)` does, so the caller picks the input size. The five side
    outputs (deep supervision for training) and the intermediate features are dropped."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    proto = onnx.load_from_string(model)
    graph = proto.graph

    def as_fp32(tensor: onnx.TensorProto) -> onnx.TensorProto:
        values = numpy_helper.to_array(tensor).astype(np.float32)
        return numpy_helper.from_array(values, tensor.name)

    for index, initializer in enumerate(graph.initializer):
        if initializer.data_type == TensorProto.FLOAT16:
            graph.initializer[index].CopyFrom(as_fp32(initializer))
    for node in graph.node:
        for attribute in node.attribute:
            if node.op_type == "Constant" and attribute.t.data_type == TensorProto.FLOAT16:
                attribute.t.CopyFrom(as_fp32(attribute.t))

    # Every tensor is fp32 now: a cast is a plain connection (the one producing the graph's
    # output keeps its name, as a cast to fp32).
    source_of: dict[str, str] = {}
    nodes = []
    for node in graph.node:
        if node.op_type != "Cast":
            nodes.append(node)
        elif node.output[0] == "output":
            node.attribute[0].i = TensorProto.FLOAT
            nodes.append(node)
        else:
            source_of[node.output[0]] = source_of.get(node.input[0], node.input[0])
    for node in nodes:
        _replace(node.input, [source_of.get(name, name) for name in node.input])

    producer = {output: node for node in nodes for output in node.output}
    users: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        for name in node.input:
            users.setdefault(name, []).append(node)
    input_name = graph.input[0].name
    input_side = graph.input[0].type.tensor_type.shape.dim[2].dim_value
    for resize in [node for node in nodes if node.op_type == "Resize"]:
        sizes = producer[resize.input[3]]  # Concat(batch and channels of the source, [h, w])
        constant = producer[sizes.input[1]]
        spatial = numpy_helper.to_array(constant.attribute[0].t).tolist()
        if spatial == [input_side, input_side]:
            target = input_name  # the side outputs, upsampled to the photo
        else:
            [user] = users[resize.output[0]]  # the Concat or Add joining it with its target
            target = next(name for name in user.input if name != resize.output[0])
        prefix = f"{resize.name}/size_of_target"
        nodes.append(helper.make_node("Shape", [target], [f"{prefix}/shape"], start=2, end=4))
        sizes.input[1] = f"{prefix}/shape"

    _replace(graph.output, [output for output in graph.output if output.name == "output"])
    for value in (graph.input[0], graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        dims[2].dim_param, dims[3].dim_param = "height", "width"
    _replace(graph.node, _needed_in_order(nodes, graph))
    read = {name for node in graph.node for name in node.input}
    _replace(graph.initializer, [tensor for tensor in graph.initializer if tensor.name in read])
    del graph.value_info[:]
    proto = onnx.shape_inference.infer_shapes(proto)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _replace(repeated, items: list) -> None:  # noqa: ANN001 (a protobuf repeated field)
    copies = list(items)  # the items may be the field's own
    del repeated[:]
    repeated.extend(copies)


def _needed_in_order(nodes: list, graph) -> list:  # noqa: ANN001 (onnx protos, imported lazily)
    """The nodes the graph's outputs depend on, each after the nodes it reads from."""
    producer = {output: node for node in nodes for output in node.output}
    needed: dict[int, object] = {}
    pending = [output.name for output in graph.output]
    while pending:
        node = producer.get(pending.pop())
        if node is not None and id(node) not in needed:
            needed[id(node)] = node
            pending.extend(node.input)
    available = {value.name for value in graph.input} | {i.name for i in graph.initializer}
    available.add("")  # an omitted optional input
    ordered, waiting = [], [node for node in nodes if id(node) in needed]
    while waiting:
        ready = [node for node in waiting if all(name in available for name in node.input)]
        if not ready:
            raise ValueError("the model's graph has a cycle")
        for node in ready:
            available.update(node.output)
        ordered += ready
        placed = {id(node) for node in ready}
        waiting = [node for node in waiting if id(node) not in placed]
    return ordered


def isnet_int8(model: bytes) -> bytes:
    """IS-Net fp32 (see isnet_fp32) with its convolutions in int8: weights per channel (s8),
    activations (u8) over the ranges in ISNET_INT8_CALIBRATION. onnxruntime runs it in half the
    time of fp32 on CPUs with 8-bit dot products (AVX-512 VNNI, AVX2's VPMADDUBSW), for the
    same cutout (make eval: benchmarks/matting_sizes.py). Only the convolutions (but the last
    two): quantizing the upsamplings and joins too lost the matte (IoU 0.56)."""
    from onnxruntime.quantization import quantize_static

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        source.write_bytes(isnet_fp32(model))
        quantize_static(
            source,
            target,
            calibration_data_reader=None,  # the kept ranges instead
            calibration_cache_path=ISNET_INT8_CALIBRATION,
            **isnet_int8_settings(),
        )
        return target.read_bytes()


def isnet_int8_settings() -> dict[str, object]:
    """quantize_static's settings for isnet_int8, shared with the calibration that measures its
    ranges (the cache is only valid for the settings it was made with)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType

    return {
        "quant_format": QuantFormat.QDQ,
        "per_channel": True,
        "weight_type": QuantType.QInt8,
        "activation_type": QuantType.QUInt8,
        "calibrate_method": CalibrationMethod.MinMax,
        "op_types_to_quantize": ["Conv"],
        # The last two stay fp32: quantized, they speckled the matte where it is unsure (hair,
        # a second person): IoU with fp32 on bus.jpg at 1024 0.90, with them in fp32 0.92.
        "nodes_to_exclude": ["/stage1d/rebnconv1d/conv_s1/Conv", "/side1/Conv"],
        # Ranges averaged over the calibration photos, not their extremes: one photo's
        # outlier would coarsen every other photo's steps.
        "extra_options": {"CalibMovingAverage": True},
    }


CONVERSIONS: dict[str, Callable[[bytes], bytes]] = {
    "isnet-fp32": isnet_fp32,
    "isnet-int8": isnet_int8,
}
