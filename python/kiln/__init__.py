"""kiln: ONNX → GPU inference engine, from Python.

    import kiln
    engine = kiln.build("model.onnx", backend="cpu")      # or "cuda"; path, bytes or onnx.ModelProto
    ctx = engine.create_context()
    outputs = ctx.run({"input": x})                        # numpy in, numpy out (dict by output name)

The API mirrors the C++ one (include/kiln/engine.h); docs/PYTHON.md has the
whole picture and what is still to come (torch tensors, kiln.export,
torch.compile).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

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

__version__: str = _kiln.__version__
has_cuda: bool = _kiln.has_cuda

__all__ = [
    "Context", "Engine", "Error", "InternalError", "InvalidArgumentError", "IoError", "NotFoundError",
    "OutOfRangeError", "ParseError", "TensorInfo", "UnsupportedError", "build", "check", "CheckResult", "Issue",
    "has_cuda", "__version__",
]

Shape = Sequence[int]
Profile = Tuple[Shape, Shape, Shape]


class Context:
    """Per-thread execution state of an Engine (C++ kiln::Context)."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx

    def set_input_shape(self, name: str, dims: Shape) -> None:
        """Sets a dynamic input's shape (within the engine's profile)."""
        self._ctx.set_input_shape(name, [int(d) for d in dims])

    def get_output_shape(self, name: str) -> list:
        """The output's dims at the current input shapes (-1: known only after a run)."""
        return self._ctx.get_output_shape(name)

    def run(self, feed: Mapping[str, Any]) -> Dict[str, Any]:
        """Runs the engine: numpy arrays (or anything numpy.asarray takes) by input name in,
        a dict of numpy arrays by output name out. Input shapes come from the arrays; the GIL
        is released while kiln runs."""
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
        return Context(self._engine.create_context())

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


def build(model: Any, *, backend: str = "cuda", fp16: bool = False,
          profiles: Optional[Mapping[str, Profile]] = None, workspace: Optional[int] = None) -> Engine:
    """Builds an engine from an ONNX model (a path, bytes or an onnx.ModelProto).

    backend: "cuda" (needs a CUDA build of kiln and a GPU) or "cpu" (the reference executor).
    profiles: {input name: (min, opt, max) shapes} for dynamic inputs.
    workspace: the CUDA workspace limit in bytes.
    A model given as bytes or a ModelProto is written to a temporary file first (external
    data must then be embedded)."""
    prof = {name: [[int(d) for d in s] for s in r] for name, r in (profiles or {}).items()}
    report: dict = {}
    with tempfile.TemporaryDirectory(prefix="kiln-") as tmp:
        engine = _kiln.build(_model_path(model, tmp), backend, bool(fp16), prof, workspace, report)
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
class CheckResult:
    """What `kiln check MODEL` prints, as data. `valid`: no errors and no unsupported nodes."""
    issues: List[Issue] = field(default_factory=list)
    ir_version: int = 0
    opset: int = 0
    num_nodes: int = 0

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
        return not self.errors and not self.unsupported


def check(model: Any, *, shapes: bool = True) -> CheckResult:
    """Validates a model (a path, bytes or an onnx.ModelProto) like `kiln check`: structure,
    ops kiln lacks, and (with shapes=True, on a sound model) declared shapes against kiln's
    shape inference. An unreadable file raises a kiln.Error."""
    with tempfile.TemporaryDirectory(prefix="kiln-") as tmp:
        r = _kiln.check(_model_path(model, tmp), bool(shapes))
    return CheckResult([Issue(*i) for i in r["issues"]], r["ir_version"], r["opset"], r["num_nodes"])
