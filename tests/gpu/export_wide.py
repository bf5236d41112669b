#!/usr/bin/env python3
"""Export issue #10's model list to ONNX (random weights, no downloads) for tests/gpu/test_wide_gpu.py.

    export_wide.py OUT_DIR [--models a,b] [--exporter torchscript|dynamo|both] [--jobs N] [--timeout S]

Models (MODELS below):
  torchvision detection (tests/models/zoo_detectors.py WIDE_DETECTORS, one 320x320 image):
    maskrcnn_resnet50_fpn, maskrcnn_resnet50_fpn_v2, fasterrcnn_resnet50_fpn_v2, retinanet_resnet50_fpn_v2,
    fcos_resnet50_fpn, ssdlite320_mobilenet_v3_large, keypointrcnn_resnet50_fpn;
  torchvision segmentation (320x320, output 'out' only): fcn_resnet50, lraspp_mobilenet_v3_large;
  HF transformers from configs: whisper_tiny_encoder (input_features 1x80x3000), wav2vec2_base
    (1 s of 16 kHz audio), t5_small_encoder (input_ids + attention_mask, seq 128), llama_small (LlamaModel:
    4 layers, hidden 512, 8 heads, 2 key/value heads (GQA), RMSNorm, RoPE, SiLU MLP, causal; seq 256).

Exporters: TorchScript (torch.onnx.export(dynamo=False), opset 17) and dynamo (dynamo=True, opset 18).
Each (model, exporter) runs in its own process (--jobs in parallel, --timeout each), so one that
crashes or hangs is recorded and the rest go on. Writes:
  OUT_DIR/<model>/<exporter>.onnx      the model (fixed shapes, batch 1)
  OUT_DIR/<model>/<input>.npy          its inputs, shared by both exporters
  OUT_DIR/manifest.json                one entry per (model, exporter): status ok|failed, error (first
                                       line), file, inputs (name, shape, dtype, file), outputs, nodes,
                                       opset, export_s, kind and, for detectors, the score threshold/cap.
Inputs: detection/segmentation get skimage.data.astronaut() resized (RGB in [0, 1]); audio a
synthetic waveform (chirps + noise) or Whisper-range log-mel features; text random token ids.
Runs with torch >= 1.13 (torch 2.x for dynamo) and any transformers >= 4.30.
"""
import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import time
import traceback
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "models"))
from zoo_detectors import DETECTION_SIZE, WIDE_DETECTORS, detection_settings  # noqa: E402

SEG_SIZE = 320
SEQ_T5, SEQ_LLAMA = 128, 256
DETECTION = list(WIDE_DETECTORS)
SEGMENTATION = ["fcn_resnet50", "lraspp_mobilenet_v3_large"]
HF = ["whisper_tiny_encoder", "wav2vec2_base", "t5_small_encoder", "llama_small"]
MODELS = DETECTION + SEGMENTATION + HF
OPSET = {"torchscript": 17, "dynamo": 18}


# ---------------------------------------------------------------------------- inputs

def image(size):
    """skimage's astronaut, resized, [1, 3, size, size] float32 RGB in [0, 1]."""
    from skimage import data, transform
    img = transform.resize(data.astronaut(), (size, size), anti_aliasing=True)
    return np.ascontiguousarray(np.transpose(img, (2, 0, 1))[None], dtype=np.float32)


