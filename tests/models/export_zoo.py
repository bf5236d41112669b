#!/usr/bin/env python3
"""Export kiln's model zoo to ONNX with PyTorch (random weights, fixed seed).

Models: the PyTorch super-resolution tutorial model, resnet18, resnet50,
mobilenet_v2, efficientnet_b0, vit_b_16 and a BERT-style encoder, all with a
dynamic batch axis (and a dynamic sequence axis for the encoder); and the
torchvision detectors of zoo_detectors.py (one 320x320 image, test_detection.py).
Spatial sizes are kept small where the architecture allows it, so the CPU
reference runs the zoo in CI in minutes.

Usage: export_zoo.py OUT_DIR [--only NAME ...] [--opset 17]
Writes OUT_DIR/<name>.onnx. Run with an interpreter that has torch and
torchvision (Debian's python3-torch, or the GPU machine's torch).
"""
import argparse
import math
import os
import sys
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo_detectors import ALL_DETECTORS, DETECTION_SIZE, DETECTORS


class SuperResolutionNet(nn.Module):
    """The model of PyTorch's "super resolution" ONNX export tutorial."""

    def __init__(self, upscale_factor=3):
        super().__init__()
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(1, 64, (5, 5), (1, 1), (2, 2))
        self.conv2 = nn.Conv2d(64, 64, (3, 3), (1, 1), (1, 1))
        self.conv3 = nn.Conv2d(64, 32, (3, 3), (1, 1), (1, 1))
        self.conv4 = nn.Conv2d(32, upscale_factor ** 2, (3, 3), (1, 1), (1, 1))
        self.pixel_shuffle = nn.PixelShuffle(upscale_factor)

    def forward(self, x):
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        x = self.relu(self.conv3(x))
        return self.pixel_shuffle(self.conv4(x))


class EncoderLayer(nn.Module):
    """BERT encoder layer written out (attention, LayerNorm, GELU) so every
    exporter produces the plain MatMul/Softmax/LayerNorm pattern."""

    def __init__(self, hidden, heads, ffn):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.ln1 = nn.LayerNorm(hidden)
        self.fc1 = nn.Linear(hidden, ffn)
        self.fc2 = nn.Linear(ffn, hidden)
        self.ln2 = nn.LayerNorm(hidden)

    def forward(self, x, mask):
        b, s, h = x.shape
        d = h // self.heads
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q = q.reshape(b, s, self.heads, d).transpose(1, 2)
        k = k.reshape(b, s, self.heads, d).transpose(1, 2)
        v = v.reshape(b, s, self.heads, d).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d) + mask
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v)
        ctx = ctx.transpose(1, 2).reshape(b, s, h)
        x = self.ln1(x + self.proj(ctx))
        return self.ln2(x + self.fc2(F.gelu(self.fc1(x))))


class BertEncoder(nn.Module):
    def __init__(self, vocab=1000, hidden=256, heads=4, layers=2, ffn=1024, max_pos=512):
        super().__init__()
        self.word = nn.Embedding(vocab, hidden)
        self.pos = nn.Embedding(max_pos, hidden)
        self.token_type = nn.Embedding(2, hidden)
        self.ln = nn.LayerNorm(hidden)
        self.layers = nn.ModuleList([EncoderLayer(hidden, heads, ffn) for _ in range(layers)])
        self.pool = nn.Linear(hidden, hidden)

    def forward(self, input_ids, attention_mask):
        s = input_ids.shape[1]
        pos = torch.arange(s, device=input_ids.device).unsqueeze(0)
        x = self.word(input_ids) + self.pos(pos) + self.token_type(torch.zeros_like(input_ids))
        x = self.ln(x)
        mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, mask)
        return x, torch.tanh(self.pool(x[:, 0]))


class RmsNorm(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(hidden) + 0.5)

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6))


