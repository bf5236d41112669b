"""torch tensors in and out of Context.run: CPU tensors on the CPU backend (here), CUDA tensors
without copies on torch's stream (skipped without CUDA). Oracles: onnxruntime and torch."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import kiln  # noqa: E402
from test_api import SR_MODEL, ort_run, tiny_model  # noqa: E402

from onnx import TensorProto, helper  # noqa: E402

cuda = pytest.mark.skipif(not (kiln.has_cuda and torch.cuda.is_available()),
                          reason="needs a CUDA build of kiln and a GPU")


def nonzero_model():
    nodes = [helper.make_node("NonZero", ["X"], ["Y"], name="nz")]
    graph = helper.make_graph(nodes, "nz", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", 3])],
                              [helper.make_tensor_value_info("Y", TensorProto.INT64, [2, None])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_cpu_tensors_in_and_out():
    engine = kiln.build(SR_MODEL, backend="cpu")
    ctx = engine.create_context()
    x = torch.rand(2, 1, 24, 20, generator=torch.Generator().manual_seed(0))
    out = ctx.run({"input": x})
    assert isinstance(out["output"], torch.Tensor) and out["output"].dtype == torch.float32
    assert out["output"].device.type == "cpu" and out["output"].shape == (2, 1, 72, 60)
    np.testing.assert_allclose(out["output"].numpy(), ort_run(SR_MODEL, {"input": x.numpy()})["output"],
                               rtol=1e-4, atol=1e-5)
    # Non-contiguous, float64 and requires_grad inputs are converted; the next shape on the same context.
    x2 = torch.rand(1, 1, 30, 16, dtype=torch.float64).transpose(2, 3).requires_grad_()
    out2 = ctx.run({"input": x2})["output"]
    ref = ort_run(SR_MODEL, {"input": x2.detach().float().contiguous().numpy()})["output"]
    np.testing.assert_allclose(out2.numpy(), ref, rtol=1e-4, atol=1e-5)


def test_cpu_tensor_outputs_are_fresh():
    # Each run's outputs are new tensors: an earlier result is not overwritten by a later run.
    engine = kiln.build(tiny_model(), backend="cpu", profiles={"X": ((1, 3), (2, 3), (4, 3))})
    ctx = engine.create_context()
    a = ctx.run({"X": torch.zeros(2, 3)})["Y"]
    b = ctx.run({"X": torch.ones(2, 3)})["Y"]
    np.testing.assert_array_equal(a.numpy(), np.maximum(np.array([[1, -2, 3]] * 2, np.float32), 0))
    np.testing.assert_array_equal(b.numpy(), np.maximum(np.array([[2, -1, 4]] * 2, np.float32), 0))
    assert a.data_ptr() != b.data_ptr()


def test_value_dependent_output_torch():
    model = nonzero_model()
    ctx = kiln.build(model, backend="cpu").create_context()
    for x in (torch.tensor([[0, 1, 0], [2, 0, 3]], dtype=torch.float32), torch.zeros(4, 3), torch.ones(1, 3),
              torch.tensor([[0, 0, 7]], dtype=torch.float32)):
        y = ctx.run({"X": x})["Y"]
        assert isinstance(y, torch.Tensor) and y.dtype == torch.int64
        np.testing.assert_array_equal(y.numpy(), ort_run(model, {"X": x.numpy()})["Y"])


def test_torch_errors():
    engine = kiln.build(tiny_model(), backend="cpu", profiles={"X": ((1, 3), (2, 3), (4, 3))})
    ctx = engine.create_context()
    with pytest.raises(kiln.InvalidArgumentError, match="no input named"):
        ctx.run({"X": torch.zeros(2, 3), "Z": torch.zeros(1)})
    with pytest.raises(kiln.OutOfRangeError, match="profile"):
        ctx.run({"X": torch.zeros(5, 3)})
    with pytest.raises(kiln.InvalidArgumentError, match="stream"):
        ctx.run({"X": torch.zeros(2, 3)}, stream=1)
    with pytest.raises(kiln.InvalidArgumentError, match="stream"):
        ctx.run({"X": np.zeros((2, 3), np.float32)}, stream=1)
    # The context still works after the errors.
    np.testing.assert_array_equal(ctx.run({"X": torch.zeros(1, 3)})["Y"].numpy(), [[1, 0, 3]])


@cuda
def test_cuda_tensors_zero_copy():
    engine = kiln.build(SR_MODEL, backend="cuda")
    ctx = engine.create_context()
    x = torch.rand(2, 1, 64, 48, device="cuda")
    before = torch.cuda.memory_allocated()
    out = ctx.run({"input": x})["output"]
    y = out
    assert y.is_cuda and y.device == x.device and y.shape == (2, 1, 192, 144)
    # Only the output was allocated (by torch): no staging copies of the input or the output.
    assert torch.cuda.memory_allocated() - before == y.numel() * 4
    torch.cuda.current_stream().synchronize()
    ref = ort_run(SR_MODEL, {"input": x.cpu().numpy()})["output"]
    np.testing.assert_allclose(y.cpu().numpy(), ref, rtol=1e-3, atol=1e-4)
    # CPU tensors into a CUDA engine: staged, back as CPU tensors.
    cpu_out = ctx.run({"input": x.cpu()})["output"]
    assert cpu_out.device.type == "cpu"
    np.testing.assert_allclose(cpu_out.numpy(), ref, rtol=1e-3, atol=1e-4)


@cuda
def test_cuda_stream_semantics():
    engine = kiln.build(SR_MODEL, backend="cuda")
    ctx = engine.create_context()
    x = torch.rand(4, 1, 128, 128, device="cuda")
    ref = ort_run(SR_MODEL, {"input": x.cpu().numpy()})["output"]
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):  # torch's current stream is s: kiln runs there
        y = ctx.run({"input": x})["output"]
        y2 = y * 2  # ordered after kiln's work on the same stream
    s.synchronize()
    np.testing.assert_allclose(y2.cpu().numpy(), 2 * ref, rtol=1e-3, atol=1e-4)
    # An explicit stream (torch.cuda.Stream or a cudaStream_t int).
    other = torch.cuda.Stream()
    other.wait_stream(torch.cuda.current_stream())
    y3 = ctx.run({"input": x}, stream=other)["output"]
    other.synchronize()
    np.testing.assert_allclose(y3.cpu().numpy(), ref, rtol=1e-3, atol=1e-4)
    y4 = ctx.run({"input": x}, stream=other.cuda_stream)["output"]
    other.synchronize()
    np.testing.assert_allclose(y4.cpu().numpy(), ref, rtol=1e-3, atol=1e-4)


@cuda
def test_cuda_value_dependent_output():
    model = nonzero_model()
    ctx = kiln.build(model, backend="cuda").create_context()
    for x in (torch.tensor([[0, 1, 0], [2, 0, 3]]), torch.zeros(4, 3), torch.ones(3, 3)):
        y = ctx.run({"X": x.float().cuda()})["Y"]
        assert y.is_cuda and y.dtype == torch.int64
        np.testing.assert_array_equal(y.cpu().numpy(), ort_run(model, {"X": x.float().numpy()})["Y"])
