"""The kiln Python API on the CPU backend (no GPU needed): the bundled
super-resolution model against onnxruntime, plans, dynamic and value-dependent
shapes, and the error classes. Runs against the installed package (ctest's
python_package: tests/package/python_package.sh installs it first)."""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import kiln

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from compare_outputs import assert_close  # noqa: E402

SR_MODEL = os.path.join(ROOT, "models", "super_resolution.onnx")


def ort_run(model, feed):
    data = model if isinstance(model, (str, bytes)) else model.SerializeToString()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed)))


def tiny_model(op="Relu", out_dims=("batch", 3), out_type=TensorProto.FLOAT):
    """Y = op(X + W), X: float[batch, 3]."""
    nodes = [helper.make_node("Add", ["X", "W"], ["S"], name="add"), helper.make_node(op, ["S"], ["Y"], name="act")]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("Y", out_type, list(out_dims))],
        [helper.make_tensor("W", TensorProto.FLOAT, [3], [1.0, -2.0, 3.0])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_version_and_package():
    assert kiln.__version__.count(".") == 2
    assert isinstance(kiln.has_cuda, bool)
    pkg = os.path.dirname(kiln.__file__)
    assert os.path.exists(os.path.join(pkg, "py.typed")) and os.path.exists(os.path.join(pkg, "_kiln.pyi"))


def test_stubs_match_the_extension():
    # _kiln.pyi names exactly what the extension defines (module level and the classes' members).
    import ast
    from kiln import _kiln
    pkg = os.path.dirname(kiln.__file__)
    tree = ast.parse(open(os.path.join(pkg, "_kiln.pyi")).read())
    top = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    top |= {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign)}
    public = {n for n in dir(_kiln) if not n.startswith("__") or n == "__version__"}
    assert top == public
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.startswith("_")):
        stubbed = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
        actual = {n for n in dir(getattr(_kiln, cls.name)) if not n.startswith("_")}
        assert stubbed == actual, cls.name


def test_super_resolution_matches_onnxruntime(tmp_path):
    engine = kiln.build(SR_MODEL, backend="cpu")
    assert engine.backend == "cpu"
    (inp,), (out,) = engine.inputs, engine.outputs
    assert (inp.name, inp.dtype, inp.dims) == ("input", "float32", ["batch", 1, "height", "width"])
    assert out.dims == ["batch", 1, "height*3", "width*3"]
    x = np.random.default_rng(0).random((2, 1, 64, 48), dtype=np.float32)
    ctx = engine.create_context()
    ctx.set_input_shape("input", x.shape)
    assert ctx.get_output_shape("output") == [2, 1, 192, 144]
    got = ctx.run({"input": x})
    ref = ort_run(SR_MODEL, {"input": x})
    assert set(got) == {"output"} and got["output"].dtype == np.float32
    assert_close(got["output"], ref["output"], "super_resolution")

    # The plan round trip, and another shape on the same context.
    plan = tmp_path / "sr.plan"
    engine.save(plan)
    loaded = kiln.Engine.load(plan)
    assert loaded.backend == "cpu"
    x2 = np.random.default_rng(1).random((1, 1, 32, 40), dtype=np.float32)
    got2 = loaded.create_context().run({"input": x2})
    assert_close(got2["output"], ort_run(SR_MODEL, {"input": x2})["output"], "super_resolution (loaded plan)")
    again = kiln.Engine.deserialize(loaded.serialize()).create_context().run({"input": x2})
    np.testing.assert_array_equal(again["output"], got2["output"])


def test_check():
    ok = kiln.check(SR_MODEL)
    assert ok.valid and not ok.issues and ok.num_nodes > 0 and ok.opset > 0
    bad = kiln.check(tiny_model(op="NoSuchOp"))
    assert not bad.valid and not bad.errors
    assert [i.node for i in bad.unsupported] == ["act"] and "NoSuchOp" in str(bad.unsupported[0])
    broken = tiny_model()
    broken.graph.node[1].input[0] = "nowhere"
    result = kiln.check(broken.SerializeToString())
    assert result.errors and "nowhere" in result.errors[0].message


