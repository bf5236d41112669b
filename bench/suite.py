#!/usr/bin/env python3
"""Issue #11's wide suite: kiln FP16 against every torch mode, on models kiln's own tests never name.

For each model and batch: kiln FP16 (`kiln build --fp16` at that shape, then `kiln bench`: GPU compute per
run, median) next to torch FP16 eager, torch.compile default, mode="reduce-overhead" and
mode="max-autotune" (bench_util.torch_loop_ms: a loop of --iters calls between two CUDA events, best of 3,
after warm-up; the first call's time is the compile time). The ratio that counts is best torch / kiln
(> 1: kiln faster) and its geometric mean. Random weights; nothing is downloaded.

  bench/suite.py --kiln gpu-bin/kiln [--models a,b] [--batches 1,32] [--modes eager,default,reduce-overhead]
                 [--out DIR] [--kiln-unfused] [--kiln-variant NAME=FLAGS]

max-autotune compiles for minutes per model and batch: run it in its own calls (--modes max-autotune, a few
models at a time). Rows accumulate in DIR/suite.json (a rerun replaces the cells it measures), so several
calls and sessions fill one table; DIR/suite.md is the table and DIR/suite.png its bar chart (if
matplotlib is there). --list prints the models; --dry-run builds and exports them on the CPU only.
"""
import argparse
import datetime
import json
import math
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "gpu"))
from bench_util import error_line, kiln_build_bench, kiln_profile, shapes_arg, torch_loop_ms  # noqa: E402

MODES = {"eager": None, "default": "default", "reduce-overhead": "reduce-overhead", "max-autotune": "max-autotune"}
TORCHVISION = {"resnet50": 224, "resnext50_32x4d": 224, "wide_resnet50_2": 224, "mobilenet_v2": 224,
               "mobilenet_v3_large": 224, "efficientnet_v2_s": 384, "shufflenet_v2_x1_0": 224, "inception_v3": 299,
               "googlenet": 224, "vit_b_16": 224, "maxvit_t": 224}
TIMM = {"deit_small_patch16_224": 224, "mixer_b16_224": 224}
HF = {"bert_base": 128, "roberta_base": 128, "t5_small_encoder": 256, "whisper_tiny_encoder": 3000,
      "clip_vit_b32": 224, "llama_small": 512}
MODELS = [*TORCHVISION, *TIMM, *HF, "super_resolution"]
# Family checks outside #11's suite (timm's SE nets write the gate's pool as a mean, ConvNeXt's layer scale and
# residual sit behind a permutation, CSPDarknet's activations are LeakyReLU): --models names them; they are left
# out of the suite's geometric mean.
FAMILY = {"timm_efficientnet_b0": 224, "timm_regnety_016": 224, "timm_mobilenetv3_large_100": 224,
          "timm_convnext_tiny": 224, "timm_cspdarknet53": 256}


# ---------------------------------------------------------------------------- models

