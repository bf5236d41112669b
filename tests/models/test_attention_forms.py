"""Self-attention as model families write it, exported by torch at opset 17 with dynamic batch and sequence:
timm's ViT (one qkv Linear, reshape to [B, N, 3, H, D], permute, unbind), GPT-2 (one c_attn Linear split by
Split, causal Where mask filling finfo.min, or -1e4 as older exports did), transformers' GPT-2 as written
(Conv1D: a Gemm on flattened tokens; the mask sized by a Shape read of the transposed query) and HF BERT
(separate q/k/v Linears, view + permute, additive padding mask), transformers' BART and Whisper (the query
scaled before its head split, bmm on batch·heads; Whisper's k_proj bias-free) and openai-whisper (Q and K
each scaled by d^-0.25).

Checked without a GPU (`kiln check --backend cuda --save-built`, `kiln compare --backend cpu --as-built`): in
every form the GPU build makes one packed projection that kiln.Attention reads as head ranges (pack_qkv; no
Split, Slice, Gather or Transpose copies left), and the built graph on the CPU reference matches onnxruntime on
the exported model, FP32 and FP16, on inputs with a padded sequence.
"""
import math
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("KILN_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))
KILN = os.environ.get("KILN_BIN", os.path.join(BUILD, "kiln"))

torch = pytest.importorskip("torch")
nn = torch.nn

DIM, HEADS = 64, 4


class Timm(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv, self.proj = nn.Linear(DIM, 3 * DIM), nn.Linear(DIM, DIM)

    def forward(self, x, mask):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, HEADS, c // HEADS).permute(2, 0, 3, 1, 4).unbind(0)
        a = ((q @ k.transpose(-2, -1)) * (c // HEADS) ** -0.5).softmax(-1)
        return self.proj((a @ v).transpose(1, 2).reshape(b, n, c))


class Gpt2(nn.Module):
    def __init__(self, fill=torch.finfo(torch.float32).min):
        super().__init__()
        self.c_attn, self.c_proj = nn.Linear(DIM, 3 * DIM), nn.Linear(DIM, DIM)
        self.fill = fill

    def forward(self, x, mask):
        b, n, c = x.shape
        heads = [t.view(b, n, HEADS, c // HEADS).permute(0, 2, 1, 3) for t in self.c_attn(x).split(c, dim=2)]
        q, k, v = heads
        w = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(c // HEADS)
        causal = torch.tril(torch.ones(n, n, dtype=torch.bool)).view(1, 1, n, n)
        w = torch.where(causal, w, torch.tensor(self.fill))
        o = torch.matmul(w.softmax(-1), v).permute(0, 2, 1, 3).contiguous().view(b, n, c)
        return self.c_proj(o)


class Conv1D(nn.Module):
    """transformers' GPT-2 projection: addmm on the tokens flattened to 2-D (a Gemm), viewed back."""

    def __init__(self, nf, nx):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.randn(nx, nf) * 0.1), nn.Parameter(torch.randn(nf) * 0.1)
        self.nf = nf

    def forward(self, x):
        size_out = x.size()[:-1] + (self.nf,)
        return torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight).view(size_out)


class HfGpt2(nn.Module):
    """transformers' GPT-2 attention (eager): Conv1D projections, heads split by view(t.size()[:-1] + ...), the
    causal mask sized by `query.size(-2)` (a Shape read of the transposed query), the scale a tensor."""

    def __init__(self):
        super().__init__()
        self.c_attn, self.c_proj = Conv1D(3 * DIM, DIM), Conv1D(DIM, DIM)

    def forward(self, x, mask):
        heads = [t.view(t.size()[:-1] + (HEADS, DIM // HEADS)).permute(0, 2, 1, 3)
                 for t in self.c_attn(x).split(DIM, dim=2)]
        q, k, v = heads
        w = torch.matmul(q, k.transpose(-1, -2)) / torch.full([], v.size(-1) ** 0.5)
        n = q.size(-2)
        causal = torch.tril(torch.ones(n, n, dtype=torch.bool)).view(1, 1, n, n)
        w = torch.where(causal, w, torch.tensor(torch.finfo(torch.float32).min))
        o = torch.matmul(w.softmax(-1), v).permute(0, 2, 1, 3).contiguous()
        return self.c_proj(o.view(o.size()[:-2] + (DIM,)))


class HfBert(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(DIM, DIM) for _ in range(4))

    def forward(self, x, mask):
        b, n, c = x.shape
        d = c // HEADS
        q, k, v = (t(x).view(b, -1, HEADS, d).permute(0, 2, 1, 3) for t in (self.q, self.k, self.v))
        a = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d)
        a = a + (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min
        o = torch.matmul(a.softmax(-1), v).permute(0, 2, 1, 3).contiguous().view(b, n, c)
        return self.o(o)


class HfBart(nn.Module):
    """transformers' BartAttention (BART, mBART, Marian, Pegasus; WhisperAttention with a bias-free k_proj):
    the query projection scaled before the head split, 3-D bmm over batch·heads, the mask added to a 4-D view."""

    def __init__(self, k_bias=True):
        super().__init__()
        self.q, self.v, self.o = nn.Linear(DIM, DIM), nn.Linear(DIM, DIM), nn.Linear(DIM, DIM)
        self.k = nn.Linear(DIM, DIM, bias=k_bias)
        self.scaling = (DIM // HEADS) ** -0.5

    def forward(self, x, mask):
        b, t, _ = x.size()
        d = DIM // HEADS
        heads = lambda y: y.view(b, -1, HEADS, d).transpose(1, 2).contiguous().view(b * HEADS, -1, d)
        q, k, v = heads(self.q(x) * self.scaling), heads(self.k(x)), heads(self.v(x))
        w = torch.bmm(q, k.transpose(1, 2)).view(b, HEADS, t, -1)
        w = w + (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min
        w = nn.functional.softmax(w.view(b * HEADS, t, -1), dim=-1)
        return self.o(torch.bmm(w, v).view(b, HEADS, t, d).transpose(1, 2).reshape(b, t, DIM))


class OpenAiWhisper(nn.Module):
    """openai-whisper's MultiHeadAttention: Q and K each scaled by d^-0.25 after the head split, K bias-free."""

    def __init__(self):
        super().__init__()
        self.query, self.key, self.value = nn.Linear(DIM, DIM), nn.Linear(DIM, DIM, bias=False), nn.Linear(DIM, DIM)
        self.out = nn.Linear(DIM, DIM)

    def forward(self, x, mask):
        b, t, _ = x.shape
        scale = (DIM // HEADS) ** -0.25
        q = self.query(x).view(b, t, HEADS, -1).permute(0, 2, 1, 3) * scale
        k = self.key(x).view(b, t, HEADS, -1).permute(0, 2, 3, 1) * scale
        v = self.value(x).view(b, t, HEADS, -1).permute(0, 2, 1, 3)
        w = (q @ k).float().softmax(dim=-1).to(q.dtype)
        return self.out((w @ v).permute(0, 2, 1, 3).flatten(start_dim=2))


# transformers before 4.2x filled GPT-2's masked scores with masked_bias = -1e4 (GPT-Neo and GPT-J: -1e9).
FORMS = {"timm_vit": Timm, "gpt2": Gpt2, "gpt2_masked_bias": lambda: Gpt2(-1e4), "hf_gpt2_conv1d": HfGpt2,
         "hf_bert": HfBert, "hf_bart": HfBart, "hf_whisper": lambda: HfBart(k_bias=False),
         "openai_whisper": OpenAiWhisper}


def kiln(*args):
    r = subprocess.run([KILN, *args], capture_output=True, text=True)
    assert r.returncode == 0, f"kiln {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r.stdout


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("forms")
    paths = {}
    for name, cls in FORMS.items():
        path = str(out / (name + ".onnx"))
        x, mask = torch.randn(2, 10, DIM), torch.ones(2, 10)
        axes = {0: "batch", 1: "seq"}
        torch.onnx.export(cls().eval(), (x, mask), path, opset_version=17, input_names=["x", "mask"],
                          output_names=["y"], dynamic_axes={"x": axes, "mask": axes})
        paths[name] = path
    return paths


@pytest.mark.parametrize("name", list(FORMS))
def test_projection_packed(name, exported, tmp_path):
    built = tmp_path / "built.onnx"
    kiln("check", exported[name], "--backend", "cuda", "--fp16", "--save-built", str(built))
    nodes = onnx.load(str(built)).graph.node
    ops = [n.op_type for n in nodes]
    attention = [n for n in nodes if n.op_type == "Attention"]
    assert len(attention) == 1, ops
    ranges = [list(a.ints) for a in attention[0].attribute if a.name == "head_ranges"]
    assert ranges == [[0, HEADS, HEADS, HEADS, 2 * HEADS, HEADS]], (ranges, ops)
    assert len(set(attention[0].input[:3])) == 1, attention[0].input
    graph = onnx.load(str(built)).graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.input, *graph.output]}
    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    for n in nodes:  # a copy of activations (an int64 Gather or Slice is host shape arithmetic)
        copies = n.op_type in ("Split", "Slice", "Transpose", "Gather") and types.get(n.input[0]) in floats
        assert not copies, (n.name, ops)
    products = [n for n in nodes if n.op_type in ("FusedMatMul", "MatMul", "Gemm")]
    assert len(products) == 2, ops  # the packed projection and the output projection


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("name", list(FORMS))
def test_as_built_matches_onnxruntime(name, precision, exported, tmp_path):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 11, DIM)).astype(np.float32)
    mask = np.ones((3, 11), np.float32)
    mask[1, 6:] = 0  # a padded sequence (read by the HF form)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "mask.npy", mask)
    args = ["compare", exported[name], "--backend", "cpu", "--as-built", "--python", sys.executable,
            "--input", f"x={tmp_path / 'x.npy'}"]
    if any(i.name == "mask" for i in onnx.load(exported[name]).graph.input):  # torch drops unused inputs
        args += ["--input", f"mask={tmp_path / 'mask.npy'}"]
    if precision == "fp16":
        args.append("--fp16")
    out = kiln(*args)
    assert "PASS" in out, out
    print(next(line for line in out.splitlines() if line.strip().startswith("y ")))


class HfGpt2Mlp(nn.Module):
    """transformers' GPT-2 MLP: LayerNorm, Conv1D, gelu_new (tanh form, written out), Conv1D, residual."""

    def __init__(self):
        super().__init__()
        self.ln, self.c_fc, self.c_proj = nn.LayerNorm(DIM), Conv1D(4 * DIM, DIM), Conv1D(DIM, 4 * DIM)

    def forward(self, x):
        h = self.c_fc(self.ln(x))
        h = 0.5 * h * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * torch.pow(h, 3.0))))
        return x + self.c_proj(h)


def test_conv1d_mlp_fuses_like_linear(tmp_path):
    """The Conv1D Gemms on flattened tokens become products on the tokens (flat_gemm), so the GELU goes into
    c_fc's epilogue and the residual into c_proj's, and the built graph matches onnxruntime."""
    torch.manual_seed(1)
    path = str(tmp_path / "mlp.onnx")
    torch.onnx.export(HfGpt2Mlp().eval(), (torch.randn(2, 10, DIM),), path, opset_version=17, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "batch", 1: "seq"}})
    built = tmp_path / "built.onnx"
    kiln("check", path, "--backend", "cuda", "--fp16", "--save-built", str(built))
    nodes = onnx.load(str(built)).graph.node
    ops = [n.op_type for n in nodes]
    products = [n for n in nodes if n.op_type in ("FusedMatMul", "MatMul", "Gemm")]
    assert [n.op_type for n in products] == ["FusedMatMul", "FusedMatMul"], ops
    act = [next((a.s.decode() for a in p.attribute if a.name == "activation"), "") for p in products]
    assert act[0] == "GeluTanh", (act, ops)
    assert len(products[1].input) == 4 and products[1].input[3], "the residual is c_proj's Z input"
    assert "Gelu" not in ops and "Reshape" not in ops, ops
    x = np.random.default_rng(4).standard_normal((3, 7, DIM)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    for extra in ([], ["--fp16"]):
        out = kiln("compare", path, "--backend", "cpu", "--as-built", "--python", sys.executable, "--input",
                   f"x={tmp_path / 'x.npy'}", *extra)
        assert "PASS" in out, out
