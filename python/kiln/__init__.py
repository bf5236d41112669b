"""kiln: ONNX → GPU inference engine, from Python.

    import kiln
    engine = kiln.build("model.onnx", backend="cpu")      # or "cuda"; path, bytes or onnx.ModelProto
    ctx = engine.create_context()
    outputs = ctx.run({"input": x})                        # numpy in, numpy out (dict by output name)

torch tensors in give torch tensors out (CUDA tensors without a copy, on
torch's current stream); kiln.export(module, example_inputs) exports, checks,
simplifies, builds and verifies a torch module in one call; and
torch.compile(model, backend="kiln") runs FX graphs on kiln engines.
kiln.check and kiln.inspect return `kiln check` / `kiln inspect`'s content as
data. The API mirrors the C++ one (include/kiln/engine.h); docs/PYTHON.md has
the whole picture.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _kiln
from ._kiln import (  # noqa: F401  (re-exported)
    Error,
    InternalError,
    InvalidArgumentError,
    IoError,
    NotFoundError,
    OutOfRangeError,
    ParseError,
    TensorInfo,
    UnsupportedError,
)

if TYPE_CHECKING:
    from ._export import ExportedModule

__version__: str = _kiln.__version__
has_cuda: bool = _kiln.has_cuda

__all__ = [
    "CheckResult", "Context", "Engine", "Error", "ExportError", "ExportedModule", "GpuCheck", "GpuGap",
    "InspectResult", "InternalError", "InvalidArgumentError", "IoError", "Issue", "NotFoundError", "OutOfRangeError", "ParseError",
    "SimplifyResult", "TensorInfo", "UnsupportedError", "ValueInfo", "build", "check", "export", "has_cuda",
    "inspect", "register_torch_backend", "simplify", "__version__",
]


class ExportError(Error):
    """kiln.export or the torch.compile backend failed: the export, the dynamic batch or the
    verification (the message says which, naming the input, output or node concerned)."""


ExportError.__module__ = "kiln"

Shape = Sequence[int]
Profile = Tuple[Shape, Shape, Shape]


class Context:
    """Per-thread execution state of an Engine (C++ kiln::Context)."""

    def __init__(self, ctx: Any, engine: "Engine") -> None:
        self._ctx = ctx
        self.engine = engine

    def set_input_shape(self, name: str, dims: Shape) -> None:
        """Sets a dynamic input's shape (within the engine's profile)."""
        self._ctx.set_input_shape(name, [int(d) for d in dims])

    def get_output_shape(self, name: str) -> list:
        """The output's dims at the current input shapes (-1: known only after a run)."""
        return self._ctx.get_output_shape(name)

    def run(self, feed: Mapping[str, Any], stream: Any = None) -> Dict[str, Any]:
        """Runs the engine on a dict of inputs by name; returns a dict of outputs by name.

        numpy arrays (or anything numpy.asarray takes) in give numpy arrays out (a CUDA engine
        copies them to the device and back on a stream of its own and waits for it).
        torch tensors in give torch tensors out: CUDA tensors (CUDA engine) are read and written
        in place, the outputs allocated by torch, and the run is enqueued on torch's current
        stream, or `stream` (a torch.cuda.Stream or a cudaStream_t as an int), without waiting;
        CPU tensors run without copies on a CPU engine. Input shapes come from the tensors;
        the GIL is released while kiln runs."""
        if "torch" in sys.modules:
            from . import _torch
            if _torch.has_tensor(feed):
                return _torch.run(self, dict(feed), stream)
        if stream is not None:
            raise InvalidArgumentError("run: stream= is for torch tensors; numpy runs use a stream of their own")
        return self._ctx.run(dict(feed))


class Engine:
    """A built engine (C++ kiln::Engine): immutable, shareable by threads."""

    def __init__(self, engine: Any, report: Optional[dict] = None) -> None:
        self._engine = engine
        self.report: dict = report or {}

    @staticmethod
    def load(path: Union[str, os.PathLike]) -> "Engine":
        """Loads a plan written by Engine.save (GPU or CPU, as it was built)."""
        return Engine(_kiln._Engine.load(os.fspath(path)))

    @staticmethod
    def deserialize(data: bytes) -> "Engine":
        return Engine(_kiln._Engine.deserialize(bytes(data)))

    def save(self, path: Union[str, os.PathLike]) -> None:
        self._engine.save(os.fspath(path))

    def serialize(self) -> bytes:
        return self._engine.serialize()

    @property
    def inputs(self) -> list:
        """TensorInfo per input: name, dtype, dims (int, a symbol's name, or None)."""
        return self._engine.inputs

    @property
    def outputs(self) -> list:
        return self._engine.outputs

    @property
    def backend(self) -> str:
        return self._engine.backend

    @property
    def profiles(self) -> Dict[str, Profile]:
        return self._engine.profiles

    def describe(self) -> str:
        return self._engine.describe()

    def create_context(self) -> Context:
        return Context(self._engine.create_context(), self)

    def __repr__(self) -> str:
        return f"<kiln.Engine {self.backend}: {self.describe()}>"