def hf_module(name):
    """(module returning the last hidden state, {input name: (batch -> tensor maker)})."""
    import torch
    import transformers as T
    from export_wide import hf_config

    class LastHidden(torch.nn.Module):
        def __init__(self, m, keys):
            super().__init__()
            self.m, self.keys = m, keys

        def forward(self, *args):
            out = self.m(**dict(zip(self.keys, args)))
            return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]

    seq = HF[name]

    def ids(vocab):
        return lambda b: torch.randint(0, vocab, (b, seq))

    def ones(b):
        return torch.ones(b, seq, dtype=torch.int64)

    if name in ("bert_base", "roberta_base"):
        cls, model = (T.BertConfig, T.BertModel) if name == "bert_base" else (T.RobertaConfig, T.RobertaModel)
        cfg = hf_config(cls)  # the defaults are the -base models
        m, inputs = model(cfg, add_pooling_layer=False), {"input_ids": ids(cfg.vocab_size - 2), "attention_mask": ones}
    elif name == "t5_small_encoder":
        cfg = hf_config(T.T5Config, vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8,
                        feed_forward_proj="relu", is_encoder_decoder=False)
        m, inputs = T.T5EncoderModel(cfg), {"input_ids": ids(32128), "attention_mask": ones}
    elif name == "whisper_tiny_encoder":
        cfg = hf_config(T.WhisperConfig, d_model=384, encoder_layers=4, encoder_attention_heads=6, decoder_layers=4,
                        decoder_attention_heads=6, encoder_ffn_dim=1536, decoder_ffn_dim=1536, num_mel_bins=80)
        m = T.WhisperModel(cfg).get_encoder()
        inputs = {"input_features": lambda b: torch.randn(b, 80, seq)}
    elif name == "clip_vit_b32":
        cfg = hf_config(T.CLIPVisionConfig, patch_size=32, image_size=224)  # the rest are ViT-B defaults
        m, inputs = T.CLIPVisionModel(cfg), {"pixel_values": lambda b: torch.randn(b, 3, seq, seq)}
    elif name == "llama_small":
        cfg = hf_config(T.LlamaConfig, vocab_size=32000, hidden_size=512, intermediate_size=1408, num_hidden_layers=4,
                        num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=2048,
                        hidden_act="silu", tie_word_embeddings=False)
        # With an attention mask: without one, transformers 5 looks for packed sequences in the position ids
        # (torch.diff), which the TorchScript exporter cannot export (aten::diff, torch 2.11).
        m, inputs = T.LlamaModel(cfg), {"input_ids": ids(32000), "attention_mask": ones}
    else:
        raise KeyError(name)
    return LastHidden(m.eval(), list(inputs)).eval(), inputs


def model_and_inputs(name):
    """(torch module in eval mode, {input name: batch -> float32/int64 CPU tensor})."""
    import torch
    torch.manual_seed(0)
    if name in TORCHVISION:
        import torchvision
        kw = {"aux_logits": False, "init_weights": True} if name in ("inception_v3", "googlenet") else {}
        m, size = getattr(torchvision.models, name)(weights=None, **kw), TORCHVISION[name]
        return m.eval(), {"input": lambda b: torch.randn(b, 3, size, size)}
    if name in TIMM or name in FAMILY:
        import timm
        size = TIMM.get(name) or FAMILY[name]
        model = timm.create_model(name[len("timm_"):] if name in FAMILY else name, pretrained=False)
        return model.eval(), {"input": lambda b: torch.randn(b, 3, size, size)}
    if name in HF:
        return hf_module(name)
    if name == "super_resolution":
        sys.path.insert(0, os.path.join(HERE, "..", "tests", "models"))
        import export_zoo
        m = export_zoo.build("super_resolution", 224)[0]
        return m.eval(), {"input": lambda b: torch.randn(b, 1, 224, 224)}
    raise SystemExit(f"unknown model {name}; known: {', '.join(MODELS + list(FAMILY))}")


def export(model, inputs, path):
    """TorchScript export at opset 17 with a dynamic batch (traced at batch 2)."""
    import torch
    example = tuple(make(2) for make in inputs.values())
    axes = {n: {0: "batch"} for n in inputs}
    axes["output"] = {0: "batch"}
    kwargs = {"dynamo": False} if "dynamo" in torch.onnx.export.__code__.co_varnames else {}
    torch.onnx.export(model, example, path, opset_version=17, input_names=list(inputs), output_names=["output"],
                      dynamic_axes=axes, do_constant_folding=True, **kwargs)


# ---------------------------------------------------------------------------- timing

def time_torch(model, inputs, batch, modes, iters, row):
    import torch
    dev = [make(batch).cuda() for make in inputs.values()]
    dev = [t.half() if t.is_floating_point() else t for t in dev]
    gpu = model.cuda().half()
    for mode in modes:
        key = mode.replace("-", "_")
        try:
            torch._dynamo.reset()
            fn = gpu if MODES[mode] is None else torch.compile(gpu, mode=MODES[mode])
            row[f"{key}_ms"], row[f"{key}_compile_s"] = torch_loop_ms(fn, dev, iters=iters)
        except Exception as e:  # noqa: BLE001 - a mode that fails is a result
            row[f"{key}_error"] = error_line(e)
        print(f"  torch {mode}: {row.get(f'{key}_ms', row.get(f'{key}_error'))}", flush=True)
    torch._dynamo.reset()
    model.cpu().float()
    torch.cuda.empty_cache()


