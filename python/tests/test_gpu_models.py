"""GPU tests for the device machine (skipped without a CUDA build of kiln and a GPU):
kiln.export and torch.compile(backend="kiln") on resnet50 and a HF BERT against torch eager,
with CUDA tensors in and out."""
import warnings

import pytest

torch = pytest.importorskip("torch")

import kiln  # noqa: E402

pytestmark = pytest.mark.skipif(not (kiln.has_cuda and torch.cuda.is_available()),
                                reason="needs a CUDA build of kiln and a GPU")
TORCH2 = int(torch.__version__.split(".")[0]) >= 2


def rel_error(got, ref):
    return ((got.float() - ref.float()).abs().max() / ref.float().abs().max().clamp_min(1e-6)).item()


def test_export_resnet50_fp16():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.resnet50().eval().cuda()
    m = kiln.export(model, torch.randn(1, 3, 224, 224, device="cuda"), backend="cuda", fp16=True)
    assert m.engine.backend == "cuda" and m.report["fp16"]
    x = torch.randn(8, 3, 224, 224, device="cuda")
    with torch.no_grad():
        got, ref = m(x), model(x)
    assert got.is_cuda and got.shape == (8, 1000)
    assert rel_error(got, ref) < 2e-2
    assert (got.float().argmax(1) == ref.argmax(1)).float().mean() >= 0.9


@pytest.mark.skipif(not TORCH2, reason="torch.compile needs torch >= 2")
def test_torch_compile_resnet50():
    torchvision = pytest.importorskip("torchvision")
    import torch._dynamo
    from kiln import _dynamo
    torch._dynamo.reset()
    _dynamo.cache_clear()
    torch.manual_seed(0)
    model = torchvision.models.resnet50().eval().cuda()
    compiled = torch.compile(model, backend="kiln", dynamic=False)
    x = torch.randn(4, 3, 224, 224, device="cuda")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", _dynamo.KilnFallbackWarning)
        got = compiled(x)
        ref = model(x)
    assert _dynamo.stats["builds"] >= 1 and _dynamo.stats["fallbacks"] == 0
    assert rel_error(got, ref) < 1e-3  # FP32


@pytest.mark.skipif(not TORCH2, reason="torch.compile needs torch >= 2")
def test_torch_compile_bert():
    transformers = pytest.importorskip("transformers")
    import torch._dynamo
    from kiln import _dynamo
    torch._dynamo.reset()
    _dynamo.cache_clear()
    config = transformers.BertConfig(num_hidden_layers=2, hidden_size=128, num_attention_heads=4,
                                     intermediate_size=512)
    model = transformers.BertModel(config).eval().cuda()
    compiled = torch.compile(model, backend="kiln", dynamic=False)
    ids = torch.randint(0, config.vocab_size, (2, 32), device="cuda")
    mask = torch.ones_like(ids)
    with torch.no_grad():
        got = compiled(input_ids=ids, attention_mask=mask).last_hidden_state
        ref = model(input_ids=ids, attention_mask=mask).last_hidden_state
    assert _dynamo.stats["builds"] >= 1
    assert rel_error(got, ref) < 1e-3
