"""torch.compile(model, backend="kiln"): FX graphs on kiln engines.

Dynamo hands the backend each captured FX graph with example inputs. The
backend exports the graph to ONNX (TorchScript's exporter first: it traces the
graph as it is, then the dynamo exporter), checks it with `kiln check`, builds
an engine for the example shapes (dynamo recompiles for other shapes) and
returns a function that runs it on torch tensors (CUDA tensors without copies,
on torch's current stream). Parameters that dynamo passes as graph inputs are
baked into the engine as weights, as are the graph's own attributes. Engines
are cached by the graph's code, the input shapes/dtypes/devices, the weights'
identity and the options, so recompiling the same graph builds nothing.

A graph kiln cannot take runs eagerly, with a warning (KilnFallbackWarning)
naming the node and the reason. Engines compute no gradients: a graph compiled
with grad enabled and something requiring grad runs eagerly too (dynamo guards
on the grad mode, so the same model under torch.no_grad() gets kiln).

Options (torch.compile(..., options={...})): fp16 (False), backend ("cuda" for
CUDA inputs, else "cpu"), verify (False: compare with the graph run eagerly on
the example inputs and fall back when they differ), exporter ("torchscript"
then "dynamo").
"""
from __future__ import annotations

import hashlib
import re
import tempfile
import threading
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from . import Error, ExportError

__all__ = ["KilnFallbackWarning", "kiln_backend", "register", "cache_clear"]


class KilnFallbackWarning(UserWarning):
    """A graph torch.compile gave kiln runs eagerly (the message names the node and why)."""


class _Fallback(Exception):
    pass


_cache: Dict[str, Any] = {}
_lock = threading.Lock()
stats = {"builds": 0, "hits": 0, "fallbacks": 0}


def cache_clear() -> None:
    with _lock:
        _cache.clear()
        for k in stats:
            stats[k] = 0


def _key(gm: torch.fx.GraphModule, example_inputs: Sequence[Any], options: Dict[str, Any]) -> str:
    h = hashlib.sha256(gm.code.encode())
    for x in example_inputs:
        if isinstance(x, torch.Tensor):
            h.update(f"{tuple(x.shape)}|{x.dtype}|{x.device}|{isinstance(x, torch.nn.Parameter)}".encode())
            if isinstance(x, torch.nn.Parameter):  # baked: its identity and version matter
                h.update(f"{x.data_ptr()}|{x._version}".encode())
    for name, t in list(gm.named_parameters()) + list(gm.named_buffers()):
        h.update(f"{name}|{t.data_ptr()}|{t._version}|{tuple(t.shape)}|{t.dtype}".encode())
    h.update(repr(sorted(options.items())).encode())
    return h.hexdigest()


def _culprit(gm: torch.fx.GraphModule, message: str) -> str:
    """'node NAME (TARGET)' of the FX node an exporter error is about (by the aten op it names), or ''."""
    m = re.search(r"(?:aten|prim)::(\w+)", message) or re.search(r"operator '?(\w+)'?", message)
    if not m:
        return ""
    op = m.group(1).rstrip("_")
    for node in gm.graph.nodes:
        if node.op in ("call_function", "call_method", "call_module"):
            target = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", str(node.target))
            if op in str(target) or (node.op == "call_module" and op in type(gm.get_submodule(node.target)).__name__.lower()):
                return f"node '{node.name}' ({target}): "
    return ""


class _Graph(torch.nn.Module):
    """The FX graph with its parameter inputs bound (exported as weights)."""

    def __init__(self, gm: torch.fx.GraphModule, baked: Dict[int, torch.Tensor], n: int) -> None:
        super().__init__()
        self.gm = gm
        self.n = n
        self.baked = sorted(baked)
        for i, t in baked.items():
            self.register_buffer(f"param_{i}", t.detach())

    def forward(self, *runtime: torch.Tensor) -> Any:
        it = iter(runtime)
        args = [getattr(self, f"param_{i}") if i in self.baked else next(it) for i in range(self.n)]
        out = self.gm(*args)
        return tuple(out) if isinstance(out, list) else out


