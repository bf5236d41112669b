"""kiln.export: a torch module to a kiln engine in one call (docs/PYTHON.md).

In order: export to ONNX (dynamo when this torch has it, else TorchScript;
traced at batch >= 2 so that the batch stays dynamic), check that the batch did
stay dynamic (shape inference at another batch), `kiln check`, `kiln simplify`,
build with a profile over the dynamic axes, verify the engine against the
module's own outputs (at the example's batch and the traced one) and report the
max error, save the ONNX and the plan when asked, and return an
ExportedModule (a torch.nn.Module whose forward runs the engine).
"""
from __future__ import annotations

import inspect as _pyinspect
import logging
import os
import re
import tempfile
import threading
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from . import ExportError, _kiln

log = logging.getLogger("kiln")

__all__ = ["ExportError", "ExportedModule", "export"]



# Verification tolerances: |kiln - torch| <= atol + rtol * max|torch| per output.
_TOL = {False: (1e-4, 1e-3), True: (1e-2, 2e-2)}  # fp16 → (atol, rtol)


def _flatten(out: Any, prefix: str = "output") -> Tuple[List[str], List[torch.Tensor], Any]:
    """(names, tensors, structure) of a module's output: a tensor, a tuple/list or a flat dict."""
    if isinstance(out, torch.Tensor):
        return [prefix], [out], "tensor"
    if isinstance(out, (tuple, list)) and all(isinstance(t, torch.Tensor) for t in out):
        return [f"{prefix}_{i}" for i in range(len(out))], list(out), type(out)
    if isinstance(out, Mapping) and all(isinstance(t, torch.Tensor) for t in out.values()):
        names = [re.sub(r"[^A-Za-z0-9_.]", "_", str(k)) for k in out]
        return names, list(out.values()), ("dict", list(out))
    raise ExportError(f"export: the module returns {type(out).__name__}; kiln.export takes a tensor, a tuple/list "
                      "of tensors or a flat dict of tensors")


def _unflatten(structure: Any, tensors: List[Any]) -> Any:
    if structure == "tensor":
        return tensors[0]
    if isinstance(structure, tuple) and structure[0] == "dict":
        return dict(zip(structure[1], tensors))
    return structure(tensors)


