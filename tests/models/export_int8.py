#!/usr/bin/env python3
"""INT8 test fixtures: small FP32 models (torch → ONNX), their QDQ forms made by
onnxruntime.quantization.quantize_static, calibration inputs and onnxruntime's
outputs (the independent oracle the unit tests compare kiln with).

    export_int8.py OUT_DIR

writes, for MODEL in conv, mlp (outlier: the FP32 model and its inputs only):
  MODEL_fp32.onnx                      the FP32 model
  MODEL_qdq_<act>_<w>.onnx             QDQ models: act s8|u8 (activation int8 / uint8),
                                       w pc|pt (per-channel / per-tensor int8 weights)
  MODEL_calib/NNN/input.npy            calibration samples (kiln build --int8 --calib DIR)
  MODEL_input.npy                      a held-out test input
  MODEL_fp32_ort.npy                   onnxruntime's outputs of the FP32 model (flat, concatenated;
                                       conv has two: logits and the last conv's feature map)
  MODEL_qdq_*_ort.npy                  onnxruntime's output of the QDQ model (all
                                       graph optimizations: its fused integer kernels)
  MODEL_qdq_*_ort_noopt.npy            the same without graph optimizations (the QDQ
                                       graph run literally in float)
  conv_qop_u8_pc.onnx                  conv in onnxruntime's QOperator form (QLinearConv; the Gemm float)
  MODEL_dyn.onnx                       quantize_dynamic's form (DynamicQuantizeLinear, MatMulInteger, and for
                                       conv ConvInteger with uint8 weights; mlp int8 weights)
  MODEL_fq_<act>_<w>.onnx (+ _ort.npy, _ort_noopt.npy)
                                       conv and mlp with torch fake-quant modules (QAT's form once
                                       its observers are frozen: torch.fake_quantize_per_tensor_affine
                                       on activations and outputs, _per_channel_affine or per-tensor on
                                       weights, scales from min/max over the calibration samples),
                                       exported by the TorchScript exporter at opset 13
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_dynamic, quantize_static)


class ConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.c3 = torch.nn.Conv2d(16, 16, 1)
        self.fc = torch.nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.c1(x))
        x = torch.relu(self.c2(x))
        f = self.c3(x)
        return self.fc(f.mean(dim=(2, 3))), f


class Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = torch.nn.Linear(32, 64)
        self.l2 = torch.nn.Linear(64, 48)
        self.l3 = torch.nn.Linear(48, 10)

    def forward(self, x):
        return self.l3(torch.relu(self.l2(torch.relu(self.l1(x)))))


class OutlierMlp(torch.nn.Module):
    """Feature 0 of the input is ~1000x the others (and matters): one per-tensor
    int8 scale cannot hold both, so INT8 hurts l1 (the fallback keeps it FP32)."""

    def __init__(self):
        super().__init__()
        self.l1 = torch.nn.Linear(32, 64)
        self.l2 = torch.nn.Linear(64, 10)
        with torch.no_grad():
            self.l1.weight[:, 0] *= 1e-3

    def forward(self, x):
        return self.l2(torch.relu(self.l1(x)))


MODELS = {
    "conv": (ConvNet, (2, 3, 16, 16)),
    "mlp": (Mlp, (64, 32)),
    "outlier": (OutlierMlp, (16, 32)),
}
VARIANTS = {
    "s8_pc": (QuantType.QInt8, True),
    "s8_pt": (QuantType.QInt8, False),
    "u8_pc": (QuantType.QUInt8, True),
}


class Reader(CalibrationDataReader):
    def __init__(self, samples):
        self.it = iter([{"input": s} for s in samples])

    def get_next(self):
        return next(self.it, None)


def run_ort(path, x, optimize):
    """onnxruntime's outputs, concatenated flat (the unit test splits them by the model's output sizes)."""
    so = ort.SessionOptions()
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                                   if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return np.concatenate([o.astype(np.float32).ravel() for o in sess.run(None, {"input": x})])


class FakeQuant(torch.nn.Module):
    """A torch fake-quant module: while observing it records its input's range (per channel along `axis`,
    or per tensor), frozen it computes what torch.ao.quantization.FakeQuantize computes with that
    observer's scale and zero point (torch.fake_quantize_per_*_affine, exported as QuantizeLinear +
    DequantizeLinear). Weights are symmetric int8; activations affine int8 or uint8."""

    def __init__(self, signed, symmetric=False, axis=None):
        super().__init__()
        self.qmin, self.qmax = (-128, 127) if signed else (0, 255)
        self.symmetric, self.axis, self.observing = symmetric, axis, True
        self.lo = self.hi = None

    def forward(self, x):
        if self.observing:
            dims = [d for d in range(x.dim()) if d != self.axis]
            lo, hi = x.detach().amin(dim=dims), x.detach().amax(dim=dims)
            self.lo = lo if self.lo is None else torch.minimum(self.lo, lo)
            self.hi = hi if self.hi is None else torch.maximum(self.hi, hi)
            return x
        if self.axis is None:
            return torch.fake_quantize_per_tensor_affine(x, float(self.scale), int(self.zero_point), self.qmin,
                                                         self.qmax)
        return torch.fake_quantize_per_channel_affine(x, self.scale, self.zero_point, self.axis, self.qmin,
                                                      self.qmax)

    def freeze(self):
        lo, hi = torch.clamp(self.lo, max=0.0), torch.clamp(self.hi, min=0.0)
        if self.symmetric:
            scale = torch.maximum(-lo, hi) / ((self.qmax - self.qmin) / 2)
            zero = torch.zeros_like(scale, dtype=torch.int32)
        else:
            scale = (hi - lo) / (self.qmax - self.qmin)
            zero = (self.qmin - torch.round(lo / scale.clamp(min=1e-12))).clamp(self.qmin, self.qmax).to(torch.int32)
        self.register_buffer("scale", scale.clamp(min=1e-8).float())
        self.register_buffer("zero_point", zero)
        self.observing = False


class FakeQuantNet(torch.nn.Module):
    """conv or mlp with fake quantization at the input, every weight, every activation that feeds a
    convolution or product, and every output; the float model's parameters."""

    def __init__(self, name, signed, per_channel):
        super().__init__()
        self.name, self.net = name, MODELS[name][0]()
        layers = [m for m in self.net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        self.wq = torch.nn.ModuleList(FakeQuant(True, True, 0 if per_channel else None) for _ in layers)
        outputs = 2 if name == "conv" else 1
        self.aq = torch.nn.ModuleList(FakeQuant(signed) for _ in range(len(layers) + outputs))

    def layer(self, m, i, x):
        w = self.wq[i](m.weight)
        x = self.aq[i](x)
        if isinstance(m, torch.nn.Conv2d):
            return torch.nn.functional.conv2d(x, w, m.bias, m.stride, m.padding)
        return torch.nn.functional.linear(x, w, m.bias)

    def forward(self, x):
        f = self.net
        if self.name == "conv":
            x = torch.relu(self.layer(f.c1, 0, x))
            x = torch.relu(self.layer(f.c2, 1, x))
            feat = self.layer(f.c3, 2, x)
            return self.aq[4](self.layer(f.fc, 3, feat.mean(dim=(2, 3)))), self.aq[5](feat)
        x = torch.relu(self.layer(f.l1, 0, x))
        x = torch.relu(self.layer(f.l2, 1, x))
        return self.aq[3](self.layer(f.l3, 2, x))


FAKE_QUANT = {  # name: (model, signed activations, per-channel weights)
    "conv_fq_u8_pc": ("conv", False, True),
    "conv_fq_s8_pt": ("conv", True, False),
    "mlp_fq_s8_pc": ("mlp", True, True),
}


def export_fake_quant(out, name, model, signed, per_channel, samples, x):
    torch.manual_seed(1)
    net = FakeQuantNet(model, signed, per_channel).eval()
    with torch.no_grad():
        for s in samples:
            net(torch.from_numpy(s))
        for m in net.modules():
            if isinstance(m, FakeQuant):
                m.freeze()
        path = os.path.join(out, f"{name}.onnx")
        outputs = ["output", "features"] if model == "conv" else ["output"]
        torch.onnx.export(net, torch.from_numpy(x), path, input_names=["input"], output_names=outputs,
                          opset_version=13)
    onnx.checker.check_model(path)
    np.save(os.path.join(out, f"{name}_ort.npy"), run_ort(path, x, True))
    np.save(os.path.join(out, f"{name}_ort_noopt.npy"), run_ort(path, x, False))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    for name, (cls, shape) in MODELS.items():
        model = cls().eval()
        fp32 = os.path.join(out, f"{name}_fp32.onnx")
        outputs = ["output", "features"] if name == "conv" else ["output"]
        torch.onnx.export(model, torch.zeros(shape), fp32, input_names=["input"], output_names=outputs,
                          opset_version=17)
        def sample():
            s = rng.standard_normal(shape).astype(np.float32)
            if name == "outlier":
                s[:, 0] *= 1000.0
            return s

        samples = [sample() for _ in range(8)]
        for i, s in enumerate(samples):
            d = os.path.join(out, f"{name}_calib", f"{i:03d}")
            os.makedirs(d, exist_ok=True)
            np.save(os.path.join(d, "input.npy"), s)
        x = sample()
        np.save(os.path.join(out, f"{name}_input.npy"), x)
        np.save(os.path.join(out, f"{name}_fp32_ort.npy"), run_ort(fp32, x, True))
        for v, (act, per_channel) in (VARIANTS.items() if name != "outlier" else []):
            qdq = os.path.join(out, f"{name}_qdq_{v}.onnx")
            quantize_static(fp32, qdq, Reader(samples), quant_format=QuantFormat.QDQ, activation_type=act,
                            weight_type=QuantType.QInt8, per_channel=per_channel,
                            calibrate_method=CalibrationMethod.MinMax)
            onnx.checker.check_model(qdq)
            np.save(os.path.join(out, f"{name}_qdq_{v}_ort.npy"), run_ort(qdq, x, True))
            np.save(os.path.join(out, f"{name}_qdq_{v}_ort_noopt.npy"), run_ort(qdq, x, False))
        if name == "conv":  # the quantized operator form: QLinearConv (its Gemm stays float)
            qop = os.path.join(out, "conv_qop_u8_pc.onnx")
            quantize_static(fp32, qop, Reader(samples), quant_format=QuantFormat.QOperator,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                            op_types_to_quantize=["Conv"], calibrate_method=CalibrationMethod.MinMax)
            onnx.checker.check_model(qop)
        if name != "outlier":  # dynamic quantization: activations quantized at run time
            dyn = os.path.join(out, f"{name}_dyn.onnx")
            quantize_dynamic(fp32, dyn, weight_type=QuantType.QUInt8 if name == "conv" else QuantType.QInt8,
                             op_types_to_quantize=["Conv", "MatMul", "Gemm"])
            onnx.checker.check_model(dyn)
        for fq, (model, signed, per_channel) in FAKE_QUANT.items():
            if model == name:
                export_fake_quant(out, fq, model, signed, per_channel, samples, x)
    print("wrote", out)


if __name__ == "__main__":
    main()