def _compile(gm: torch.fx.GraphModule, example_inputs: Sequence[Any], options: Dict[str, Any]) -> Callable:
    from . import build as kiln_build, check as kiln_check
    from ._export import _flatten, _max_error, _onnx_export

    for i, x in enumerate(example_inputs):
        if not isinstance(x, torch.Tensor):
            raise _Fallback(f"graph input {i} is a {type(x).__name__} (a dynamic size?): kiln takes tensors "
                            "(torch.compile(..., dynamic=False))")
    if torch.is_grad_enabled() and (any(x.requires_grad for x in example_inputs) or
                                    any(p.requires_grad for p in gm.parameters())):
        raise _Fallback("kiln engines compute no gradients: run the compiled model under torch.no_grad() or "
                        "torch.inference_mode() (or with parameters that do not require grad)")
    devices = {x.device for x in example_inputs}
    for _, t in list(gm.named_parameters()) + list(gm.named_buffers()):
        devices.add(t.device)
    if len(devices) > 1:
        raise _Fallback(f"the graph's tensors are on several devices ({sorted(map(str, devices))})")
    device = devices.pop() if devices else torch.device("cpu")
    backend = options.get("backend") or ("cuda" if device.type == "cuda" else "cpu")
    fp16 = bool(options.get("fp16", False)) and backend == "cuda"
    baked = {i: x for i, x in enumerate(example_inputs) if isinstance(x, torch.nn.Parameter)}
    runtime = [i for i in range(len(example_inputs)) if i not in baked]
    module = _Graph(gm, baked, len(example_inputs))
    args = tuple(example_inputs[i] for i in runtime)
    with torch.no_grad():
        ref = module(*args)
    try:
        output_names, _, structure = _flatten(ref)
    except ExportError as e:
        raise _Fallback(f"the graph's outputs: {e}") from None
    input_names = [f"input_{i}" for i in runtime]
    with tempfile.TemporaryDirectory(prefix="kiln-compile-") as tmp:
        path = f"{tmp}/graph.onnx"
        try:
            with torch.no_grad():
                _onnx_export(module, args, path, input_names, output_names, {}, options.get("exporter", "auto"),
                             options.get("opset"), order=("torchscript", "dynamo"))
        except ExportError as e:
            raise _Fallback(f"{_culprit(gm, str(e))}the ONNX export failed: {e}") from None
        checked = kiln_check(path, backend=backend, fp16=fp16)
        if not checked.valid:
            bad = checked.errors + checked.unsupported
            if bad:
                i = bad[0]
                raise _Fallback(f"node '{i.node}': {i.message}" + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))
            g = checked.gpu
            if g.error:
                raise _Fallback(g.error)
            raise _Fallback(f"node '{g.gaps[0].node}': {g.gaps[0].reason}" +
                            (f" (and {len(g.gaps) - 1} more)" if len(g.gaps) > 1 else ""))
        try:
            engine = kiln_build(path, backend=backend, fp16=fp16)
        except Error as e:
            raise _Fallback(f"the build failed: {e}") from None
    if options.get("verify", False):
        ctx = engine.create_context()
        out = ctx.run(dict(zip(input_names, args)))
        try:
            _max_error([out[n] for n in output_names], _flatten(ref)[1], output_names, fp16, "on the example inputs")
        except ExportError as e:
            raise _Fallback(str(e)) from None
    return _Runner(engine, runtime, input_names, output_names, structure)


class _Runner:
    """Runs the engine on the graph's runtime inputs; returns what the graph returns."""

    def __init__(self, engine: Any, runtime: List[int], input_names: List[str], output_names: List[str],
                 structure: Any) -> None:
        self.engine = engine
        self.runtime = runtime
        self.input_names = input_names
        self.output_names = output_names
        self.structure = structure
        self._local = threading.local()

    def __call__(self, *args: Any) -> Any:
        ctx = getattr(self._local, "ctx", None)
        if ctx is None:
            ctx = self._local.ctx = self.engine.create_context()
        out = ctx.run({n: args[i] for n, i in zip(self.input_names, self.runtime)})
        tensors = [out[n] for n in self.output_names]
        if self.structure == "tensor":
            return tensors[0]
        return self.structure(tensors)


def kiln_backend(gm: torch.fx.GraphModule, example_inputs: Sequence[Any], *, options: Optional[Dict[str, Any]] = None,
                 mode: Optional[str] = None) -> Callable:
    """The torch.compile backend: an FX graph and example inputs → a function running a kiln engine
    (or the graph itself, eagerly, with a KilnFallbackWarning naming the node and the reason)."""
    opts = dict(options or {})
    key = _key(gm, example_inputs, opts)
    with _lock:
        hit = _cache.get(key)
    if hit is not None:
        stats["hits"] += 1
        return hit if isinstance(hit, _Runner) else gm.forward
    try:
        runner: Any = _compile(gm, example_inputs, opts)
        stats["builds"] += 1
    except _Fallback as f:
        stats["fallbacks"] += 1
        warnings.warn(f"kiln: running this graph eagerly: {f}", KilnFallbackWarning, stacklevel=2)
        runner = f  # cached too: the same graph falls back without retrying
    with _lock:
        _cache[key] = runner
    return runner if isinstance(runner, _Runner) else gm.forward


def register() -> None:
    """Registers kiln_backend as torch.compile's "kiln" backend (torch >= 2)."""
    try:
        from torch._dynamo import register_backend
    except ImportError as e:
        raise RuntimeError(f"torch.compile backends need torch >= 2 (this is {torch.__version__})") from e
    from torch._dynamo import list_backends
    if "kiln" in list_backends(exclude_tags=()):
        return
    register_backend(name="kiln")(kiln_backend)