def _model_path(model: Any, tmp: str) -> str:
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model)
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
    elif hasattr(model, "SerializeToString"):  # onnx.ModelProto
        data = model.SerializeToString()
    else:
        raise TypeError(f"model must be a path, bytes or an onnx.ModelProto, not {type(model).__name__}")
    path = os.path.join(tmp, "model.onnx")
    with open(path, "wb") as f:
        f.write(data)
    return path


def _builder_options(tf32: bool = False, fp32_islands: bool = True, fuse_pointwise: bool = True,
                     int8: bool = False, calib: Optional[str] = None, calib_inputs: Optional[str] = None,
                     calib_method: str = "percentile", layout: str = "auto", fp8: bool = False,
                     calib_percentile: float = 99.99, calib_cache: Optional[str] = None,
                     int8_fallback_rel_l2: float = 0.05, int8_model_rel_l2: float = 0.1,
                     fp8_fallback_rel_l2: float = 0.1, fp8_model_rel_l2: float = 0.1) -> Dict[str, Any]:
    def path(p: Optional[str]) -> Optional[str]:
        return None if p is None else os.fspath(p)
    return {"tf32": bool(tf32), "fp32_islands": bool(fp32_islands), "fuse_pointwise": bool(fuse_pointwise),
            "int8": bool(int8), "fp8": bool(fp8), "calib": path(calib), "calib_inputs": path(calib_inputs),
            "calib_method": calib_method, "calib_percentile": float(calib_percentile),
            "calib_cache": path(calib_cache), "int8_fallback_rel_l2": float(int8_fallback_rel_l2),
            "int8_model_rel_l2": float(int8_model_rel_l2), "fp8_fallback_rel_l2": float(fp8_fallback_rel_l2),
            "fp8_model_rel_l2": float(fp8_model_rel_l2), "layout": layout}


def build(model: Any, *, backend: str = "cuda", fp16: bool = False,
          profiles: Optional[Mapping[str, Profile]] = None, workspace: Optional[int] = None,
          tf32: bool = False, fp32_islands: bool = True, fuse_pointwise: bool = True, int8: bool = False,
          fp8: bool = False, calib: Optional[str] = None, calib_inputs: Optional[str] = None,
          calib_method: str = "percentile", calib_percentile: float = 99.99, calib_cache: Optional[str] = None,
          int8_fallback_rel_l2: float = 0.05, int8_model_rel_l2: float = 0.1, fp8_fallback_rel_l2: float = 0.1,
          fp8_model_rel_l2: float = 0.1, layout: str = "auto") -> Engine:
    """Builds an engine from an ONNX model (a path, bytes or an onnx.ModelProto).

    backend: "cuda" (needs a CUDA build of kiln and a GPU) or "cpu" (the reference executor).
    profiles: {input name: (min, opt, max) shapes} for dynamic inputs.
    workspace: the CUDA workspace limit in bytes.
    The rest are `kiln build`'s flags: tf32 (--tf32), fp32_islands (False: --no-fp32-islands),
    fuse_pointwise (False: --no-pointwise-fusion), int8/fp8/calib/calib_method/calib_percentile/
    calib_cache (--int8 --fp8 --calib --calib-method --calib-percentile --calib-cache),
    int8_fallback_rel_l2/int8_model_rel_l2/fp8_fallback_rel_l2/fp8_model_rel_l2 (--int8-fallback-rel-l2
    --int8-model-rel-l2 --fp8-fallback-rel-l2 --fp8-model-rel-l2; a model threshold of 0 turns that check off), calib_inputs (--calib-inputs, FP16 range calibration), layout (--layout).
    engine.report holds the build report: "precision" lists the layers that run INT8/FP8 and those
    that stayed float, and why.
    A model given as bytes or a ModelProto is written to a temporary file first (external
    data must then be embedded)."""
    prof = {name: [[int(d) for d in s] for s in r] for name, r in (profiles or {}).items()}
    report: dict = {}
    options = _builder_options(tf32, fp32_islands, fuse_pointwise, int8, calib, calib_inputs, calib_method, layout,
                               fp8, calib_percentile, calib_cache, int8_fallback_rel_l2, int8_model_rel_l2,
                               fp8_fallback_rel_l2, fp8_model_rel_l2)
    with tempfile.TemporaryDirectory(prefix="kiln-") as tmp:
        engine = _kiln.build(_model_path(model, tmp), backend, bool(fp16), prof, workspace, report, options)
    return Engine(engine, report)


