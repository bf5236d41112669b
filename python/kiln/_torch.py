"""torch tensors in and out of Context.run, without copies.

A CUDA engine reads torch CUDA tensors where they are and writes outputs that
torch allocated, on torch's current stream (or the one given) without waiting:
torch's stream semantics. A CPU engine does the same with CPU tensors (host
addresses). Inputs of another dtype are converted first (torch's .to, on the
device), non-contiguous ones made contiguous; outputs whose shape depends on
values get memory from torch during the run (kiln asks through its
OutputAllocator). torch CPU tensors given to a CUDA engine go through the numpy
path (staged copies) and come back as torch CPU tensors.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping

import numpy as np
import torch

from . import _kiln

_DTYPES = {
    "float32": torch.float32, "float16": torch.float16, "float64": torch.float64, "bfloat16": torch.bfloat16,
    "int8": torch.int8, "uint8": torch.uint8, "int16": torch.int16, "int32": torch.int32, "int64": torch.int64,
    "bool": torch.bool,
}


def has_tensor(feed: Mapping[str, Any]) -> bool:
    return any(isinstance(v, torch.Tensor) for v in feed.values())


def torch_dtype(name: str) -> "torch.dtype":
    try:
        return _DTYPES[name]
    except KeyError:
        raise _kiln.UnsupportedError(f"run: kiln dtype '{name}' has no torch equivalent") from None


def _stream_handle(stream: Any, device: "torch.device") -> "tuple[int, Any]":
    """(cudaStream_t as an int, the torch.cuda.Stream when there is one)."""
    if stream is None:
        s = torch.cuda.current_stream(device)
        return int(s.cuda_stream), s
    if isinstance(stream, int):
        return stream, None
    if hasattr(stream, "cuda_stream"):  # torch.cuda.Stream / ExternalStream
        return int(stream.cuda_stream), stream
    raise _kiln.InvalidArgumentError(f"run: stream must be a torch.cuda.Stream or an int, not {type(stream).__name__}")


def run(context: Any, feed: Dict[str, Any], stream: Any) -> Dict[str, Any]:
    engine = context.engine
    devices = {v.device for v in feed.values() if isinstance(v, torch.Tensor)}
    if len(devices) != 1:
        raise _kiln.InvalidArgumentError(f"run: the torch tensors are on several devices ({sorted(map(str, devices))})")
    device = devices.pop()
    if engine.backend == "cpu" and device.type != "cpu":
        raise _kiln.InvalidArgumentError(f"run: a CPU engine takes CPU tensors; the feed is on {device}")
    if engine.backend == "cuda" and device.type == "cpu":
        # Staged through the numpy path (a copy each way), back as torch CPU tensors.
        if stream is not None:
            raise _kiln.InvalidArgumentError("run: stream= needs CUDA tensors")
        arrays = {k: v.detach().numpy() if isinstance(v, torch.Tensor) else v for k, v in feed.items()}
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in context._ctx.run(arrays).items()}
    if engine.backend == "cuda" and device.type != "cuda":
        raise _kiln.InvalidArgumentError(f"run: a CUDA engine takes CUDA (or CPU) tensors; the feed is on {device}")

    on_gpu = device.type == "cuda"
    if on_gpu:
        handle, torch_stream = _stream_handle(stream, device)
    elif stream is not None:
        raise _kiln.InvalidArgumentError("run: a CPU engine runs synchronously; pass no stream")
    else:
        handle, torch_stream = 0, None
    # A stream other than torch's current one: tell torch's allocator which stream uses the memory.
    foreign = on_gpu and torch_stream is not None and torch_stream != torch.cuda.current_stream(device)
    infos = {t.name: t for t in engine.inputs}
    keep = []  # converted inputs and the outputs: alive as long as the caller's tensors are
    bound: Dict[str, Any] = {}
    for name, value in feed.items():
        info = infos.get(name)
        if info is None:  # the C++ side names it
            bound[name] = (0, [], None)
            continue
        t = torch.as_tensor(value, device=device) if not isinstance(value, torch.Tensor) else value
        t = t.detach().to(torch_dtype(info.dtype)).contiguous()
        keep.append(t)
        host = t.cpu().numpy().tobytes() if info.shape_tensor else None
        bound[name] = (t.data_ptr(), list(t.shape), host)
    ctx = context._ctx
    with torch.cuda.device(device) if on_gpu else _nullcontext():
        ctx.bind_inputs(bound)
        outputs: Dict[str, Any] = {}
        addresses = {}
        for info in engine.outputs:
            dims = ctx.get_output_shape(info.name)
            if any(d < 0 for d in dims):
                continue  # its shape depends on values: allocated during the run
            t = torch.empty(dims, dtype=torch_dtype(info.dtype), device=device)
            outputs[info.name] = t
            addresses[info.name] = (t.data_ptr(), t.numel() * t.element_size())
        buffers: Dict[str, Any] = {}

        def allocate(name: str, nbytes: int) -> int:
            b = torch.empty(max(int(nbytes), 1), dtype=torch.uint8, device=device)
            buffers[name] = b
            return b.data_ptr()

        ran = ctx.enqueue(addresses, handle, allocate)
    for info in engine.outputs:
        if info.name not in ran:
            continue
        dims, reused = ran[info.name]
        if reused:
            outputs[info.name] = outputs[info.name].view(dims)
        else:
            dtype = torch_dtype(info.dtype)
            numel = int(np.prod(dims)) if dims else 1
            itemsize = torch.empty((), dtype=dtype).element_size()
            outputs[info.name] = buffers[info.name][: numel * itemsize].view(dtype).view(dims)
    if foreign:
        for t in keep + list(outputs.values()):
            t.record_stream(torch_stream)
    return {info.name: outputs[info.name] for info in engine.outputs}


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None
