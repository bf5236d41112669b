"""torch tensors in and out of Context.run, without copies.

A CUDA engine reads torch CUDA tensors where they are and writes outputs that
torch allocated, on torch's current stream without waiting: torch's stream
semantics. With stream=s it runs as torch ops do inside
`with torch.cuda.stream(s)` (conversions, outputs and the run on s; the
caller orders s after the inputs' producers, e.g. s.wait_stream(...)). A CPU engine does the same with CPU tensors (host
addresses). Inputs of another dtype are converted first (torch's .to, on the
device), non-contiguous ones made contiguous; outputs whose shape depends on
values get memory from torch during the run (kiln asks through its
OutputAllocator). torch CPU tensors given to a CUDA engine go through the numpy
path (staged copies) and come back as torch CPU tensors.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

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


def _stream(stream: Any, device: "torch.device") -> "Optional[torch.cuda.Stream]":
    """The torch stream for `stream=`: None (torch's current one), a torch.cuda.Stream /
    ExternalStream, or a cudaStream_t as an int (wrapped in an ExternalStream)."""
    if stream is None:
        return None
    if isinstance(stream, int):
        return torch.cuda.ExternalStream(stream, device=device)
    if hasattr(stream, "cuda_stream"):
        return stream
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

    if device.type == "cuda":
        given = _stream(stream, device)
        with torch.cuda.device(device):
            if given is None:
                return _run(context, feed, device, int(torch.cuda.current_stream(device).cuda_stream))
            # As torch ops inside `with torch.cuda.stream(s)`: conversions, outputs and kiln's work on s.
            # The caller's tensors are read on s: torch's allocator is told (record_stream).
            with torch.cuda.stream(given):
                out = _run(context, feed, device, int(given.cuda_stream))
            for t in feed.values():
                if isinstance(t, torch.Tensor):
                    t.record_stream(given)
            return out
    if stream is not None:
        raise _kiln.InvalidArgumentError("run: a CPU engine runs synchronously; pass no stream")
    return _run(context, feed, device, 0)


def _run(context: Any, feed: Dict[str, Any], device: "torch.device", handle: int) -> Dict[str, Any]:
    """Runs by address on `handle` (torch's current stream here; 0 on the CPU)."""
    engine = context.engine
    infos = {t.name: t for t in engine.inputs}
    # Converted inputs are freed on return while the run may be in flight: safe, as torch reuses
    # their memory only for work queued later on the same stream.
    keep = []
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
    return {info.name: outputs[info.name] for info in engine.outputs}