def test_check_takes_the_build_flags():
    # Relu → Tanh: one generated kernel with pointwise fusion, two nodes without.
    nodes = [helper.make_node("Relu", ["X"], ["R"], name="relu"), helper.make_node("Tanh", ["R"], ["Y"], name="tanh")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", 8])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["n", 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    fused = kiln.check(model, backend="cuda")
    plain = kiln.check(model, backend="cuda", fuse_pointwise=False)
    assert (fused.gpu.num_nodes, plain.gpu.num_nodes) == (1, 2)
    with pytest.raises(kiln.Error, match="calib_method"):
        kiln.build(SR_MODEL, backend="cpu", calib_method="median")


@pytest.mark.parametrize("form", ["path", "bytes", "proto"])
def test_model_forms(tmp_path, form):
    model = tiny_model()
    path = tmp_path / "tiny.onnx"
    onnx.save(model, path)
    arg = {"path": str(path), "bytes": model.SerializeToString(), "proto": model}[form]
    engine = kiln.build(arg, backend="cpu", profiles={"X": ((1, 3), (2, 3), (4, 3))})
    assert engine.profiles == {"X": ([1, 3], [2, 3], [4, 3])}
    x = np.array([[-5, 1, 2], [0, 3, -4]], dtype=np.float64)  # converted to the input's float32
    y = engine.create_context().run({"X": x})["Y"]
    np.testing.assert_array_equal(y, ort_run(model, {"X": x.astype(np.float32)})["Y"])


def test_check_cuda_backend():
    # The GPU gaps are found without a GPU (declared capabilities; kernel factories in a CUDA build).
    r = kiln.check(SR_MODEL, backend="cuda", fp16=True)
    assert r.valid and r.gpu is not None and not r.gpu.error and not r.gpu.gaps
    assert r.gpu.num_nodes > 0 and r.gpu.probed == kiln.has_cuda  # after the passes (fp16 adds casts)
    assert kiln.check(SR_MODEL).gpu is None
    # NonZero makes a sync point on the GPU; Det (the CPU reference has it) is a gap: no CUDA kernel.
    nodes = [helper.make_node("NonZero", ["X"], ["Y"], name="nz"), helper.make_node("Det", ["D"], ["T"], name="det")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 3]),
                                           helper.make_tensor_value_info("D", TensorProto.FLOAT, [2, 2])],
                              [helper.make_tensor_value_info("Y", TensorProto.INT64, [2, None]),
                               helper.make_tensor_value_info("T", TensorProto.FLOAT, [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert kiln.check(model).valid
    r = kiln.check(model, backend="cuda")
    assert not r.valid and [g.node for g in r.gpu.gaps] == ["det"] and "no CUDA kernel" in r.gpu.gaps[0].reason
    assert len(r.gpu.sync_points) == 1 and "nz" in r.gpu.sync_points[0]
    with pytest.raises(kiln.InvalidArgumentError):
        kiln.check(SR_MODEL, backend="tpu")


def test_inspect_against_onnx():
    from collections import Counter
    proto = onnx.load(SR_MODEL)
    r = kiln.inspect(SR_MODEL, shapes={"input": (2, 1, 30, 20)})
    assert r.model == SR_MODEL and r.ir_version == proto.ir_version
    assert r.opsets == {"ai.onnx" if o.domain == "" else o.domain: o.version for o in proto.opset_import}
    assert [i.name for i in r.inputs] == [i.name for i in proto.graph.input]
    assert [o.name for o in r.outputs] == [o.name for o in proto.graph.output]
    assert r.inputs[0].dims == ["batch", 1, "height", "width"] and r.inputs[0].dtype == "float32"
    assert r.ops == dict(Counter(n.op_type for n in proto.graph.node)) and r.num_nodes == len(proto.graph.node)
    numel = [int(np.prod(t.dims)) for t in proto.graph.initializer]
    assert r.parameters == sum(numel) and r.parameter_bytes == 4 * sum(numel)
    assert r.initializers == len(proto.graph.initializer)
    # MACs by hand: each Conv (stride 1, same padding here) does out_channels * in_channels * kh * kw per pixel.
    weights = {t.name: list(t.dims) for t in proto.graph.initializer}
    macs = sum(int(np.prod(weights[n.input[1]])) * 2 * 30 * 20 for n in proto.graph.node if n.op_type == "Conv")
    assert r.macs == macs and r.macs_by_op == {"Conv": macs} and r.input_shapes == {"input": [2, 1, 30, 20]}
    assert not r.sync_points and not r.uncounted_nodes and r.ir is None and r.values is None
    assert "MACs: " in str(r) and r.json["nodes"] == r.num_nodes

    full = kiln.inspect(onnx.load(SR_MODEL), ir=True, values=True)
    assert full.model == "<model>" and "Conv" in full.ir and full.macs != r.macs  # symbolic dims default to 1
    out = [v for v in full.values if v["name"] == "output"][0]
    assert out["source"] == "node" and out["op"] == "DepthToSpace" and out["dims"][0] == "batch"
    with pytest.raises(kiln.InvalidArgumentError, match="not a model input"):
        kiln.inspect(SR_MODEL, shapes={"nope": (1,)})


def test_inspect_and_check_match_the_cli():
    # The console script's binary prints the same content (kiln/bin/kiln, installed with the package).
    import json
    import subprocess
    exe = os.path.join(os.path.dirname(kiln.__file__), "bin", "kiln")
    assert os.access(exe, os.X_OK), exe
    doc = json.loads(subprocess.run([exe, "inspect", "--json", SR_MODEL], check=True, capture_output=True,
                                    text=True).stdout)
    assert doc == kiln.inspect(SR_MODEL).json
    text = subprocess.run([sys.executable, "-m", "kiln", "inspect", SR_MODEL], check=True, capture_output=True,
                          text=True).stdout
    assert text == str(kiln.inspect(SR_MODEL))
    cli = subprocess.run([exe, "check", SR_MODEL, "--backend", "cuda"], capture_output=True, text=True)
    assert cli.returncode == 0 and "0 of %d nodes" % kiln.check(SR_MODEL, backend="cuda").gpu.num_nodes in cli.stdout


def test_simplify(tmp_path):
    # Y = Relu((X + (W * 1)) + 0): the simplifier folds the constants; onnxruntime checks the result.
    nodes = [helper.make_node("Mul", ["W", "one"], ["W1"], name="mul"),
             helper.make_node("Add", ["X", "W1"], ["S"], name="add"),
             helper.make_node("Add", ["S", "zero"], ["S0"], name="add0"),
             helper.make_node("Relu", ["S0"], ["Y"], name="act")]
    graph = helper.make_graph(
        nodes, "s", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor("W", TensorProto.FLOAT, [3], [1.0, -2.0, 3.0]),
         helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]), helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    out = tmp_path / "s.onnx"
    r = kiln.simplify(model, out)
    assert r.verified and r.nodes_before == 4 and r.nodes_after < 4
    simplified = onnx.load(out)
    assert len(simplified.graph.node) == r.nodes_after
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(ort_run(simplified, {"X": x})["Y"], ort_run(model, {"X": x})["Y"], rtol=1e-6)
    with pytest.raises(kiln.Error):
        kiln.simplify(tmp_path / "missing.onnx", out)


def test_value_dependent_output():
    nodes = [helper.make_node("NonZero", ["X"], ["Y"], name="nz")]
    graph = helper.make_graph(nodes, "nz", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("Y", TensorProto.INT64, [2, None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    engine = kiln.build(model, backend="cpu")
    ctx = engine.create_context()
    assert ctx.get_output_shape("Y") == [2, -1]
    x = np.array([[0, 1, 0], [2, 0, 3]], dtype=np.float32)
    y = ctx.run({"X": x})["Y"]
    np.testing.assert_array_equal(y, ort_run(model, {"X": x})["Y"])
    assert ctx.get_output_shape("Y") == [2, 3]
    # Same shape, other values: the output's size follows the values again.
    for x in (np.array([[0, 0, 0], [0, 0, 5]], np.float32), np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32)):
        y = ctx.run({"X": x})["Y"]
        np.testing.assert_array_equal(y, ort_run(model, {"X": x})["Y"])


def test_errors_are_kiln_error_subclasses(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf")
    with pytest.raises(kiln.Error) as e:
        kiln.build(str(bad), backend="cpu")
    assert type(e.value) is not kiln.Error and "bad.onnx" in str(e.value)

    unknown = tiny_model(op="NoSuchOp")
    with pytest.raises(kiln.Error) as e:  # onnx's checker would reject it first; kiln names the node
        kiln.build(unknown, backend="cpu")
    assert "act" in str(e.value) and "NoSuchOp" in str(e.value)

    with pytest.raises(kiln.IoError):
        kiln.Engine.load(tmp_path / "missing.plan")
    with pytest.raises(kiln.Error):
        kiln.Engine.deserialize(b"not a plan")
    with pytest.raises(kiln.InvalidArgumentError):
        kiln.build(SR_MODEL, backend="tpu")
    with pytest.raises(kiln.UnsupportedError):
        kiln.build(SR_MODEL, backend="cpu", fp16=True)
    with pytest.raises(TypeError):
        kiln.build(42, backend="cpu")

    engine = kiln.build(tiny_model(), backend="cpu", profiles={"X": ((1, 3), (2, 3), (4, 3))})
    ctx = engine.create_context()
    with pytest.raises(kiln.OutOfRangeError, match="profile"):
        ctx.run({"X": np.zeros((5, 3), np.float32)})
    with pytest.raises(kiln.InvalidArgumentError, match="dim 1"):
        ctx.set_input_shape("X", (2, 4))
    with pytest.raises(kiln.InvalidArgumentError, match="missing"):
        ctx.run({})
    with pytest.raises(kiln.InvalidArgumentError, match="no input named"):
        ctx.run({"X": np.zeros((2, 3), np.float32), "Z": np.zeros(1)})
    assert issubclass(kiln.Error, RuntimeError)


def test_default_backend_is_cuda():
    if kiln.has_cuda:  # builds where a GPU is; without one the error says why
        try:
            assert kiln.build(SR_MODEL).backend == "cuda"
        except kiln.Error as e:
            assert str(e)
    else:
        with pytest.raises(kiln.UnsupportedError, match="without CUDA"):
            kiln.build(SR_MODEL)


def mlp_model(seed=0):
    """Y = Relu(X·W1 + b1)·W2: float[4, 64] -> float[4, 32], random weights (products FP8 and INT8 take)."""
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((64, 64)).astype(np.float32) / 8
    b1 = rng.standard_normal(64).astype(np.float32) / 8
    w2 = rng.standard_normal((64, 32)).astype(np.float32) / 8
    from onnx import numpy_helper
    nodes = [helper.make_node("MatMul", ["X", "W1"], ["H"], name="fc1"),
             helper.make_node("Add", ["H", "B1"], ["HB"], name="bias1"),
             helper.make_node("Relu", ["HB"], ["R"], name="relu1"),
             helper.make_node("MatMul", ["R", "W2"], ["Y"], name="fc2")]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [4, 64])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [4, 32])],
                              [numpy_helper.from_array(w1, "W1"), numpy_helper.from_array(b1, "B1"),
                               numpy_helper.from_array(w2, "W2")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_fp8_and_int8_build_options(tmp_path):
    # The FP8/INT8 flags reach the builder: the products run quantized (an error onnxruntime's FP32 does
    # not have, small but not zero), the report names them, and the fallback thresholds change the build.
    model = mlp_model()
    x = np.random.default_rng(1).standard_normal((4, 64)).astype(np.float32)
    calib = tmp_path / "calib"
    calib.mkdir()
    np.save(calib / "X.npy", np.random.default_rng(2).standard_normal((4, 64)).astype(np.float32))
    ref = ort_run(model, {"X": x})["Y"]

    fp8 = kiln.build(model, backend="cpu", fp8=True, calib=str(calib))
    err = rel_l2(fp8.create_context().run({"X": x})["Y"], ref)
    assert 1e-4 < err < 0.1, err
    assert any("fc1" in line for line in fp8.report["precision"]), fp8.report["precision"]

    int8 = kiln.build(model, backend="cpu", int8=True, calib=str(calib), int8_model_rel_l2=0)
    err = rel_l2(int8.create_context().run({"X": x})["Y"], ref)
    assert 1e-4 < err < 0.1, err
    assert any("fc1" in line and "INT8" in line.upper() for line in int8.report["precision"]), \
        int8.report["precision"]
    # A fallback threshold no layer meets keeps every product float: the output is FP32's.
    strict = kiln.build(model, backend="cpu", int8=True, calib=str(calib), int8_fallback_rel_l2=1e-12,
                        int8_model_rel_l2=0)
    assert rel_l2(strict.create_context().run({"X": x})["Y"], ref) < 1e-6

    for bad in ({"int8_model_rel_l2": -1.0}, {"calib_percentile": 0.0}, {"int8_fallback_rel_l2": float("nan")}):
        with pytest.raises(kiln.Error, match=next(iter(bad))):
            kiln.build(model, backend="cpu", int8=True, calib=str(calib), **bad)