class LlamaLayer(nn.Module):
    """A Llama decoder layer as HF writes it: RMSNorm, rotary embeddings (rotate_half), grouped-query
    heads repeated by expand + reshape (repeat_kv), additive causal + padding mask, SiLU-gated MLP."""

    def __init__(self, hidden, heads, kv_heads, ffn):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, hidden // heads
        self.n1, self.n2 = RmsNorm(hidden), RmsNorm(hidden)
        self.q = nn.Linear(hidden, hidden, bias=False)
        self.k = nn.Linear(hidden, kv_heads * self.head_dim, bias=False)
        self.v = nn.Linear(hidden, kv_heads * self.head_dim, bias=False)
        self.o = nn.Linear(hidden, hidden, bias=False)
        self.gate = nn.Linear(hidden, ffn, bias=False)
        self.up = nn.Linear(hidden, ffn, bias=False)
        self.down = nn.Linear(ffn, hidden, bias=False)

    def rotate(self, x, cos, sin):
        half = self.head_dim // 2
        return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin

    def repeat_kv(self, x, b, s):
        n = self.heads // self.kv_heads
        return x[:, :, None].expand(b, self.kv_heads, n, s, self.head_dim).reshape(b, self.heads, s, self.head_dim)

    def forward(self, x, cos, sin, mask):
        b, s, hidden = x.shape
        h = self.n1(x)
        q = self.q(h).view(b, s, self.heads, self.head_dim).transpose(1, 2)
        k = self.k(h).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(h).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = self.rotate(q, cos, sin), self.rotate(k, cos, sin)
        k, v = self.repeat_kv(k, b, s), self.repeat_kv(v, b, s)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim) + mask
        ctx = torch.matmul(F.softmax(scores.float(), dim=-1).to(q.dtype), v)
        x = x + self.o(ctx.transpose(1, 2).reshape(b, s, hidden))
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class LlamaDecoder(nn.Module):
    def __init__(self, vocab=1000, hidden=128, heads=8, kv_heads=2, layers=2, ffn=256):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.layers = nn.ModuleList([LlamaLayer(hidden, heads, kv_heads, ffn) for _ in range(layers)])
        self.norm = RmsNorm(hidden)
        self.head_dim = hidden // heads

    def forward(self, input_ids, attention_mask):
        s = input_ids.shape[1]
        x = self.embed(input_ids)
        # Rotary tables from a float arange (torch.arange(s, dtype=float32) exports Range over a Cast).
        inv = 1.0 / (10000 ** (torch.arange(0, self.head_dim, 2, dtype=torch.float32) / self.head_dim))
        freqs = torch.outer(torch.arange(s, dtype=torch.float32), inv)
        emb = torch.cat((freqs, freqs), dim=-1)
        # HF's mask: the causal triangle, and padded keys set to the lowest float by a Where (no sum of two
        # lowest floats: -inf, nor NaN for masks that are not 0/1, as random inputs give).
        low = torch.finfo(torch.float32).min
        causal = torch.triu(torch.full((s, s), low), 1)[None, None]
        mask = torch.where(attention_mask[:, None, None, :] == 0, torch.tensor(low), causal)
        for layer in self.layers:
            x = layer(x, emb.cos(), emb.sin(), mask)
        return self.norm(x)


def hf_bert():
    """HF transformers BertModel, bert-base config, random weights."""
    from transformers import BertConfig, BertModel

    class Wrapped(nn.Module):
        # Keyword arguments: BertModel.forward's positional order changed across transformers releases.
        def __init__(self):
            super().__init__()
            self.bert = BertModel(BertConfig())

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state, out.pooler_output

    model = Wrapped()
    ids = torch.randint(0, 30522, (1, 128))
    mask = torch.ones(1, 128, dtype=torch.int64)
    types = torch.zeros(1, 128, dtype=torch.int64)
    axes = {0: "batch", 1: "seq"}
    return (model, (ids, mask, types), ["input_ids", "attention_mask", "token_type_ids"],
            ["last_hidden_state", "pooler_output"],
            {"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "last_hidden_state": axes,
             "pooler_output": {0: "batch"}})


