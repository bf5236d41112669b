"""kiln.export on small torch modules with the CPU backend (Debian's torch: the TorchScript
exporter). Oracles: the torch modules themselves and onnxruntime on the saved ONNX."""
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import kiln  # noqa: E402
from test_api import ort_run  # noqa: E402


def rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, stride=2), nn.ReLU())
        self.head = nn.Linear(16, 10)

    def forward(self, image):
        x = self.features(image)
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class MLP(nn.Module):
    """Two inputs, two outputs (a tuple)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(12, 32)
        self.b = nn.Linear(4, 32)
        self.out = nn.Linear(32, 5)

    def forward(self, x, cond):
        h = torch.nn.functional.gelu(self.a(x) + self.b(cond))
        y = self.out(h)
        return y, torch.softmax(y, dim=-1)


class Block(nn.Module):
    """A pre-norm transformer block: multi-head self-attention and a GELU MLP (batch, seq, dim)."""

    def __init__(self, dim=32, heads=4):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        b, s, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-2, -1) / (d // self.heads) ** 0.5, dim=-1)
        x = x + self.drop(self.proj((att @ v).transpose(1, 2).reshape(b, s, d)))
        return x + self.mlp(self.norm2(x))


def close(got, ref, tol=1e-4):
    got, ref = got.detach().numpy(), ref.detach().numpy()
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * max(1.0, float(np.abs(ref).max())))


def test_conv_net_dynamic_batch():
    torch.manual_seed(0)
    net = ConvNet().eval()
    m = kiln.export(net, rand(1, 3, 32, 32), backend="cpu")
    assert isinstance(m, nn.Module) and isinstance(m, kiln.ExportedModule)
    assert m.engine.backend == "cpu" and m.report["exporter"] in ("torchscript", "dynamo")
    assert m.engine.inputs[0].name == "image" and m.engine.inputs[0].dims[0] == "batch"
    assert m.report["profiles"] == {"image": ([1, 3, 32, 32], [1, 3, 32, 32], [32, 3, 32, 32])}
    assert set(m.max_error) == {"output"} and 0 <= m.max_error["output"] < 1e-4
    assert m.report["fp16"] is False  # the CPU backend is FP32: fp16=True (the default) is ignored
    for batch in (1, 3, 7):  # batches it was neither traced nor verified at
        x = rand(batch, 3, 32, 32, seed=batch)
        with torch.no_grad():
            close(m(x), net(x))


def test_mlp_two_inputs_tuple_output():
    torch.manual_seed(1)
    net = MLP()
    m = kiln.export(net, (rand(2, 12), rand(2, 4, seed=1)), backend="cpu", max_batch=8)
    assert m.input_names == ["x", "cond"] and m.output_names == ["output_0", "output_1"]
    assert m.report["profiles"]["x"][2] == [8, 12]
    x, c = rand(6, 12, seed=2), rand(6, 4, seed=3)
    y, p = m(x, c)
    ry, rp = net(x, c)
    close(y, ry)
    close(p, rp)
    assert net.training  # the module's mode is restored
    with pytest.raises(kiln.OutOfRangeError):
        m(rand(9, 12), rand(9, 4))  # beyond max_batch


def test_transformer_block_dynamic_seq(tmp_path):
    torch.manual_seed(2)
    block = Block()
    m = kiln.export(block, rand(1, 10, 32), backend="cpu", dynamic_axes={"x": {1: "seq"}, "output": {1: "seq"}},
                    save_dir=tmp_path)
    assert m.engine.inputs[0].dims == ["batch", "seq", 32]
    assert m.report["profiles"]["x"] == ([1, 1, 32], [1, 10, 32], [32, 40, 32])
    block.eval()
    for shape in ((3, 7, 32), (2, 25, 32), (1, 1, 32)):
        x = rand(*shape, seed=shape[1])
        with torch.no_grad():
            close(m(x), block(x))
    # The saved ONNX (onnxruntime) and plan agree with the module too.
    assert m.onnx_path == str(tmp_path / "block.onnx") and os.path.exists(m.plan_path)
    x = rand(4, 9, 32, seed=9)
    with torch.no_grad():
        ref = block(x)
    close(torch.from_numpy(ort_run(m.onnx_path, {"x": x.numpy()})["output"]), ref)
    close(kiln.Engine.load(m.plan_path).create_context().run({"x": x})["output"], ref)


class BakedBatch(nn.Module):
    def forward(self, x):
        return x.reshape(2, -1) * 2  # the traced batch, as a constant


class DictOut(nn.Module):
    def forward(self, x):
        return {"double": x * 2, "sum": x.sum(dim=1)}


def test_baked_batch_fails_loudly():
    with pytest.raises(kiln.ExportError, match="baked"):
        kiln.export(BakedBatch(), rand(1, 4, 6), backend="cpu")
    # Without a dynamic batch it exports at the example's shape.
    m = kiln.export(BakedBatch(), rand(2, 4, 6), backend="cpu", dynamic_batch=False)
    x = rand(2, 4, 6, seed=4)
    close(m(x), BakedBatch()(x))


def test_dict_output_and_errors():
    m = kiln.export(DictOut(), rand(3, 5), backend="cpu", simplify=False)
    out = m(rand(4, 5, seed=5))
    ref = DictOut()(rand(4, 5, seed=5))
    assert list(out) == ["double", "sum"]
    close(out["double"], ref["double"])
    close(out["sum"], ref["sum"])
    with pytest.raises(kiln.InvalidArgumentError, match="backend"):
        kiln.export(DictOut(), rand(3, 5), backend="tpu")
    with pytest.raises(kiln.InvalidArgumentError, match="exporter"):
        kiln.export(DictOut(), rand(3, 5), backend="cpu", exporter="magic")
    with pytest.raises(kiln.InvalidArgumentError, match="takes 1 inputs"):
        m(rand(2, 5), rand(2, 5))
    if "dynamo" not in __import__("inspect").signature(torch.onnx.export).parameters:
        with pytest.raises(kiln.ExportError, match="no dynamo"):
            kiln.export(DictOut(), rand(3, 5), backend="cpu", exporter="dynamo")
