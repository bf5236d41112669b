"""Cross-check of kiln's shape/type inference against onnx.shape_inference.

For every zoo model ($KILN_ZOO_DIR, exported by export_zoo.py when missing)
and every onnx node test model ($KILN_NODE_TESTS_DIR, written by
tools/write_node_tests.py when missing), both inferencers run on the same
model with the declared types of the main graph's outputs and all value_info
removed, so each infers from the graph inputs alone:
  - onnx: onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
  - kiln: `kiln inspect --json --values` (InferShapes, symbolic dims kept),
    many models per process.
Every node output is compared. Both known and different (kind, dtype, rank,
or a dim that both give as a number) is a conflict and fails the test. kiln
knowing less than onnx, kiln knowing more, and different symbol names are
counted and reported. For node tests the main graph outputs are also checked
against the types the test declares (made from the expected outputs).

Zoo models are checked on a skeleton: float initializers of more than 1024
elements become graph inputs of the same type (no data to copy around), so
inference sees the same types while big weights stay out of the way.
"""
import collections
import concurrent.futures
import json
import os
import subprocess
import sys
import time

import onnx
import pytest
from onnx import helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("KILN_BUILD_DIR", os.path.join(ROOT, "build"))
KILN = os.environ.get("KILN_BIN", os.path.join(BUILD, "kiln"))
ZOO = os.environ.get("KILN_ZOO_DIR", os.path.join(BUILD, "zoo"))
NODE_TESTS = os.environ.get("KILN_NODE_TESTS_DIR", os.path.join(BUILD, "nodetests"))

ZOO_MODELS = ["super_resolution", "resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "vit_b_16",
              "bert_encoder"]
CHUNK = 150  # models per kiln process
SKELETON_MIN_ELEMENTS = 1024


# ---------------------------------------------------------------- inputs


def ensure_zoo():
    missing = [m for m in ZOO_MODELS if not os.path.exists(os.path.join(ZOO, m + ".onnx"))]
    if missing:
        subprocess.run([sys.executable, os.path.join(HERE, "export_zoo.py"), ZOO, "--calibrate-bn", "--only", *missing],
                       check=True)


def ensure_node_tests():
    # ctest's fixture_nodetests writes them first; this covers a direct pytest run.
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "write_node_tests.py"), NODE_TESTS, "--if-stale"],
                   check=True, stdout=subprocess.DEVNULL)
    names = sorted(d for d in os.listdir(NODE_TESTS) if os.path.exists(os.path.join(NODE_TESTS, d, "model.onnx")))
    return names


def strip_declared(model):
    """Removes value_info everywhere and the main graph outputs' types."""
    for o in model.graph.output:
        o.ClearField("type")

    def clear(g):
        del g.value_info[:]
        for n in g.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    clear(a.g)
                for sg in a.graphs:
                    clear(sg)

    clear(model.graph)
    return model


def skeleton(model):
    """Big float initializers become graph inputs of the same type."""
    g = model.graph
    keep = []
    big = []
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE}
    for init in g.initializer:
        n = 1
        for d in init.dims:
            n *= d
        if init.data_type in floats and n > SKELETON_MIN_ELEMENTS:
            big.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
        else:
            keep.append(init)
    names = {b.name for b in big}
    inputs = [i for i in g.input if i.name not in names]
    del g.initializer[:]
    g.initializer.extend(keep)
    del g.input[:]
    g.input.extend(inputs + big)
    return model


# ---------------------------------------------------------------- types


def onnx_type(tp):
    """TypeProto → dict(kind, elem_kind, elem_type, dims) or None when empty."""
    which = tp.WhichOneof("value")
    if which is None:
        return None
    if which == "tensor_type" or which == "sparse_tensor_type":
        t = getattr(tp, which)
        dims = None
        if t.HasField("shape"):
            dims = []
            for d in t.shape.dim:
                if d.HasField("dim_value") and d.dim_value >= 0:
                    dims.append(int(d.dim_value))
                elif d.HasField("dim_param") and d.dim_param:
                    dims.append(d.dim_param)
                else:
                    dims.append(None)
        return {"kind": "tensor" if which == "tensor_type" else "sparse_tensor", "elem_kind": None,
                "elem_type": t.elem_type or None, "dims": dims}
    if which in ("sequence_type", "optional_type"):
        inner = onnx_type(getattr(tp, which).elem_type)
        kind = "sequence" if which == "sequence_type" else "optional"
        if inner is None:
            return {"kind": kind, "elem_kind": None, "elem_type": None, "dims": None}
        return {"kind": kind, "elem_kind": inner["kind"] if kind == "optional" else None,
                "elem_type": inner["elem_type"], "dims": inner["dims"]}
    if which == "map_type":
        return {"kind": "map", "elem_kind": None, "elem_type": tp.map_type.key_type or None, "dims": None}
    return None