def calibrate_batchnorm(model, size, steps=4):
    """Sets BatchNorm running statistics from random images (cumulative average).

    With freshly initialised statistics (mean 0, var 1) random-weight conv nets
    shrink activations layer by layer (mobilenet_v2 reaches ~1e-7 at its last
    block), far below float16's normal range: that tests float16 underflow, not
    an engine. Calibrated statistics keep activations O(1), as in a trained
    network; the weights stay random.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            model(torch.randn(8, 3, size, size))
    model.eval()


def calibrate_head(model, size, steps=4):
    """Centres the classifier: subtracts the logits of the mean feature from the last Linear's bias.

    A random-weight CNN's pooled features are post-ReLU, so their mean is large
    and the same for every image; through a random head that mean becomes a
    logit offset that does not depend on the input (85% of resnet50's logit
    norm), and the reference's top-1 is one class for nearly every image. A
    trained head has no such offset; removing it keeps the outputs dependent
    on the input, so comparisons against them mean something.
    """
    model.eval()
    heads = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not heads or heads[-1].bias is None:
        return
    head, feats = heads[-1], []
    hook = head.register_forward_hook(lambda mod, inp, out: feats.append(inp[0].detach()))
    with torch.no_grad():
        for _ in range(steps):
            model(torch.randn(8, 3, size, size))
        hook.remove()
        mean = torch.cat(feats).reshape(-1, head.in_features).mean(dim=0)
        head.bias -= head.weight @ mean


CALIBRATE_BN = False  # set by --calibrate-bn


def image_model(name, size):
    import torchvision

    model = getattr(torchvision.models, name)()
    if CALIBRATE_BN:
        calibrate_batchnorm(model, size)
        calibrate_head(model, size)
    if name.startswith("vit"):
        # torchvision zero-initialises the ViT head, so every logit would be 0
        # and any comparison would pass: give it random weights too.
        nn.init.normal_(model.heads.head.weight, std=0.02)
        nn.init.normal_(model.heads.head.bias, std=0.02)
    return model, (torch.randn(1, 3, size, size),), ["input"], ["output"], {"input": {0: "batch"},
                                                                            "output": {0: "batch"}}


def detection_model(name, calibrate_bn=None):
    """A torchvision detector of zoo_detectors.py with random weights (no download), traced on one image in
    [0, 1]. calibrate_bn: calibrate the backbone if the detector asks for it (default: --calibrate-bn)."""
    import torchvision

    kwargs, outputs, calibrate = ALL_DETECTORS[name]
    model = getattr(torchvision.models.detection, name)(weights=None, weights_backbone=None, **kwargs)
    if (CALIBRATE_BN if calibrate_bn is None else calibrate_bn) and calibrate:
        # Detectors take targets in train mode: calibrate the backbone alone.
        calibrate_batchnorm(model.backbone, DETECTION_SIZE)
    return model, (torch.rand(1, 3, DETECTION_SIZE, DETECTION_SIZE),), ["image"], outputs, {}


def build(name, size):
    if name in DETECTORS:
        return detection_model(name)
    if name == "hf_bert":
        return hf_bert()
    if name == "super_resolution":
        return (SuperResolutionNet(), (torch.randn(1, 1, size, size),), ["input"], ["output"],
                {"input": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch", 2: "out_h", 3: "out_w"}})
    if name in ("bert_encoder", "bert_encoder_opset13"):
        ids = torch.randint(0, 1000, (1, 32))
        mask = torch.ones(1, 32, dtype=torch.int64)
        axes = {0: "batch", 1: "seq"}
        return (BertEncoder(), (ids, mask), ["input_ids", "attention_mask"], ["last_hidden_state", "pooled"],
                {"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes, "pooled": {0: "batch"}})
    if name == "llama_decoder":
        ids = torch.randint(0, 1000, (1, 32))
        mask = torch.ones(1, 32, dtype=torch.int64)
        axes = {0: "batch", 1: "seq"}
        return (LlamaDecoder(), (ids, mask), ["input_ids", "attention_mask"], ["last_hidden_state"],
                {"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes})
    if name in ("resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0"):
        return image_model(name, size)
    if name == "vit_b_16":
        return image_model(name, 224)  # fixed by its position embedding
    if name == "vit_tiny":
        # ViT-B/16's structure at toy size (2 layers, 2 heads, 32 wide, 32x32
        # images): its dynamo export is checked in as tests/fixtures/vit_tiny_dynamo.onnx.
        from torchvision.models.vision_transformer import VisionTransformer

        model = VisionTransformer(image_size=32, patch_size=16, num_layers=2, num_heads=2, hidden_dim=32,
                                  mlp_dim=64, num_classes=10)
        nn.init.normal_(model.heads.head.weight, std=0.2)
        return model, (torch.randn(1, 3, 32, 32),), ["input"], ["output"], {"input": {0: "batch"},
                                                                           "output": {0: "batch"}}
    raise SystemExit(f"unknown model {name}")


# bert_encoder_opset13: the same encoder at opset 13, where LayerNorm has no
# op and exports as ReduceMean/Sub/Pow/Sqrt/Div chains (pointwise fusion's case).
ZOO = ["super_resolution", "resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "vit_b_16", "bert_encoder",
       "bert_encoder_opset13", "llama_decoder", *DETECTORS]
OPSET_OF = {"bert_encoder_opset13": 13}


def check_dynamic(path, axes):
    """Fails when an axis asked to be dynamic came out as a fixed size."""
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    for v in list(graph.input) + list(graph.output):
        dims = v.type.tensor_type.shape.dim
        for axis in axes.get(v.name, {}):
            if axis < len(dims) and dims[axis].HasField("dim_value"):
                os.remove(path)
                raise SystemExit(f"{path}: {v.name} axis {axis} was exported with fixed size {dims[axis].dim_value}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--size", type=int, default=64, help="image side for the conv nets (CI uses 64)")
    ap.add_argument("--exporter", choices=["torchscript", "dynamo"], default="torchscript")
    ap.add_argument("--calibrate-bn", action="store_true",
                    help="set BatchNorm statistics from random images (keeps activations O(1)) and centre the "
                         "classifier head (outputs depend on the input)")
    args = ap.parse_args()
    global CALIBRATE_BN
    CALIBRATE_BN = args.calibrate_bn
    warnings.simplefilter("ignore")
    os.makedirs(args.out_dir, exist_ok=True)
    for name in args.only or ZOO:
        path = os.path.join(args.out_dir, name + ".onnx")
        if os.path.exists(path):
            print(f"{name}: exists")
            continue
        torch.manual_seed(0)
        model, example, in_names, out_names, axes = build(name, args.size)
        model.eval()
        tmp = path + ".tmp"
        # Grad mode stays on: under no_grad, nn.MultiheadAttention takes a fused
        # fast path (aten::_native_multi_head_attention) that has no ONNX export.
        kwargs = {}
        if "dynamo" in torch.onnx.export.__code__.co_varnames:  # torch >= 2.5 knows both exporters
            kwargs["dynamo"] = args.exporter == "dynamo"
        if args.exporter == "dynamo":
            kwargs["external_data"] = False
            # torch.export specialises a dynamic axis whose example size is 0 or 1
            # (dynamic_axes become Dim.DYNAMIC hints), so a batch-1 example bakes
            # batch 1 into Reshape targets and the outputs: trace at batch 2.
            example = tuple(torch.cat([t, t]) for t in example)
        torch.onnx.export(model, example, tmp, opset_version=OPSET_OF.get(name, args.opset), input_names=in_names,
                          output_names=out_names, dynamic_axes=axes, do_constant_folding=True, **kwargs)
        check_dynamic(tmp, axes)
        os.replace(tmp, path)
        print(f"{name}: wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