def time_kiln(kiln, onnx_path, inputs, batch, tmp, variants, row, profile_dir=None):
    """variants: [(row key, extra `kiln build` flags)], the first ("kiln", []) the default build."""
    shapes = shapes_arg(list(inputs), [make(batch) for make in inputs.values()])
    for key, extra in variants:
        try:
            plan = os.path.join(tmp, f"b{batch}.plan")
            row[f"{key}_ms"], row[f"{key}_build_s"] = kiln_build_bench(kiln, onnx_path, shapes, plan, extra)
            if profile_dir:
                kiln_profile(kiln, plan, shapes, os.path.join(profile_dir, f"profile_{row['model']}_{key}_b{batch}.txt"))
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
            row[f"{key}_error"] = error_line(e)
        print(f"  {key}: {row.get(f'{key}_ms', row.get(f'{key}_error'))}", flush=True)


# ---------------------------------------------------------------------------- report

def best_torch(row):
    cells = [(row[f"{m.replace('-', '_')}_ms"], m) for m in MODES if f"{m.replace('-', '_')}_ms" in row]
    return min(cells) if cells else (None, None)


def report(rows, device, out_dir):
    lines = [f"### kiln FP16 vs the best torch mode on {device} (ms per batch)", "",
             "| model | batch | kiln | kiln build s | eager | default | reduce-overhead | max-autotune | best torch/kiln |",
             "|---|---|---|---|---|---|---|---|---|"]
    logs = []
    for r in rows:
        def cell(key):
            v = r.get(f"{key}_ms")
            return f"{v:.3f}" if v is not None else ("error" if f"{key}_error" in r else "-")
        best, mode = best_torch(r)
        k = r.get("kiln_ms")
        ratio = best / k if best and k else None
        if ratio and r["model"] in MODELS:
            logs.append(math.log(ratio))
        build = f"{r['kiln_build_s']:.1f}" if "kiln_build_s" in r else "-"
        lines.append(f"| {r['model']} | {r['batch']} | {cell('kiln')} | {build} | {cell('eager')} | {cell('default')} | "
                     f"{cell('reduce_overhead')} | {cell('max_autotune')} | "
                     f"{f'{ratio:.2f}x ({mode})' if ratio else '-'} |")
    if logs:
        lines += ["", f"geometric mean of best torch / kiln: {math.exp(sum(logs) / len(logs)):.2f}x over "
                      f"{len(logs)} rows; kiln at least as fast on {sum(x >= 0 for x in logs)} of them"]
    errors = [(r["model"], r["batch"], k, v) for r in rows for k, v in r.items() if k.endswith("_error")]
    if errors:
        lines += ["", "errors:"] + [f"- {m} batch {b} {k[:-6]}: {v}" for m, b, k, v in errors]
    text = "\n".join(lines)
    print("\n" + text)
    with open(os.path.join(out_dir, "suite.md"), "w") as f:
        f.write(text + "\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no suite.png)")
        return
    labels, ratios = [], []
    for r in rows:
        best, _ = best_torch(r)
        if best and r.get("kiln_ms"):
            labels.append(f"{r['model']} b{r['batch']}")
            ratios.append(best / r["kiln_ms"])
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(labels)), 4))
    ax.bar(range(len(ratios)), ratios, color=["tab:green" if x >= 1 else "tab:red" for x in ratios])
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_ylabel("best torch ms / kiln ms")
    ax.set_title(f"kiln FP16 vs the best torch mode, {device}")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "suite.png"), dpi=120)