def kiln_type(v):
    dims = v["dims"]
    if dims is not None:
        dims = [None if d == "?" else d for d in dims]
    if v["elem_type"] is None and dims is None and v["kind"] == "tensor":
        return None
    return {"kind": v["kind"], "elem_kind": v.get("elem_kind"), "elem_type": v["elem_type"], "dims": dims}


def graph_types(g, path, out):
    """(graph path, value name) → onnx type, over g and its subgraphs (kiln's naming)."""
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        t = onnx_type(vi.type)
        if t is not None:
            out[(path, vi.name)] = t
    named = {n.name for n in g.node if n.name}
    for i, n in enumerate(g.node):
        name = n.name
        if not name:  # the importer's name for an unnamed node
            base = f"{n.op_type}_{i}"
            name, k = base, 1
            while name in named:
                name, k = f"{base}_{k}", k + 1
            named.add(name)
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                graph_types(a.g, f"{path}/{name}.{a.name}", out)
            for j, sg in enumerate(a.graphs):
                graph_types(sg, f"{path}/{name}.{a.name}[{j}]", out)
    return out


def dim_str(d):
    return "?" if d is None else str(d)


def type_str(t):
    if t is None:
        return "unknown"
    dt = onnx.TensorProto.DataType.Name(t["elem_type"]).lower() if t["elem_type"] else "?"
    shape = "[" + ",".join(dim_str(d) for d in t["dims"]) + "]" if t["dims"] is not None else "[*]"
    s = dt + shape
    if t["kind"] == "sequence":
        return f"seq({s})"
    if t["kind"] == "optional":
        return f"optional({'seq(' + s + ')' if t['elem_kind'] == 'sequence' else s})"
    if t["kind"] != "tensor":
        return f"{t['kind']}({s})"
    return s


def compare(k, o):
    """Compares kiln's type k with onnx's o. Returns (conflicts, reasons) where
    reasons is a set of "kiln_more", "onnx_more:<what>", "symbol"."""
    conflicts, reasons = [], set()
    if o is None and k is None:
        return conflicts, {"both_unknown"}
    if o is None:
        return conflicts, {"kiln_more"}
    if k is None:
        return conflicts, {"onnx_more:type"}
    if k["kind"] != o["kind"]:
        return [f"kind {k['kind']} vs {o['kind']}"], reasons
    if k["elem_kind"] and o["elem_kind"] and k["elem_kind"] != o["elem_kind"]:
        conflicts.append(f"element kind {k['elem_kind']} vs {o['elem_kind']}")
    if k["elem_type"] and o["elem_type"]:
        if k["elem_type"] != o["elem_type"]:
            conflicts.append("dtype")
    elif o["elem_type"]:
        reasons.add("onnx_more:dtype")
    elif k["elem_type"]:
        reasons.add("kiln_more")
    kd, od = k["dims"], o["dims"]
    if kd is None and od is not None:
        reasons.add("onnx_more:rank")
    elif kd is not None and od is None:
        reasons.add("kiln_more")
    elif kd is not None:
        if len(kd) != len(od):
            conflicts.append("rank")
        else:
            for a, b in zip(kd, od):
                if isinstance(a, int) and isinstance(b, int):
                    if a != b:
                        conflicts.append("dim")
                elif isinstance(a, int):
                    reasons.add("kiln_more")
                elif isinstance(b, int):
                    reasons.add("onnx_more:number" if a is None else "onnx_more:number_vs_symbol")
                elif a is None and b is not None:
                    reasons.add("onnx_more:unk_symbol" if b.startswith("unk__") else "onnx_more:symbol")
                elif a is not None and b is None:
                    reasons.add("kiln_more")
                elif a != b:
                    # unk__N: onnx's name for a dim it could not size.
                    reasons.add("kiln_more" if b.startswith("unk__") else "symbol")
    return conflicts, reasons


