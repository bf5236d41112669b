"""Ideal FP16 storage in onnxruntime: the oracle for FP16 error bounds.

kiln --fp16 stores weights and activations in float16 and computes in float32 (cuDNN/cuBLASLt accumulate in
FP32; a fused conv+bias+residual+activation rounds once, at the fused op's output). This module builds a
copy of an ONNX model that does the same with no kernel error at all: every float32 weight (initializer or
Constant node) is rounded to float16, and a Cast(float16) -> Cast(float) pair follows each stored float
activation. What that copy computes on onnxruntime (CPU, FP32) is the error FP16 storage alone causes; an
FP16 engine within a small factor of it adds no error of its own (issue #14: kiln FP16 error <= 1.25x ideal
FP16 storage). bench/fp16_emulate.py breaks the same emulation down by tensor kind and depth.
"""
import collections

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper, shape_inference

from compare_outputs import assert_close, assert_not_degenerate, can_fail, compare

# kiln's FP16 error over ideal FP16 storage's, at most (issue #14, criterion 2).
FP16_VS_IDEAL = 1.25

# Activations kiln fuses into the convolution before them (no rounding between).
FUSED_ACT = {"Relu", "Clip", "Sigmoid"}
# Ops whose output holds the same values as their input (no new rounding).
NO_ROUNDING = {"Flatten", "Reshape", "Shape", "Constant", "Squeeze", "Unsqueeze", "Identity"}


def users(graph):
    u = collections.defaultdict(list)
    for n in graph.node:
        for i in n.input:
            u[i].append(n)
    return u


def float_values(model):
    """Names of the main graph's float32 values (onnx shape inference; inputs and outputs included)."""
    inferred = shape_inference.infer_shapes(model)
    g = inferred.graph
    return {v.name for v in list(g.value_info) + list(g.input) + list(g.output)
            if v.type.tensor_type.elem_type == TensorProto.FLOAT}


def store_points(model):
    """(tensor name, kind) where kiln stores a float16 activation: the float graph inputs and float node
    outputs, but not a Conv's output that its only user (activation or residual Add) fuses into, nor the
    outputs of ops that only move or rename values."""
    g = model.graph
    u = users(g)
    outs = {o.name for o in g.output}
    inits = {i.name for i in g.initializer}
    floats = float_values(model)
    prod = {o: n for n in g.node for o in n.output}
    points = [(i.name, "input") for i in g.input if i.name not in inits and i.name in floats]
    for n in g.node:
        if not n.output or n.output[0] not in floats or n.op_type in NO_ROUNDING:
            continue
        y = n.output[0]
        only = u[y][0] if len(u[y]) == 1 and y not in outs else None
        if n.op_type == "Conv" and only is not None and (only.op_type in FUSED_ACT or only.op_type == "Add"):
            continue  # fused into its user
        if n.op_type == "Add" and only is not None and only.op_type == "Relu" and \
                any(prod.get(x) is not None and prod[x].op_type == "Conv" for x in n.input):
            continue
        kind = n.op_type
        if n.op_type in FUSED_ACT:
            src = prod.get(n.input[0])
            kind = ("Add+" if src is not None and src.op_type == "Add" else "Conv+") + n.op_type
        elif n.op_type == "Add":
            kind = "Conv+Add"
        points.append((y, kind))
    return points


def _round_tensor(t):
    if t.data_type != TensorProto.FLOAT:
        return
    a = numpy_helper.to_array(t).astype(np.float16).astype(np.float32)
    t.CopyFrom(numpy_helper.from_array(a, t.name))


def with_rounding(model, names, round_weights, noise=None, seed=1):
    """A copy of model with a float16 round trip after each value in `names` (and its float32 weights
    rounded to float16 with `round_weights`); `noise`: relative Gaussian noise of that size on `names`
    instead of the round trip."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    if round_weights:
        for init in g.initializer:
            _round_tensor(init)
        for n in g.node:
            if n.op_type == "Constant":
                for a in n.attribute:
                    if a.name == "value":
                        _round_tensor(a.t)
    wanted = set(names)
    inputs = {i.name for i in g.input}
    nodes = list(g.node)
    g.ClearField("node")

    def trip(src, dst, k):
        """Nodes that read `src` and write it rounded (or perturbed) as `dst`."""
        if noise is None:
            return [helper.make_node("Cast", [src], [dst + "__h"], to=TensorProto.FLOAT16),
                    helper.make_node("Cast", [dst + "__h"], [dst], to=TensorProto.FLOAT)]
        return [helper.make_node("RandomNormalLike", [src], [dst + "__n"], scale=float(noise), seed=float(seed + k)),
                helper.make_node("Mul", [src, dst + "__n"], [dst + "__d"]),
                helper.make_node("Add", [src, dst + "__d"], [dst])]

    # A graph input keeps its name: its readers read the rounded copy "<input>__r". A node output is
    # renamed "<name>__pre" and the round trip writes <name>, so readers and graph outputs stay as they are.
    order = {name: k for k, name in enumerate(names)}
    for name in [i for i in names if i in inputs]:
        g.node.extend(trip(name, name + "__r", order[name]))
        for n in nodes:
            for i, x in enumerate(n.input):
                if x == name:
                    n.input[i] = name + "__r"
    for n in nodes:
        extra = []
        for j, y in enumerate(n.output):
            if y in wanted and y not in inputs:
                n.output[j] = y + "__pre"
                extra += trip(y + "__pre", y, order[y])
        g.node.append(n)  # (append copies n: rename its outputs first)
        g.node.extend(extra)
    return m


def session(model, threads=1):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def ideal_fp16_session(model, threads=1):
    """An onnxruntime session of the model with ideal FP16 storage (weights and stored activations rounded
    to float16, FP32 compute): build it once for several runs."""
    if isinstance(model, str):
        model = onnx.load(model)
    return session(with_rounding(model, [p for p, _ in store_points(model)], True), threads)


def ideal_fp16_outputs(model, feeds, threads=1):
    """The model's outputs with ideal FP16 storage, on onnxruntime (one run; see ideal_fp16_session)."""
    return ideal_fp16_session(model, threads).run(None, feeds)


def rel_l2(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def assert_fp16_within_ideal(got, ref, ideal, what):
    """kiln's FP16 output `got` against the FP32 reference: rel L2 <= FP16_VS_IDEAL x that of `ideal` (the
    ideal FP16 storage output). Through compare_outputs.assert_close (a degenerate reference or a vacuous
    tolerance fails) where that bound can reject the reference perturbed by 5%; where storage noise alone
    comes near 5% (random-weight nets that amplify it), the reference must still not be degenerate and the
    bound must reject an all-zeros output. Returns the stats, with 'ideal_fp16_rel_l2'."""
    storage = rel_l2(ideal, ref)
    bound = FP16_VS_IDEAL * storage
    if can_fail(ref, max_rel_l2=bound, elementwise=False) is None:
        stats = assert_close(got, ref, what, max_rel_l2=bound, elementwise=False)
    else:
        assert_not_degenerate(ref, what)
        assert bound < 1, f"{what}: ideal FP16 storage rel L2 {storage:.3g}: an all-zeros output would pass"
        ok, msg, stats = compare(ref, got, max_rel_l2=bound, elementwise=False)
        assert ok, f"{what}: {msg}"
    stats["ideal_fp16_rel_l2"] = storage
    return stats
