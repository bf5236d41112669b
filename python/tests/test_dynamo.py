"""The torch.compile backend. kiln_backend itself (an FX graph and example inputs in, a callable
out) runs on any torch with torch.fx (here Debian's 1.13, graphs from torch.fx.symbolic_trace);
torch.compile(backend="kiln") itself needs torch >= 2 and is skipped before. Oracle: the graphs
run eagerly by torch."""
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import kiln  # noqa: E402
from kiln import _dynamo  # noqa: E402

TORCH2 = int(torch.__version__.split(".")[0]) >= 2
needs_compile = pytest.mark.skipif(not TORCH2, reason=f"torch.compile needs torch >= 2 (this is {torch.__version__})")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


class Spectral(nn.Module):
    """torch.fft has no ONNX export: the graph falls back to eager."""

    def forward(self, x):
        return torch.fft.rfft(x).abs() + 1


def rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def close(a, b):
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_backend_builds_and_caches():
    _dynamo.cache_clear()
    torch.manual_seed(0)
    gm = torch.fx.symbolic_trace(Net())
    with warnings.catch_warnings():
        warnings.simplefilter("error", _dynamo.KilnFallbackWarning)
        run = _dynamo.kiln_backend(gm, [rand(2, 3, 8, 8)])
    assert isinstance(run, _dynamo._Runner) and run.engine.backend == "cpu"
    x = rand(2, 3, 8, 8, seed=1)
    close(run(x), gm(x))
    assert _dynamo.stats == {"builds": 1, "hits": 0, "fallbacks": 0}
    # The same graph at the same shapes: from the cache; another shape: another engine.
    assert _dynamo.kiln_backend(gm, [rand(2, 3, 8, 8)]) is run
    other = _dynamo.kiln_backend(gm, [rand(1, 3, 5, 5)])
    assert other is not run and _dynamo.stats == {"builds": 2, "hits": 1, "fallbacks": 0}
    x = rand(1, 3, 5, 5, seed=2)
    close(other(x), gm(x))
    # Other weights (another module, same code): not the cached engine.
    gm2 = torch.fx.symbolic_trace(Net())
    run2 = _dynamo.kiln_backend(gm2, [rand(2, 3, 8, 8)])
    assert run2 is not run
    close(run2(rand(2, 3, 8, 8, seed=3)), gm2(rand(2, 3, 8, 8, seed=3)))


@torch.no_grad()
def test_parameter_inputs_are_baked():
    # Newer dynamo passes parameters as graph inputs: kiln bakes them as weights.
    def f(x, w, b):
        return torch.nn.functional.linear(x, w, b).relu()

    gm = torch.fx.symbolic_trace(f)
    w, b = nn.Parameter(rand(6, 4, seed=4)), nn.Parameter(rand(6, seed=5))
    run = _dynamo.kiln_backend(gm, [rand(3, 4), w, b])
    assert [i.name for i in run.engine.inputs] == ["input_0"]  # only x is an engine input
    x = rand(3, 4, seed=6)
    close(run(x, w, b), f(x, w, b))


def test_unexportable_graph_runs_eagerly_with_a_warning():
    _dynamo.cache_clear()
    gm = torch.fx.symbolic_trace(Spectral())
    with pytest.warns(_dynamo.KilnFallbackWarning, match="rfft") as w:
        run = _dynamo.kiln_backend(gm, [rand(2, 16)])
    message = str(w[0].message)
    assert "eagerly" in message and "node 'fft_rfft'" in message, message
    x = rand(2, 16, seed=7)
    close(run(x), Spectral()(x))
    assert _dynamo.stats["fallbacks"] == 1
    with warnings.catch_warnings():  # cached: no second export attempt, no second warning
        warnings.simplefilter("error", _dynamo.KilnFallbackWarning)
        _dynamo.kiln_backend(gm, [rand(2, 16)])


def test_gradients_fall_back():
    gm = torch.fx.symbolic_trace(Net())
    with pytest.warns(_dynamo.KilnFallbackWarning, match="no gradients"):
        run = _dynamo.kiln_backend(gm, [rand(2, 3, 4, 4)])
    x = rand(2, 3, 4, 4, seed=11)
    y = run(x)
    assert y.requires_grad  # eager: autograd works
    close(y, gm(x))


def test_non_tensor_inputs_fall_back():
    gm = torch.fx.symbolic_trace(lambda x, n: x * n)
    with pytest.warns(_dynamo.KilnFallbackWarning, match="graph input 1 is a int"):
        run = _dynamo.kiln_backend(gm, [rand(2), 3])
    close(run(rand(2), 3), rand(2) * 3)


@needs_compile
def test_torch_compile_backend_kiln():
    import torch._dynamo
    torch._dynamo.reset()
    kiln.register_torch_backend()
    assert "kiln" in torch._dynamo.list_backends(exclude_tags=())
    net = Net().eval()
    compiled = torch.compile(net, backend="kiln", dynamic=False)
    _dynamo.cache_clear()
    x = rand(2, 3, 8, 8, seed=8)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", _dynamo.KilnFallbackWarning)
        close(compiled(x), net(x))
        close(compiled(rand(4, 3, 8, 8, seed=9)), net(rand(4, 3, 8, 8, seed=9)))
    assert _dynamo.stats["builds"] >= 1 and _dynamo.stats["fallbacks"] == 0


@needs_compile
def test_torch_compile_falls_back_with_a_warning():
    import torch._dynamo
    torch._dynamo.reset()
    _dynamo.cache_clear()
    kiln.register_torch_backend()
    compiled = torch.compile(Spectral(), backend="kiln", dynamic=False)
    x = rand(2, 16, seed=10)
    with torch.no_grad(), pytest.warns(_dynamo.KilnFallbackWarning, match="eagerly"):
        close(compiled(x), Spectral()(x))