# ---------------------------------------------------------------- running


def run_kiln(paths):
    """kiln inspect --json --values over paths → {path: report}; a model whose
    process crashed gets {"error": ...}."""
    reports = {}
    try:
        r = subprocess.run([KILN, "inspect", "--json", "--values", *paths], capture_output=True, text=True,
                           timeout=600)
    except subprocess.TimeoutExpired as e:
        r = subprocess.CompletedProcess(e.cmd, -9, e.stdout or "", f"timed out after {e.timeout} s")
        if isinstance(r.stdout, bytes):
            r.stdout = r.stdout.decode(errors="replace")
    # One model: one indented document; several: one compact document a line.
    for line in [r.stdout] if len(paths) == 1 else r.stdout.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            j = json.loads(line)
        except json.JSONDecodeError:
            continue
        reports[j["model"]] = j
    missing = [p for p in paths if p not in reports]
    if missing and r.returncode not in (0, 1):  # crashed part way: the rest one by one
        if len(paths) == 1:
            return {paths[0]: {"model": paths[0], "error": f"kiln crashed (exit {r.returncode}): {r.stderr[-500:]}",
                               "crash": True}}
        for p in missing:
            reports.update(run_kiln([p]))
    for p in paths:
        reports.setdefault(p, {"model": p, "error": f"no report (exit {r.returncode}): {r.stderr[-500:]}"})
    return reports


class Tally:
    def __init__(self, label, other="onnx"):
        self.label = label
        self.other = other  # what kiln is compared with
        self.models = 0
        self.counts = collections.Counter()
        self.onnx_more = collections.Counter()  # (op, what) → values
        self.onnx_more_examples = {}
        self.conflicts = []
        self.load_errors = []
        self.crashes = []
        self.infer_errors = []

    def add(self, model, graph, name, op, k, o):
        conflicts, reasons = compare(k, o)
        self.counts["compared"] += 1
        where = f"{model}: {graph + '/' if graph else ''}{name}"
        if conflicts:
            self.counts["conflicts"] += 1
            self.conflicts.append(f"{where} ({op}): kiln {type_str(k)} vs {self.other} {type_str(o)} "
                                  f"[{', '.join(conflicts)}]")
            return
        onnx_more = sorted(r for r in reasons if r.startswith("onnx_more"))
        if "symbol" in reasons:
            self.counts["symbol names differ"] += 1
        if onnx_more == ["onnx_more:unk_symbol"]:
            # onnx names an unknown dim unk__N where kiln has "?": no size known.
            self.counts["onnx unk__N vs ?"] += 1
        elif onnx_more:
            self.counts["onnx more precise"] += 1
            for r in onnx_more:
                if r == "onnx_more:unk_symbol":
                    continue
                self.onnx_more[(op, r.split(":")[1])] += 1
                self.onnx_more_examples.setdefault((op, r.split(":")[1]),
                                                   f"{where}: kiln {type_str(k)} vs {self.other} {type_str(o)}")
        elif "kiln_more" in reasons:
            self.counts["kiln more precise"] += 1
        elif "both_unknown" in reasons:
            self.counts["both unknown"] += 1
        else:
            self.counts["agree"] += 1

    def table(self):
        o = self.other
        keys = ["compared", "agree", "kiln more precise", f"{o} more precise", "onnx unk__N vs ?",
                "symbol names differ", "both unknown", "conflicts"]
        lines = [f"{self.label}: {self.models} models"]
        for k in keys:
            lines.append(f"  {k:<22} {self.counts[k.replace(o, 'onnx')]:>7}")
        if self.counts["onnx inference failed"]:
            lines.append(f"  {'onnx inference failed':<22} {self.counts['onnx inference failed']:>7}")
        lines.append(f"  {'kiln load errors':<22} {len(self.load_errors):>7}")
        lines.append(f"  {'kiln infer errors':<22} {len(self.infer_errors):>7}")
        if self.onnx_more:
            lines.append(f"  {o} more precise, by op and what (top 25):")
            for (op, what), n in self.onnx_more.most_common(25):
                lines.append(f"    {op:<24} {what:<20} {n:>5}   e.g. {self.onnx_more_examples[(op, what)]}")
        return "\n".join(lines)