def merge(path, rows):
    """Rows of an earlier run in `path`, updated with this run's cells."""
    old = []
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f).get("rows", [])
    by_key = {(r["model"], r["batch"]): r for r in old}
    for r in rows:
        by_key.setdefault((r["model"], r["batch"]), {}).update(r)
    order = {m: i for i, m in enumerate(MODELS)}
    return sorted(by_key.values(), key=lambda r: (order.get(r["model"], 99), r["batch"]))


def save(path, rows, device, torch_version):
    """Merges this run's rows into `path` (see merge) and returns the merged rows."""
    merged = merge(path, rows)
    with open(path, "w") as f:
        json.dump({"device": device, "torch": torch_version, "updated": datetime.date.today().isoformat(),
                   "rows": merged}, f, indent=2)
    return merged


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", help="the kiln binary (required unless --list or --dry-run)")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--modes", default="eager,default,reduce-overhead", help=f"of {', '.join(MODES)}")
    ap.add_argument("--iters", type=int, default=50, help="torch calls between two CUDA events")
    ap.add_argument("--kiln-unfused", action="store_true", help="also time kiln --no-pointwise-fusion")
    ap.add_argument("--kiln-variant", action="append", default=[], metavar="NAME=FLAGS",
                    help="also time kiln built with FLAGS (e.g. legacy='--conv-tactics legacy'), as kiln_NAME_ms")
    ap.add_argument("--out", default=os.environ.get("OUT", "."), help="folder for suite.json/.md/.png")
    ap.add_argument("--profile", action="store_true", help="also write kiln's time per fused kernel to --out")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--dry-run", action="store_true", help="build and export each model on the CPU, time nothing")
    args = ap.parse_args()
    models = args.models.split(",")
    if args.list:
        print("\n".join(MODELS))
        return 0
    modes = [m for m in args.modes.split(",") if m]
    variants = [("kiln", [])] + ([("kiln_unfused", ["--no-pointwise-fusion"])] if args.kiln_unfused else [])
    for v in args.kiln_variant:
        name, _, flags = v.partition("=")
        if not name or not flags:
            ap.error(f"--kiln-variant wants NAME=FLAGS, got {v!r}")
        variants.append((f"kiln_{name}", flags.split()))
    unknown = [m for m in modes if m not in MODES] + [m for m in models if m not in MODELS and m not in FAMILY]
    if unknown:
        ap.error(f"unknown: {', '.join(unknown)}")
    if not args.dry_run and not args.kiln:
        ap.error("--kiln is required")
    import torch
    device = "cpu (dry run)" if args.dry_run else torch.cuda.get_device_name(0)
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for name in models:
        print(f"== {name}", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            onnx_path = os.path.join(tmp, name + ".onnx")
            try:
                model, inputs = model_and_inputs(name)
                t0 = time.time()
                export(model, inputs, onnx_path)
                print(f"  exported in {time.time() - t0:.1f} s", flush=True)
            except Exception as e:  # noqa: BLE001 - a model that does not export is a result
                rows.append({"model": name, "batch": 0, "export_error": error_line(e)})
                print(f"  export failed: {error_line(e)}", flush=True)
                continue
            if args.dry_run:
                continue
            for batch in [int(b) for b in args.batches.split(",")]:
                row = {"model": name, "batch": batch}
                time_kiln(args.kiln, onnx_path, inputs, batch, tmp, variants, row,
                          args.out if args.profile else None)
                time_torch(model, inputs, batch, modes, args.iters, row)
                rows.append(row)
        if not args.dry_run:  # after each model, so a run cut short by a time limit keeps what it measured
            save(os.path.join(args.out, "suite.json"), rows, device, torch.__version__)
    if args.dry_run:
        failed = [r for r in rows if "export_error" in r]
        print(f"dry run: {len(models) - len(failed)} of {len(models)} models built and exported")
        return 1 if failed else 0
    report(save(os.path.join(args.out, "suite.json"), rows, device, torch.__version__), device, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