def _input_names(module: torch.nn.Module, n: int) -> List[str]:
    try:
        params = [p for p in _pyinspect.signature(module.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    if len(params) >= n:
        return [p.name for p in params[:n]]
    return [f"input_{i}" for i in range(n)] if n > 1 else ["input"]


def _axes(spec: Any) -> Dict[int, str]:
    if isinstance(spec, Mapping):
        return {int(k): str(v) for k, v in spec.items()}
    return {int(a): f"dim{int(a)}" for a in spec}


def _onnx_export(module: torch.nn.Module, args: Tuple[torch.Tensor, ...], path: str, input_names: List[str],
                 output_names: List[str], dynamic_axes: Dict[str, Dict[int, str]], exporter: str,
                 opset: Optional[int], order: Sequence[str] = ("dynamo", "torchscript")) -> str:
    """Exports; returns the exporter that did it ("dynamo" or "torchscript"). "auto" tries them
    in `order`."""
    params = _pyinspect.signature(torch.onnx.export).parameters
    has_dynamo = "dynamo" in params
    errors = []
    order = {"auto": list(order), "dynamo": ["dynamo"], "torchscript": ["torchscript"]}.get(exporter)
    if order is None:
        raise _kiln.InvalidArgumentError(f"export: exporter must be 'auto', 'dynamo' or 'torchscript', not '{exporter}'")
    for which in order:
        if which == "dynamo" and not has_dynamo:
            errors.append(f"dynamo: this torch ({torch.__version__}) has no dynamo ONNX exporter")
            continue
        kwargs: Dict[str, Any] = dict(input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes)
        if which == "dynamo":
            kwargs.update(dynamo=True, opset_version=opset or 18, external_data=False)
            if "fallback" in params:
                kwargs["fallback"] = False
        else:
            kwargs.update(opset_version=opset or 17, do_constant_folding=True)
            if has_dynamo:
                kwargs["dynamo"] = False
        try:
            torch.onnx.export(module, args, path, **kwargs)
            return which
        except Exception as e:  # the next exporter, or all errors below
            errors.append(f"{which}: {type(e).__name__}: {e}")
            log.info("kiln.export: the %s exporter failed: %s", which, e)
    raise ExportError("export: no exporter could export the module:\n  " + "\n  ".join(errors))


def _check_dynamic(path: str, input_names: List[str], output_names: List[str], axes: Dict[str, Dict[int, str]],
                   traced: Dict[str, List[int]]) -> None:
    """The dynamic axes stayed dynamic: declared symbolic, and shape inference at other sizes of
    them gives the outputs the sizes that follow (not the traced ones)."""
    from . import inspect as kiln_inspect  # the package's (not the standard library's)
    info = kiln_inspect(path)
    declared = {v.name: v for v in info.inputs}
    for name in input_names:
        v = declared.get(name)
        if v is None:
            raise ExportError(f"export: the ONNX model has no input '{name}' (inputs: {sorted(declared)}); "
                              "the exporter dropped or renamed it")
        for a in axes.get(name, {}):
            if v.dims is None or a >= len(v.dims) or isinstance(v.dims[a], int):
                raise ExportError(f"export: input '{name}' dim {a} did not stay dynamic: the ONNX model declares "
                                  f"{v.type} (the exporter fixed it at the traced size)")
    # Shape inference with every dynamic axis one larger than traced: outputs must not keep the traced size.
    bumped = {n: [d + 1 if a in axes.get(n, {}) else d for a, d in enumerate(traced[n])] for n in input_names}
    r = kiln_inspect(path, shapes=bumped, values=True)
    if r.shape_inference_error:
        raise ExportError(f"export: the model does not work at other sizes of its dynamic axes (at {bumped}: "
                          f"{r.shape_inference_error}); a size was baked in when it was traced at {traced}")
    inferred = {v["name"]: v for v in (r.values or []) if v["graph"] == ""}
    out_decl = {v.name: v for v in info.outputs}
    for name in output_names:
        v, d = inferred.get(name), out_decl.get(name)
        if v is None or d is None or not d.dims or not v.get("dims"):
            continue
        for a, sym in enumerate(d.dims):
            if isinstance(sym, str) and a < len(v["dims"]) and isinstance(v["dims"][a], int):
                expect = _expected_size(sym, axes, input_names, bumped)
                if expect is not None and v["dims"][a] != expect:
                    raise ExportError(f"export: output '{name}' dim {a} ('{sym}') stays {v['dims'][a]} when the "
                                      f"inputs' '{sym}' is {expect}: the traced size was baked in (an exported "
                                      "reshape or expand with a constant size?)")


def _expected_size(sym: str, axes: Dict[str, Dict[int, str]], names: List[str], dims: Dict[str, List[int]]) -> Optional[int]:
    for n in names:
        for a, s in axes.get(n, {}).items():
            if s == sym:
                return dims[n][a]
    return None


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().float().numpy() if t.is_floating_point() else t.detach().cpu().numpy()


def _max_error(got: Sequence[torch.Tensor], ref: Sequence[torch.Tensor], names: List[str], fp16: bool,
               where: str) -> Dict[str, float]:
    atol, rtol = _TOL[fp16]
    errors = {}
    for name, g, r in zip(names, got, ref):
        g, r = _to_numpy(g), _to_numpy(r)
        if g.shape != r.shape:
            raise ExportError(f"export: verification {where}: output '{name}' has shape {list(g.shape)}, the module's "
                              f"{list(r.shape)}")
        if g.size == 0:
            errors[name] = 0.0
            continue
        if g.dtype == np.bool_ or np.issubdtype(g.dtype, np.integer):
            err = float(np.max(np.abs(g.astype(np.float64) - r.astype(np.float64))))
            bound = 0.0
        else:
            if not np.array_equal(np.isnan(g), np.isnan(r)):
                raise ExportError(f"export: verification {where}: output '{name}' has NaNs where the module's has none "
                                  "(or the other way round)")
            ok = ~np.isnan(r)
            err = float(np.max(np.abs(g[ok].astype(np.float64) - r[ok].astype(np.float64)))) if ok.any() else 0.0
            bound = atol + rtol * (float(np.max(np.abs(r[ok]))) if ok.any() else 0.0)
        errors[name] = err
        if err > bound:
            raise ExportError(f"export: verification {where}: output '{name}' differs from the module's by up to "
                              f"{err:.3g} (allowed {bound:.3g}{', fp16' if fp16 else ''})")
    return errors


class ExportedModule(torch.nn.Module):
    """A torch.nn.Module whose forward runs a kiln engine (made by kiln.export).

    forward takes the module's positional tensor inputs (on the engine's device: CUDA tensors
    for a CUDA engine, CPU tensors for a CPU one) and returns what the module returned (a tensor,
    tuple, list or dict). One execution context per thread. Attributes: engine, input_names,
    output_names, max_error ({output: max |kiln - torch|} from the verification), report (what each
    step did), onnx_path / plan_path (with save_dir)."""

    def __init__(self, engine: Any, input_names: List[str], output_names: List[str], structure: Any,
                 report: Dict[str, Any]) -> None:
        super().__init__()
        self.engine = engine
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self._structure = structure
        self.report = report
        self.max_error: Dict[str, float] = report.get("max_error", {})
        self.onnx_path: Optional[str] = report.get("onnx_path")
        self.plan_path: Optional[str] = report.get("plan_path")
        self._local = threading.local()

    def _context(self) -> Any:
        ctx = getattr(self._local, "ctx", None)
        if ctx is None:
            ctx = self._local.ctx = self.engine.create_context()
        return ctx

    def forward(self, *args: Any, stream: Any = None) -> Any:
        if len(args) != len(self.input_names):
            raise _kiln.InvalidArgumentError(f"forward: the engine takes {len(self.input_names)} inputs "
                                             f"({', '.join(self.input_names)}), got {len(args)}")
        feed = {n: a if isinstance(a, torch.Tensor) else torch.as_tensor(a) for n, a in zip(self.input_names, args)}
        out = self._context().run(feed, stream=stream)
        return _unflatten(self._structure, [out[n] for n in self.output_names])

    def extra_repr(self) -> str:
        return f"engine={self.engine.backend}, inputs={self.input_names}, outputs={self.output_names}"

    def __getstate__(self) -> Any:
        raise TypeError("an ExportedModule holds a kiln engine: save it with export(save_dir=...) and load the plan "
                        "with kiln.Engine.load")


def export(module: torch.nn.Module, example_inputs: Any, *, dynamic_batch: bool = True,
           dynamic_axes: Optional[Mapping[str, Any]] = None, fp16: bool = True, exporter: str = "auto",
           simplify: bool = True, verify: bool = True, save_dir: Optional[Union[str, os.PathLike]] = None,
           backend: str = "cuda", max_batch: int = 32, profiles: Optional[Mapping[str, Any]] = None,
           opset: Optional[int] = None, name: Optional[str] = None) -> ExportedModule:
    """Exports `module` called on `example_inputs` (a tensor or a tuple of them) to ONNX, checks,
    simplifies, builds and verifies it, and returns an ExportedModule running the engine.

    dynamic_batch: dim 0 of every input (and output) is the dynamic "batch", profile 1..max_batch
      (opt: the example's batch); the module is traced at batch >= 2 (the example repeated) so
      that the exporter keeps it dynamic, and the export fails (ExportError) if it did not.
    dynamic_axes: more dynamic axes, torch.onnx style: {input or output name: {axis: symbol} or
      [axes]}; their profile is 1..4x the example's size unless `profiles` gives one
      ({input: (min, opt, max) shapes}, which overrides everything for that input).
    fp16: build in FP16 (the CUDA backend; the CPU backend is FP32 only, so it is ignored there).
    exporter: "auto" (dynamo when torch.onnx.export has it, falling back to TorchScript),
      "dynamo" or "torchscript".
    simplify: run kiln's simplifier on the exported model (verified on the CPU reference when
      `verify`). verify: compare the engine with the module at the example's batch and the traced
      one (ExportError beyond the tolerance); the max errors are in .max_error.
    save_dir: write NAME.onnx (the model built) and NAME.plan there (NAME: `name` or the module's
      class name in lower case).
    backend: "cuda" or "cpu" (the reference executor: CPU tensors in and out)."""
    if backend not in ("cuda", "cpu"):
        raise _kiln.InvalidArgumentError(f"export: backend must be 'cuda' or 'cpu', not '{backend}'")
    from . import build as kiln_build, check as kiln_check, simplify as kiln_simplify

    args = (example_inputs,) if isinstance(example_inputs, torch.Tensor) else tuple(example_inputs)
    if not args or not all(isinstance(a, torch.Tensor) for a in args):
        raise _kiln.InvalidArgumentError("export: example_inputs must be a tensor or a non-empty tuple of tensors")
    fp16 = bool(fp16) and backend == "cuda"
    name = name or type(module).__name__.lower()
    input_names = _input_names(module, len(args))
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            ref = module(*args)
        output_names, ref_tensors, structure = _flatten(ref)

        # Dynamic axes: the batch (dim 0 of each input and output), then the caller's.
        axes: Dict[str, Dict[int, str]] = {}
        if dynamic_batch:
            for n, a in zip(input_names, args):
                if a.dim() == 0:
                    raise ExportError(f"export: input '{n}' is a scalar: it has no batch dim (dynamic_batch=False?)")
                axes.setdefault(n, {})[0] = "batch"
            for n, t in zip(output_names, ref_tensors):
                if t.dim() > 0:
                    axes.setdefault(n, {})[0] = "batch"
        for n, spec in (dynamic_axes or {}).items():
            axes.setdefault(n, {}).update(_axes(spec))

        # Traced at batch >= 2: a batch of 1 lets exporters specialise it away.
        traced = args
        if dynamic_batch and any(a.shape[0] < 2 for a in args):
            reps = max(2, *(a.shape[0] for a in args))
            traced = tuple(torch.cat([a] * (reps // max(a.shape[0], 1) + 1))[:reps] if a.shape[0] > 0 else a
                           for a in args)
        with torch.no_grad():
            traced_ref = module(*traced) if traced is not args else ref
        _, traced_ref_tensors, _ = _flatten(traced_ref)

        report: Dict[str, Any] = {"backend": backend, "fp16": fp16, "dynamic_axes": axes}
        with tempfile.TemporaryDirectory(prefix="kiln-export-") as tmp:
            raw = os.path.join(tmp, f"{name}.raw.onnx")
            with torch.no_grad():
                report["exporter"] = _onnx_export(module, traced, raw, input_names, output_names, axes, exporter, opset)
            log.info("kiln.export: exported with the %s exporter", report["exporter"])
            dims = {n: list(a.shape) for n, a in zip(input_names, args)}
            _check_dynamic(raw, input_names, output_names, axes, {n: list(a.shape) for n, a in zip(input_names, traced)})

            checked = kiln_check(raw, backend=backend, fp16=fp16)
            report["check_warnings"] = [i.message for i in checked.warnings]
            if not checked.valid:
                problems = [str(i) for i in checked.errors + checked.unsupported]
                if checked.gpu is not None:
                    problems += ([checked.gpu.error] if checked.gpu.error else []) + [str(g) for g in checked.gpu.gaps]
                cls = _kiln.UnsupportedError if not checked.errors else _kiln.InvalidArgumentError
                raise cls(f"export: kiln check ({backend}{', fp16' if fp16 else ''}) rejects the exported model:\n  " +
                          "\n  ".join(problems[:20]) + (f"\n  ... {len(problems) - 20} more" if len(problems) > 20 else ""))

            model = raw
            if simplify:
                model = os.path.join(tmp, f"{name}.onnx")
                s = kiln_simplify(raw, model, verify=verify, input_shapes=dims)
                report["simplify"] = {"nodes_before": s.nodes_before, "nodes_after": s.nodes_after,
                                      "verified": s.verified, "warnings": s.warnings}

            prof = _profiles(input_names, args, axes, max_batch, profiles)
            engine = kiln_build(model, backend=backend, fp16=fp16, profiles=prof)
            report["profiles"] = prof
            report["build"] = engine.report

            if verify:
                ctx = engine.create_context()
                errors = {}
                for where, inputs, expect in (("at the example's shapes", args, ref_tensors),
                                              ("at the traced shapes", traced, traced_ref_tensors)):
                    if where.endswith("traced shapes") and traced is args:
                        continue
                    feed = {n: a.detach() for n, a in zip(input_names, inputs)}
                    if backend == "cuda":
                        feed = {n: a.cuda() for n, a in feed.items()}
                    else:
                        feed = {n: a.cpu() for n, a in feed.items()}
                    out = ctx.run(feed)
                    got = [out[n] for n in output_names]
                    for n, e in _max_error(got, expect, output_names, fp16, where).items():
                        errors[n] = max(errors.get(n, 0.0), e)
                report["max_error"] = errors
                log.info("kiln.export: %s verified against torch: max error %s", name,
                         ", ".join(f"{n} {e:.3g}" for n, e in errors.items()))

            if save_dir is not None:
                os.makedirs(save_dir, exist_ok=True)
                onnx_path = os.path.join(os.fspath(save_dir), f"{name}.onnx")
                plan_path = os.path.join(os.fspath(save_dir), f"{name}.plan")
                with open(model, "rb") as src, open(onnx_path, "wb") as dst:
                    dst.write(src.read())
                engine.save(plan_path)
                report["onnx_path"], report["plan_path"] = onnx_path, plan_path
    finally:
        module.train(was_training)
    return ExportedModule(engine, input_names, output_names, structure, report)


def _profiles(input_names: List[str], args: Tuple[torch.Tensor, ...], axes: Dict[str, Dict[int, str]],
              max_batch: int, given: Optional[Mapping[str, Any]]) -> Dict[str, Tuple[List[int], List[int], List[int]]]:
    prof = {}
    for n, a in zip(input_names, args):
        if given and n in given:
            prof[n] = tuple([int(d) for d in s] for s in given[n])
            continue
        if not axes.get(n):
            continue
        lo, opt, hi = list(a.shape), list(a.shape), list(a.shape)
        for ax, sym in axes[n].items():
            d = int(a.shape[ax])
            lo[ax] = 1
            hi[ax] = max(max_batch, d, 2) if sym == "batch" else max(4 * d, 2)
        prof[n] = (lo, opt, hi)
    return prof