def cross_check(label, items, workdir, declared_outputs=None):
    """items: [(name, onnx ModelProto)]; models are stripped, saved to workdir
    and inferred by both. declared_outputs: {name: {output: type}} to compare
    the main graph outputs with."""
    tally = Tally(label)
    decl = Tally(label + " outputs vs declared", "declared") if declared_outputs is not None else None
    paths = {}
    for name, model in items:
        strip_declared(model)
        p = os.path.join(workdir, name.replace("/", "_") + ".onnx")
        onnx.save(model, p)
        paths[name] = p
    # kiln in the background (2 processes), onnx here meanwhile.
    names = [n for n, _ in items]
    chunks = [[paths[n] for n in names[i:i + CHUNK]] for i in range(0, len(names), CHUNK)]
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    futures = [pool.submit(run_kiln, c) for c in chunks]
    onnx_types = {}
    for name, model in items:
        try:
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
        except Exception:  # noqa: BLE001 - onnx itself gave up: nothing to compare with
            inferred = model
            tally.counts["onnx inference failed"] += 1
        onnx_types[name] = graph_types(inferred.graph, "", {})
    reports = {}
    for f in futures:
        reports.update(f.result())
    pool.shutdown()
    for name in names:
        tally.models += 1
        rep = reports[paths[name]]
        if "error" in rep:
            (tally.crashes if rep.get("crash") else tally.load_errors).append(f"{name}: {rep['error']}")
            continue
        for e in rep.get("shape_inference_errors", []):
            tally.infer_errors.append(f"{name}: {e}")
        ot = onnx_types[name]
        for v in rep["values"]:
            if v["source"] != "node":
                continue
            key = (v["graph"], v["name"])
            k = kiln_type(v)
            tally.add(name, v["graph"], v["name"], v.get("op", "?"), k, ot.get(key))
            if decl is not None and v["graph"] == "" and v["name"] in declared_outputs[name]:
                decl.add(name, "", v["name"], v.get("op", "?"), k, declared_outputs[name][v["name"]])
        if decl is not None:
            decl.models += 1
    return tally, decl, reports


def report(capsys, *tallies, seconds=None):
    with capsys.disabled():
        print()
        for t in tallies:
            print(t.table())
            for c in t.conflicts[:200]:
                print("  CONFLICT " + c)
            for c in t.crashes:
                print("  CRASH " + c)
        if seconds is not None:
            print(f"  ({seconds:.1f} s)")


# ---------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def zoo_results(tmp_path_factory):
    t0 = time.time()
    ensure_zoo()
    items = []
    for m in ZOO_MODELS:
        items.append((m, skeleton(onnx.load(os.path.join(ZOO, m + ".onnx")))))
    tally, _, reports = cross_check("zoo", items, str(tmp_path_factory.mktemp("zoo_shapes")))
    return tally, reports, time.time() - t0


@pytest.fixture(scope="module")
def node_results(tmp_path_factory):
    t0 = time.time()
    names = ensure_node_tests()
    items, declared = [], {}
    for n in names:
        try:
            model = onnx.load(os.path.join(NODE_TESTS, n, "model.onnx"))
        except Exception:  # noqa: BLE001 - not loadable by onnx: nothing to compare with
            continue
        declared[n] = {o.name: onnx_type(o.type) for o in model.graph.output}
        items.append((n, model))
    tally, decl, _ = cross_check("node tests", items, str(tmp_path_factory.mktemp("node_shapes")), declared)
    return tally, decl, time.time() - t0


def test_zoo_matches_onnx(zoo_results, capsys):
    tally, _, seconds = zoo_results
    report(capsys, tally, seconds=seconds)
    assert not tally.crashes, "\n".join(tally.crashes)
    assert not tally.load_errors, "\n".join(tally.load_errors)
    assert not tally.infer_errors, "\n".join(tally.infer_errors[:50])
    assert not tally.conflicts, "\n".join(tally.conflicts[:100])