@dataclass(frozen=True)
class Issue:
    """One problem `kiln check` reports: severity "error" (invalid model), "unsupported" (valid ONNX
    kiln cannot run) or "warning"; the node concerned ("" when none); kiln's one-line message."""
    severity: str
    node: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


@dataclass(frozen=True)
class GpuGap:
    """A node the CUDA build would reject: its name and why (naming its op, input and type)."""
    node: str
    reason: str

    def __str__(self) -> str:
        return f"cuda: {self.reason}"


@dataclass(frozen=True)
class GpuCheck:
    """`kiln check --backend cuda`'s GPU part: the model after the builder's passes against the CUDA
    op table. `error`: the builder's passes failed (nothing else then); `precision`: with fp16, the
    nodes that stay FP32 and why; `probed`: kernel factories asked too (a CUDA build of kiln), else
    declared capabilities only."""
    error: str = ""
    precision: List[str] = field(default_factory=list)
    gaps: List[GpuGap] = field(default_factory=list)
    sync_points: List[str] = field(default_factory=list)
    num_nodes: int = 0
    probed: bool = False


@dataclass(frozen=True)
class CheckResult:
    """What `kiln check MODEL [--backend cuda]` prints, as data. `valid`: no errors, no unsupported
    nodes and (gpu checked) no GPU gaps."""
    issues: List[Issue] = field(default_factory=list)
    ir_version: int = 0
    opset: int = 0
    num_nodes: int = 0
    gpu: Optional[GpuCheck] = None  # with backend="cuda" on a model without errors

    @property
    def errors(self) -> List[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def unsupported(self) -> List[Issue]:
        return [i for i in self.issues if i.severity == "unsupported"]

    @property
    def warnings(self) -> List[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def valid(self) -> bool:
        gpu_ok = self.gpu is None or (not self.gpu.error and not self.gpu.gaps)
        return not self.errors and not self.unsupported and gpu_ok


def check(model: Any, *, shapes: bool = True, backend: str = "cpu", fp16: bool = False,
          fp32_islands: bool = True, fuse_pointwise: bool = True, int8: bool = False, fp8: bool = False,
          calib: Optional[str] = None, calib_inputs: Optional[str] = None) -> CheckResult:
    """Validates a model (a path, bytes or an onnx.ModelProto) like `kiln check`: structure,
    ops kiln lacks, and (with shapes=True, on a sound model) declared shapes against kiln's
    shape inference. backend="cuda" also lists every node the GPU build (fp16: the FP16 one)
    would reject, without a GPU; fp32_islands, fuse_pointwise, int8, fp8, calib and calib_inputs
    check the build those `kiln build` flags make. An unreadable file raises a kiln.Error."""
    options = _builder_options(fp32_islands=fp32_islands, fuse_pointwise=fuse_pointwise, int8=int8, fp8=fp8,
                               calib=calib, calib_inputs=calib_inputs)
    with tempfile.TemporaryDirectory(prefix="kiln-") as tmp:
        r = _kiln.check(_model_path(model, tmp), bool(shapes), backend, bool(fp16), options)
    gpu = None
    if r["gpu"] is not None:
        g = r["gpu"]
        gpu = GpuCheck(g["error"], list(g["precision"]), [GpuGap(*x) for x in g["gaps"]], list(g["sync_points"]),
                       g["num_nodes"], g["probed"])
    return CheckResult([Issue(*i) for i in r["issues"]], r["ir_version"], r["opset"], r["num_nodes"], gpu)


@dataclass(frozen=True)
class ValueInfo:
    """A model input or output as declared: dims are ints, symbol names or None (unknown)."""
    name: str
    dtype: str
    dims: Optional[List[Union[int, str, None]]]
    type: str


@dataclass(frozen=True)
class InspectResult:
    """What `kiln inspect MODEL` prints, as data (`json`: the `--json` document itself; str():
    the text report). MACs are those of Conv/ConvTranspose/Gemm/MatMul at `input_shapes`."""
    model: str
    ir_version: int
    opsets: Dict[str, int]
    producer: str
    inputs: List[ValueInfo]
    outputs: List[ValueInfo]
    num_nodes: int
    ops: Dict[str, int]  # op → count, most frequent first
    parameters: int
    parameter_bytes: int
    initializers: int
    macs: float
    macs_by_op: Dict[str, float]
    input_shapes: Dict[str, List[int]]
    uncounted_nodes: List[str]
    shape_inference_error: str
    sync_points: List[str]
    ir: Optional[str]
    values: Optional[List[dict]]
    json: dict = field(repr=False)
    text: str = field(repr=False)

    def __str__(self) -> str:
        return self.text + ("\n" + self.ir if self.ir else "")


def inspect(model: Any, *, shapes: Optional[Mapping[str, Shape]] = None, ir: bool = False,
            values: bool = False) -> InspectResult:
    """Describes a model (a path, bytes or an onnx.ModelProto) like `kiln inspect`: inputs,
    outputs, versions, op histogram, parameters, MACs at `shapes` ({input: dims}; symbolic dims
    default to 1) and sync points; ir=True adds the text IR, values=True every value's inferred
    type (symbolic dims kept)."""
    dims = {name: [int(d) for d in s] for name, s in (shapes or {}).items()}
    with tempfile.TemporaryDirectory(prefix="kiln-") as tmp:
        path = _model_path(model, tmp)
        doc, text = _kiln.inspect(path, dims, bool(ir), bool(values))
    j = json.loads(doc)
    if not isinstance(model, (str, os.PathLike)):  # not the temporary file's name
        j["model"] = text_model = "<model>"
        text = text.replace(path, text_model, 1)

    def info(v: dict) -> ValueInfo:
        return ValueInfo(v["name"], v["dtype"], v["shape"], v["type"])

    p = j["producer"]
    m = j["macs"]
    return InspectResult(
        model=j["model"], ir_version=j["ir_version"], opsets=dict(j["opsets"]),
        producer=(p["name"] + (" " + p["version"] if p["version"] else "")).strip(),
        inputs=[info(v) for v in j["inputs"]], outputs=[info(v) for v in j["outputs"]], num_nodes=j["nodes"],
        ops={o["op"]: o["count"] for o in j["ops"]}, parameters=int(j["parameters"]["count"]),
        parameter_bytes=int(j["parameters"]["bytes"]), initializers=j["parameters"]["initializers"],
        macs=m["total"], macs_by_op=dict(m["by_op"]), input_shapes=dict(m["input_shapes"]),
        uncounted_nodes=list(m["uncounted_nodes"]), shape_inference_error=m.get("shape_inference_error", ""),
        sync_points=list(j["sync_points"]), ir=j.get("ir"), values=j.get("values"), json=j, text=text)


@dataclass(frozen=True)
class SimplifyResult:
    """What `kiln simplify` did: node counts, the passes' warnings, whether the result was verified
    against the original on the CPU reference (random inputs), and the outputs whose agreement
    proved nothing (degenerate on those inputs)."""
    path: str
    nodes_before: int
    nodes_after: int
    warnings: List[str]
    verified: bool
    vacuous: List[str]


def simplify(model: Any, output: Union[str, os.PathLike], *, verify: bool = True,
             input_shapes: Optional[Mapping[str, Shape]] = None) -> SimplifyResult:
    """Simplifies a model like `kiln simplify` (constant and shape folding, dead code, fusions)
    and writes it to `output`; verify=True checks it against the original on the CPU reference
    with random inputs (dims from `input_shapes`, symbolic ones 1) and raises if they differ."""
    dims = {name: [int(d) for d in s] for name, s in (input_shapes or {}).items()}
    with tempfile.TemporaryDirectory(prefix="kiln-") as tmp:
        r = _kiln.simplify(_model_path(model, tmp), os.fspath(output), bool(verify), dims)
    return SimplifyResult(os.fspath(output), r["nodes_before"], r["nodes_after"], list(r["warnings"]),
                          r["verified"], list(r["vacuous"]))


def export(module: Any, example_inputs: Any, **kwargs: Any) -> "ExportedModule":
    """Exports a torch module to ONNX, checks, simplifies, builds and verifies it: see
    kiln._export.export (docs/PYTHON.md)."""
    from ._export import export as _export
    return _export(module, example_inputs, **kwargs)


def register_torch_backend() -> None:
    """Registers "kiln" as a torch.compile backend (torch >= 2; done on `import kiln` when torch
    is already imported, and through the torch_dynamo_backends entry point otherwise)."""
    from ._dynamo import register
    register()


def __getattr__(name: str) -> Any:
    if name == "ExportedModule":
        from ._export import ExportedModule
        return ExportedModule
    raise AttributeError(f"module 'kiln' has no attribute '{name}'")


if "torch" in sys.modules:
    try:
        register_torch_backend()
    except Exception:  # an old or partial torch: kiln works without the backend
        pass