def waveform(seconds=1.0, rate=16000, seed=0):
    """A speech-like synthetic signal: two chirps with harmonics, an amplitude envelope and noise, [1, N]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 80 * t / seconds
    phase = 2 * np.pi * np.cumsum(f0) / rate
    sig = sum(np.sin(k * phase) / k for k in range(1, 6)) + 0.5 * np.sin(2 * np.pi * (600 + 900 * t) * t)
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    x = 0.3 * env * sig + 0.02 * rng.standard_normal(t.size)
    return (x / np.abs(x).max() * 0.8)[None].astype(np.float32)


def log_mel(n_mels=80, frames=3000, seed=0):
    """Whisper-like input features [1, n_mels, frames]: a log-power spectrogram of waveform() (30 s, the
    length Whisper's encoder requires), pooled to n_mels bands and scaled as Whisper's feature
    extractor does ((max(log10, max-8) + 4) / 4)."""
    x = np.tile(waveform(seconds=3.0, seed=seed)[0], 10)
    n_fft, hop = 400, 160
    x = np.pad(x, (n_fft // 2, n_fft // 2))
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft), axis=1)) ** 2  # [frames, 201]
    edges = np.geomspace(1, spec.shape[1], n_mels + 1).astype(int)
    bands = np.stack([spec[:, lo:max(hi, lo + 1)].mean(axis=1) for lo, hi in zip(edges[:-1], edges[1:])])
    logs = np.log10(np.maximum(bands, 1e-10))
    logs = np.maximum(logs, logs.max() - 8.0)
    return ((logs + 4.0) / 4.0)[None].astype(np.float32)


def token_ids(seq, vocab, seed=0):
    return np.random.default_rng(seed).integers(3, vocab, size=(1, seq), dtype=np.int64)


# ---------------------------------------------------------------------------- models

def to_torch(a):
    import torch
    try:
        return torch.from_numpy(np.ascontiguousarray(a))
    except (RuntimeError, TypeError):  # torch built against numpy 1.x running with numpy 2
        dt = {np.dtype(np.float32): torch.float32, np.dtype(np.int64): torch.int64}[a.dtype]
        return torch.tensor(a.tolist(), dtype=dt)


def spread_logits(model, factor):
    """Random-weight one-stage heads score every anchor about alike: RetinaNet/FCOS initialise their
    classification conv with std 0.01 and a prior bias (top-100 scores 0.05-0.066 and 0.13-0.16 on the
    astronaut), SSDlite's softmax over 91 classes gives 0.0121-0.0128. Scale the last classification
    conv's weights so the scores spread and depend on the image (x3: RetinaNet ~0.6-0.8; x5: FCOS
    0.63-0.76 over 7 labels; x40: SSDlite 0.16-0.57 over 43 labels)."""
    import torch
    head = model.head.classification_head
    blocks = head.module_list if hasattr(head, "module_list") else [head.cls_logits]
    with torch.no_grad():
        for blk in blocks:
            [c for c in blk.modules() if isinstance(c, torch.nn.Conv2d)][-1].weight.mul_(factor)


SPREAD = {"retinanet_resnet50_fpn_v2": 3.0, "fcos_resnet50_fpn": 5.0, "ssdlite320_mobilenet_v3_large": 40.0}


def detection(name):
    from export_zoo import detection_model
    model, _, in_names, out_names, _ = detection_model(name, calibrate_bn=True)
    if name in SPREAD:
        spread_logits(model, SPREAD[name])
    if name.startswith("fcos"):
        # FCOS decodes relu(regression) x anchor size as the box's left/top/right/bottom distances: with
        # random weights half of them are 0 and the boxes degenerate (zero width or height, IoU 0 even
        # with themselves). A bias of 1 gives boxes about twice the anchor size.
        import torch
        with torch.no_grad():
            model.head.regression_head.bbox_reg.bias.fill_(1.0)
    thresh, cap = detection_settings(name)
    extra = {"score_thresh": thresh, "cap": cap, "one_class": name.startswith("keypointrcnn"),
             "outputs_are": "detections"}
    return model, {in_names[0]: image(DETECTION_SIZE)}, out_names, extra


def segmentation(name):
    import torch
    import torchvision
    from export_zoo import calibrate_batchnorm

    seg = getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None)
    calibrate_batchnorm(seg, 128, steps=2)  # at 320, FCN's dilated ResNet-50 takes minutes on a CPU core

    class Out(torch.nn.Module):  # torchvision returns a dict; keep 'out'
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m(x)["out"]

    return Out(seg).eval(), {"image": image(SEG_SIZE)}, ["out"], {}


def hf_config(cls, **kw):
    """A transformers config with eager attention (the plain MatMul/Softmax graph every exporter handles),
    across transformers versions."""
    try:
        cfg = cls(attn_implementation="eager", **kw)
    except TypeError:
        cfg = cls(**kw)
    for attr in ("_attn_implementation", "attn_implementation"):
        try:
            setattr(cfg, attr, "eager")
        except Exception:  # a read-only property in some versions
            pass
    cfg.use_cache = False
    return cfg


def hf_model(name):
    import torch
    import transformers as T

    def hidden(out):
        return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]

    class Hidden1(torch.nn.Module):
        """Positional inputs (explicit, for torch.export), the last hidden state out (forward signatures and
        return types moved across transformers releases)."""

        def __init__(self, m, keys):
            super().__init__()
            self.m, self.keys = m, keys

        def forward(self, a):
            return hidden(self.m(**{self.keys[0]: a}))

    class Hidden2(Hidden1):
        def forward(self, a, b):
            return hidden(self.m(**{self.keys[0]: a, self.keys[1]: b}))

    if name == "whisper_tiny_encoder":
        cfg = hf_config(T.WhisperConfig, d_model=384, encoder_layers=4, encoder_attention_heads=6,
                        decoder_layers=4, decoder_attention_heads=6, encoder_ffn_dim=1536, decoder_ffn_dim=1536,
                        num_mel_bins=80, max_source_positions=1500, vocab_size=51865)
        m = T.WhisperModel(cfg).get_encoder()
        inputs = {"input_features": log_mel(80, 2 * cfg.max_source_positions)}
    elif name == "wav2vec2_base":
        cfg = hf_config(T.Wav2Vec2Config)  # the defaults are wav2vec2-base
        m = T.Wav2Vec2Model(cfg)
        inputs = {"input_values": waveform(1.0)}
    elif name == "t5_small_encoder":
        cfg = hf_config(T.T5Config, vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8,
                        relative_attention_num_buckets=32, feed_forward_proj="relu", is_encoder_decoder=False)
        m = T.T5EncoderModel(cfg)
        mask = np.ones((1, SEQ_T5), np.int64)
        mask[:, -16:] = 0  # padding at the end, as a tokenizer batch has
        inputs = {"input_ids": token_ids(SEQ_T5, cfg.vocab_size), "attention_mask": mask}
    elif name == "llama_small":
        cfg = hf_config(T.LlamaConfig, vocab_size=32000, hidden_size=512, intermediate_size=1408,
                        num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2,
                        max_position_embeddings=1024, hidden_act="silu", rms_norm_eps=1e-5,
                        tie_word_embeddings=False)
        m = T.LlamaModel(cfg)
        inputs = {"input_ids": token_ids(SEQ_LLAMA, cfg.vocab_size)}
    else:
        raise KeyError(name)
    wrap = Hidden1 if len(inputs) == 1 else Hidden2
    return wrap(m.eval(), list(inputs)).eval(), inputs, ["last_hidden_state"], {}


def build(name):
    """(torch module in eval mode, {input name: numpy array}, output names, manifest extras)."""
    import torch
    torch.manual_seed(0)
    if name in DETECTION:
        kind, (model, inputs, outputs, extra) = "detection", detection(name)
    elif name in SEGMENTATION:
        kind, (model, inputs, outputs, extra) = "segmentation", segmentation(name)
    elif name in HF:
        kind, (model, inputs, outputs, extra) = ("audio" if name.startswith(("whisper", "wav2vec")) else "text",
                                                 hf_model(name))
    else:
        raise SystemExit(f"unknown model {name}; known: {', '.join(MODELS)}")
    model.eval()
    return model, inputs, outputs, dict(extra, kind=kind)


# ---------------------------------------------------------------------------- export

def save_npy(path, a):
    tmp = path + f".{os.getpid()}.tmp.npy"
    np.save(tmp, a)
    os.replace(tmp, path)


def export_one(out_dir, name, exporter):
    """Exports one (model, exporter); returns its manifest entry (never raises)."""
    import torch
    entry = {"model": name, "exporter": exporter, "status": "failed", "error": None, "file": None,
             "opset": OPSET[exporter], "torch": torch.__version__}
    start = time.time()
    try:
        if exporter == "dynamo" and "dynamo" not in torch.onnx.export.__code__.co_varnames:
            raise RuntimeError(f"torch {torch.__version__} has no dynamo ONNX exporter")
        model, inputs, outputs, extra = build(name)
        entry.update(extra)
        d = os.path.join(out_dir, name)
        os.makedirs(d, exist_ok=True)
        entry["inputs"] = []
        for k, a in inputs.items():
            f = os.path.join(name, k + ".npy")
            save_npy(os.path.join(out_dir, f), a)
            entry["inputs"].append({"name": k, "shape": list(a.shape), "dtype": str(a.dtype), "file": f})
        entry["outputs"] = outputs
        example = tuple(to_torch(a) for a in inputs.values())
        path = os.path.join(d, exporter + ".onnx")
        tmp = path + ".tmp.onnx"
        kwargs = {}
        if "dynamo" in torch.onnx.export.__code__.co_varnames:  # torch >= 2.5 knows both exporters
            kwargs["dynamo"] = exporter == "dynamo"
        if exporter == "dynamo":
            kwargs["external_data"] = False
        else:
            kwargs["do_constant_folding"] = True
        # Grad mode stays on (export_zoo.py: nn.MultiheadAttention's no_grad fast path has no ONNX export).
        start = time.time()
        torch.onnx.export(model, example, tmp, opset_version=OPSET[exporter], input_names=list(inputs),
                          output_names=outputs, **kwargs)
        entry["export_s"] = round(time.time() - start, 2)
        import onnx
        m = onnx.load(tmp, load_external_data=False)
        onnx.checker.check_model(m)
        entry["nodes"] = len(m.graph.node)
        entry["opset"] = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), entry["opset"])
        got_in = [i.name for i in m.graph.input if i.name in inputs]
        if got_in != list(inputs):
            raise RuntimeError(f"exported inputs {[i.name for i in m.graph.input]}, expected {list(inputs)}")
        entry["outputs"] = [o.name for o in m.graph.output]
        os.replace(tmp, path)
        entry["file"] = os.path.relpath(path, out_dir)
        entry["status"] = "ok"
    except BaseException as e:  # noqa: B902 - a failed export is a result
        entry["export_s"] = round(time.time() - start, 2)
        lines = [ln for ln in f"{type(e).__name__}: {e}".splitlines() if ln.strip()]
        entry["error"] = lines[0][:500] if lines else type(e).__name__
        entry["traceback"] = traceback.format_exc()[-3000:]
    return entry


def child(out_dir, name, exporter, threads):
    import torch
    torch.set_num_threads(threads)
    warnings.simplefilter("ignore")
    entry = export_one(out_dir, name, exporter)
    with open(os.path.join(out_dir, name, f"{exporter}.json"), "w") as f:
        json.dump(entry, f, indent=1)
    print(f"{name} {exporter}: {entry['status']} in {entry.get('export_s')} s"
          + (f", {entry.get('nodes')} nodes" if entry["status"] == "ok" else f": {entry['error']}"), flush=True)


def run_child(out_dir, name, exporter, threads, timeout):
    os.makedirs(os.path.join(out_dir, name), exist_ok=True)
    rec = os.path.join(out_dir, name, f"{exporter}.json")
    if os.path.exists(rec):
        os.remove(rec)
    start = time.time()
    cmd = [sys.executable, os.path.abspath(__file__), out_dir, "--models", name, "--exporter", exporter,
           "--child", "--threads", str(threads)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        out = r.stdout + r.stderr
        rc = r.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = f"timed out after {timeout} s", "timeout"
        out += "\n" + (e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or ""))
    if os.path.exists(rec):
        with open(rec) as f:
            entry = json.load(f)
    else:  # the child died (signal, out of memory, timeout) before writing its record
        tail = [ln for ln in out.splitlines() if ln.strip()]
        entry = {"model": name, "exporter": exporter, "status": "failed", "file": None, "opset": OPSET[exporter],
                 "export_s": round(time.time() - start, 2),
                 "error": f"export process ended ({rc}): " + (tail[-1][:400] if tail else "no output")}
    print(f"{name} {exporter}: {entry['status']} in {entry.get('export_s')} s"
          + (f", {entry.get('nodes')} nodes" if entry["status"] == "ok" else f": {entry['error']}"), flush=True)
    return entry


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    ap.add_argument("--exporter", choices=["torchscript", "dynamo", "both"], default="both")
    ap.add_argument("--jobs", type=int, default=max(1, min(6, (os.cpu_count() or 2) // 2)))
    ap.add_argument("--timeout", type=float, default=420, help="seconds per (model, exporter)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads per export (default cores / jobs)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    out_dir = os.path.abspath(args.out_dir)
    names = [m for m in args.models.split(",") if m]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        raise SystemExit(f"unknown models {unknown}; known: {', '.join(MODELS)}")
    exporters = ["torchscript", "dynamo"] if args.exporter == "both" else [args.exporter]
    threads = args.threads or max(1, (os.cpu_count() or 2) // args.jobs)
    if args.child:
        child(out_dir, names[0], exporters[0], threads)
        return 0
    os.makedirs(out_dir, exist_ok=True)
    # TorchScript first (the list's main exporter), the slowest models first within each.
    slow = {m: i for i, m in enumerate(["maskrcnn_resnet50_fpn_v2", "keypointrcnn_resnet50_fpn",
                                        "maskrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2"])}
    jobs = [(m, e) for e in exporters for m in sorted(names, key=lambda m: slow.get(m, 99))]
    start = time.time()
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        entries = list(pool.map(lambda j: run_child(out_dir, j[0], j[1], threads, args.timeout), jobs))
    manifest_path = os.path.join(out_dir, "manifest.json")
    old = []
    if os.path.exists(manifest_path):  # keep entries of models not exported this time
        with open(manifest_path) as f:
            old = [e for e in json.load(f)["entries"] if (e["model"], e["exporter"]) not in set(jobs)]
    import torch
    manifest = {"torch": torch.__version__, "entries": sorted(old + entries, key=lambda e: (MODELS.index(e["model"])
                                                                                           if e["model"] in MODELS
                                                                                           else 99, e["exporter"]))}
    try:
        import transformers
        manifest["transformers"] = transformers.__version__
    except ImportError:
        pass
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1)
    ok = sum(e["status"] == "ok" for e in entries)
    print(f"export_wide: {ok}/{len(entries)} exports ok in {time.time() - start:.0f} s; wrote {manifest_path}")
    for e in entries:
        if e["status"] != "ok":
            print(f"  FAILED {e['model']} {e['exporter']}: {e['error']}")
    # Every TorchScript export must work (the list's baseline); dynamo failures are results.
    return 0 if all(e["status"] == "ok" for e in entries if e["exporter"] == "torchscript") else 1


if __name__ == "__main__":
    sys.exit(main())