def values_of(rep):
    return {v["name"]: v["dims"] for v in rep["values"] if v["graph"] == ""}


ZOO_OUTPUTS = {
    "bert_encoder": {"last_hidden_state": ["batch", "seq", 256], "pooled": ["batch", 256]},
    "vit_b_16": {"output": ["batch", 1000]},
    "resnet18": {"output": ["batch", 1000]},
    "resnet50": {"output": ["batch", 1000]},
    "mobilenet_v2": {"output": ["batch", 1000]},
    "efficientnet_b0": {"output": ["batch", 1000]},
    "super_resolution": {"output": ["batch", 1, "height*3", "width*3"]},
}


def test_zoo_symbolic_dims_flow(zoo_results):
    """With the declared output types removed and no --shapes, the outputs keep
    the symbolic batch (and seq) dims."""
    _, reports, _ = zoo_results
    bad = []
    for name, outs in ZOO_OUTPUTS.items():
        rep = next(r for p, r in reports.items() if os.path.basename(p) == name + ".onnx")
        vals = values_of(rep)
        for out, dims in outs.items():
            if vals.get(out) != dims:
                bad.append(f"{name}: {out} is {vals.get(out)}, expected {dims}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("name", ["bert_encoder", "vit_b_16"])
def test_inspect_values_on_exported_model(name):
    """`kiln inspect --values` on the model as exported (real weights,
    declared outputs) agrees with the declared symbolic outputs."""
    ensure_zoo()
    r = subprocess.run([KILN, "inspect", "--json", "--values", os.path.join(ZOO, name + ".onnx")],
                       capture_output=True, text=True, check=True)
    j = json.loads(r.stdout)
    assert j["shape_inference_errors"] == []
    vals = values_of(j)
    for out, dims in ZOO_OUTPUTS[name].items():
        assert vals[out] == dims, f"{name}: {out} is {vals[out]}"
    # The rest of the report is unchanged by --values.
    plain = json.loads(subprocess.run([KILN, "inspect", "--json", os.path.join(ZOO, name + ".onnx")],
                                      capture_output=True, text=True, check=True).stdout)
    del j["values"], j["shape_inference_errors"]
    assert j == plain


def test_compare_classifies():
    t = lambda dt, dims, kind="tensor": {"kind": kind, "elem_kind": None, "elem_type": dt, "dims": dims}  # noqa: E731
    assert compare(t(1, [2, 3]), t(1, [2, 4]))[0] == ["dim"]
    assert compare(t(1, [2, 3]), t(7, [2, 3]))[0] == ["dtype"]
    assert compare(t(1, [2]), t(1, [2, 1]))[0] == ["rank"]
    assert compare(t(1, [2], "sequence"), t(1, [2]))[0]
    assert compare(t(1, ["batch", 3]), t(1, ["batch", 3])) == ([], set())
    assert compare(t(1, [None, 3]), t(1, [2, 3]))[1] == {"onnx_more:number"}
    assert compare(t(1, [None, 3]), t(1, ["unk__0", 3]))[1] == {"onnx_more:unk_symbol"}
    assert compare(t(1, ["n", 3]), t(1, ["batch", 3]))[1] == {"symbol"}
    assert compare(t(1, ["batch*12", 3]), t(1, ["unk__7", 3]))[1] == {"kiln_more"}
    assert compare(t(1, [2, 3]), t(1, None))[1] == {"kiln_more"}
    assert compare(None, t(1, [2]))[1] == {"onnx_more:type"}


def test_node_tests_match_onnx(node_results, capsys):
    tally, decl, seconds = node_results
    report(capsys, tally, decl, seconds=seconds)
    assert not tally.crashes, "\n".join(tally.crashes)
    assert not tally.load_errors, "\n".join(tally.load_errors[:50])
    # An op kiln lacks is conformance's business; an InferFn failing on a valid model is a bug.
    errors = [e for e in tally.infer_errors if "op is not supported" not in e]
    assert not errors, "\n".join(errors[:50])
    problems = tally.conflicts + decl.conflicts
    assert not problems, f"{len(problems)} conflicts:\n" + "\n".join(problems[:100])
