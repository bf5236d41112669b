#!/usr/bin/env python3
"""Nsight Compute on the kernels of one wide-suite model: exports the model (suite.py's export), builds an FP16
plan at one batch with --kiln, runs one `kiln bench` inference under ncu on the kernels whose names match
--kernels, and prints a table per launch: time, DRAM and SM throughput, active warps, registers, bytes from
DRAM / L2 / L1, and ncu's warp-latency ratios of long-scoreboard (memory) and barrier stalls (compare kernels by them; they are
not cycles). The raw CSV goes to --out. A diagnostic: it names the bottleneck of one kernel, not the model's time.

  bench/ncu_kernels.py --kiln gpu-bin/kiln --model efficientnet_v2_s --batch 32 --kernels 'Depthwise|GlobalPool'
"""
import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_util import shapes_arg  # noqa: E402
from suite import MODELS, export, model_and_inputs  # noqa: E402

METRICS = {
    "us": "gpu__time_duration.sum",
    "dram%": "dram__throughput.avg.pct_of_peak_sustained_elapsed",
    "sm%": "sm__throughput.avg.pct_of_peak_sustained_elapsed",
    "warps%": "sm__warps_active.avg.pct_of_peak_sustained_active",
    "regs": "launch__registers_per_thread",
    "dram MB": "dram__bytes.sum",
    "L2 MB": "lts__t_bytes.sum",
    "L1 MB": "l1tex__t_bytes.sum",
    "long-scoreboard stall": "smsp__average_warp_latency_issue_stalled_long_scoreboard.ratio",
    "barrier stall": "smsp__average_warp_latency_issue_stalled_barrier.ratio",
}


def number(text):
    return float(text.replace(",", "")) if text and text.replace(",", "").replace(".", "", 1).isdigit() else None


def table(csv_text):
    lines = csv_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('"ID"'))
    rows = list(csv.reader(lines[start:]))
    header, units, data = rows[0], rows[1], rows[2:]
    col = {h: i for i, h in enumerate(header)}
    out = ["| kernel | grid | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 2) + "|"]
    for r in data:
        name = r[col["Kernel Name"]].split("(")[0].replace("void ", "").replace("kiln::cuda::", "")
        name = name.replace("<unnamed>::", "").replace("(anonymous namespace)::", "")
        cells = []
        for label, metric in METRICS.items():
            v = number(r[col[metric]]) if metric in col else None
            if v is not None and label == "us" and units[col[metric]] == "ns":
                v /= 1000
            if v is not None and label.endswith("MB"):
                v /= {"byte": 1e6, "Kbyte": 1e3, "Mbyte": 1, "Gbyte": 1e-3}.get(units[col[metric]], 1e6)
            cells.append("-" if v is None else f"{v:.1f}")
        out.append(f"| {name[-60:]} | {r[col['Grid Size']]} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--model", default="efficientnet_v2_s", choices=MODELS)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--kernels", default="Depthwise", help="regex on kernel names")
    ap.add_argument("--launch-count", type=int, default=80)
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    args = ap.parse_args()
    ncu = shutil.which("ncu") or "/usr/local/cuda/bin/ncu"
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path, plan = os.path.join(tmp, "model.onnx"), os.path.join(tmp, "model.plan")
        model, inputs = model_and_inputs(args.model)
        export(model, inputs, onnx_path)
        shapes = shapes_arg(list(inputs), [make(args.batch) for make in inputs.values()])
        subprocess.run([args.kiln, "build", onnx_path, "--fp16", "--saveEngine", plan, "--minShapes", shapes,
                        "--optShapes", shapes, "--maxShapes", shapes], check=True, capture_output=True, text=True)
        r = subprocess.run([ncu, "-k", f"regex:{args.kernels}", "--launch-count", str(args.launch_count), "--csv",
                            "--page", "raw", "--metrics", ",".join(METRICS.values()),
                            args.kiln, "bench", plan, "--shapes", shapes, "--iterations", "1", "--warmup", "1"],
                           capture_output=True, text=True)
    os.makedirs(args.out, exist_ok=True)
    raw = os.path.join(args.out, f"ncu_{args.model}_b{args.batch}.csv")
    with open(raw, "w") as f:
        f.write(r.stdout)
    if r.returncode != 0 or '"ID"' not in r.stdout:
        print(r.stderr[-2000:], file=sys.stderr)
        return 1
    print(f"### ncu, {args.model} batch {args.batch}, kernels /{args.kernels}/ (raw: {raw})\n")
    print(table(r.stdout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
