// Every CUDA op against the CPU reference on random inputs: odd sizes,
// broadcasting, tile-unfriendly shapes. Single-op models are built in memory,
// run by the ReferenceExecutor (the oracle) and by a CUDA engine; outputs must
// agree within per-dtype tolerances: |gpu - cpu| <= rtol·|cpu| + atol·rms(cpu)
// (reference/compare.h). Every comparison first proves it can fail: the same
// tolerance must reject zeros and a 5%-perturbed reference. Skipped (not
// failed) without a GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ir/clone.h"
#include "passes/shape_inference.h"
#include "reference/compare.h"
#include "reference/executor.h"
#include "runtime/gpu/build_passes.h"
#include "runtime/gpu/gpu_engine.h"
#include "runtime/gpu/host_runner.h"

namespace kiln {
namespace {

bool HaveGpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

struct In {
  std::string name;
  std::vector<int64_t> dims;
  DataType dtype = DataType::kFloat;
  bool constant = false;
  std::vector<int64_t> int_values;  // for constant int64 inputs (axes, starts, ...)
  bool positive = false;            // values in (0.1, 2] (variances)
  bool special = false;             // NaN, +Inf and -Inf among the values (IsNaN, IsInf)
  std::vector<float> values;        // fixed float values (Clip bounds)
};

struct Case {
  std::string op;
  std::vector<In> inputs;
  AttributeMap attrs;
  int outputs = 1;
  int64_t opset = 17;
  std::string domain;  // "kiln" for kiln's fused ops
  bool fp16 = false;   // build with --fp16 (IO stays float32 through casts)
};

Tensor Random(const In& in, std::mt19937& rng) {
  if (!in.int_values.empty()) return Tensor::FromVector<int64_t>(DataType::kInt64, in.dims, in.int_values);
  if (!in.values.empty()) return Tensor::FromVector<float>(DataType::kFloat, in.dims, in.values);
  Tensor t(in.dtype, in.dims);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (in.dtype == DataType::kFloat) t.mutable_data<float>()[i] = in.positive ? 0.1f + std::fabs(u(rng)) : u(rng);
    else if (in.dtype == DataType::kFloat16) t.mutable_data<Half>()[i] = Half(u(rng));
    else if (in.dtype == DataType::kBool) t.mutable_data<bool>()[i] = rng() & 1;
    else if (in.dtype == DataType::kInt64) t.mutable_data<int64_t>()[i] = static_cast<int64_t>(rng() % 5);
    if (in.special && in.dtype == DataType::kFloat && i % 3 != 0)
      t.mutable_data<float>()[i] = i % 3 == 1 ? NAN : (i % 2 ? INFINITY : -INFINITY);
  }
  return t;
}

Tolerance Tol(double rtol, double atol) {
  Tolerance t;
  t.rtol = rtol;
  t.atol = atol;
  return t;
}

void RunCase(const Case& c, double rtol = 1e-4, double atol = 1e-5) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  SCOPED_TRACE(c.op);
  std::mt19937 rng(1234);
  auto m = std::make_unique<Model>();
  m->ir_version = 8;
  m->opsets[""] = c.opset;
  if (!c.domain.empty()) m->opsets[c.domain] = 1;
  m->graph = std::make_shared<Graph>();
  Graph& g = *m->graph;
  Node* n = g.AddNode(c.op, "node0", c.domain);
  n->attrs = c.attrs;
  std::map<std::string, RtValue> cpu_inputs;
  std::map<std::string, Tensor> gpu_inputs;
  for (const In& in : c.inputs) {
    if (in.name.empty()) {
      n->AddInput(nullptr);
      continue;
    }
    Value* v = g.AddValue(in.name);
    Tensor t = Random(in, rng);
    v->type = TypeInfo::Tensor(t.dtype(), t.shape());
    if (in.constant) {
      v->data = t;
      g.initializers.push_back(v);
    } else {
      g.inputs.push_back(v);
      cpu_inputs[in.name] = RtValue::FromTensor(t);
      gpu_inputs[in.name] = t;
    }
    n->AddInput(v);
  }
  for (int i = 0; i < c.outputs; ++i) {
    Value* y = g.AddValue("y" + std::to_string(i));
    n->AddOutput(y);
    g.outputs.push_back(y);
  }
  std::unique_ptr<Model> gm = CloneModel(*m);
  ASSERT_TRUE(InferShapes(*m).ok());
  auto want = ReferenceExecutor(*m).Run(cpu_inputs);
  ASSERT_TRUE(want.ok()) << want.status().ToString();

  BuildOptions opts;
  opts.fp16 = c.fp16;
  auto engine = cuda::BuildEngine(std::move(gm), opts, nullptr);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto runner = cuda::HostRunner::Create(*engine);
  ASSERT_TRUE(runner.ok()) << runner.status().ToString();
  ASSERT_TRUE((*runner)->SetInputs(gpu_inputs).ok());
  for (int rep = 0; rep < 3; ++rep) {  // eager, capture, graph replay
    Status s = (*runner)->Run();
    ASSERT_TRUE(s.ok()) << s.ToString();
    auto got = (*runner)->Outputs();
    ASSERT_TRUE(got.ok());
    for (int i = 0; i < c.outputs; ++i) {
      const Tensor& w = (*want)[static_cast<size_t>(i)].tensor;
      const Tensor& o = got->at("y" + std::to_string(i));
      ASSERT_EQ(o.dtype(), w.dtype());
      Status close = ExpectClose("output " + std::to_string(i) + " run " + std::to_string(rep), w, o, Tol(rtol, atol));
      ASSERT_TRUE(close.ok()) << close.message();
    }
  }
}

TEST(GpuOps, Unary) {
  for (const char* op : {"Relu", "Sigmoid", "Tanh", "Exp", "Erf", "Neg", "Abs", "Softplus", "HardSwish", "Floor",
                         "LeakyRelu", "Elu", "Sin"})
    RunCase({op, {{"x", {3, 5, 7}}}});
  RunCase({"Gelu", {{"x", {2, 33}}}, {{"approximate", Attribute::FromString("tanh")}}, 1, 20});
  RunCase({"Clip", {{"x", {4, 9}}, {"lo", {}, DataType::kFloat, true}, {"hi", {}, DataType::kFloat, true}}});
}

TEST(GpuOps, BinaryBroadcast) {
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Max", "Min"}) {
    RunCase({op, {{"a", {2, 3, 5}}, {"b", {5}}}});
    RunCase({op, {{"a", {2, 1, 5}}, {"b", {3, 1}}}});
    RunCase({op, {{"a", {7, 13}}, {"b", {7, 13}}}});
    // 16-byte vector paths: same shape, a row of whole vectors, a scalar; float16 too.
    RunCase({op, {{"a", {6, 40}}, {"b", {6, 40}}}});
    RunCase({op, {{"a", {3, 5, 16}}, {"b", {16}}}});
    RunCase({op, {{"a", {1}}, {"b", {4, 24}}}});
    RunCase({op, {{"a", {5, 64}, DataType::kFloat16}, {"b", {64}, DataType::kFloat16}}}, 1e-3, 1e-3);
    RunCase({op, {{"a", {3, 8, 8}, DataType::kFloat16}, {"b", {3, 8, 8}, DataType::kFloat16}}}, 1e-3, 1e-3);
  }
  RunCase({"Greater", {{"a", {4, 6}}, {"b", {6}}}});
  In special{"x", {5, 7}};
  special.special = true;
  RunCase({"IsNaN", {special}});
  RunCase({"IsInf", {special}});
  RunCase({"Where", {{"c", {3, 1}, DataType::kBool}, {"x", {3, 4}}, {"y", {4}}}});
}

TEST(GpuOps, Cast) {
  Case c{"Cast", {{"x", {5, 7}}}, {{"to", Attribute::FromInt(static_cast<int64_t>(DataType::kFloat16))}}};
  RunCase(c, 1e-3, 1e-3);
  RunCase({"Cast", {{"x", {9}, DataType::kInt64}}, {{"to", Attribute::FromInt(1)}}});
}

TEST(GpuOps, Conv) {
  RunCase({"Conv", {{"x", {2, 3, 11, 13}}, {"w", {8, 3, 3, 3}, DataType::kFloat, true}, {"b", {8}, DataType::kFloat, true}},
           {{"pads", Attribute::FromInts({1, 1, 1, 1})}, {"strides", Attribute::FromInts({2, 2})}}}, 1e-4, 1e-4);
  RunCase({"Conv", {{"x", {1, 6, 9, 9}}, {"w", {6, 1, 3, 3}, DataType::kFloat, true}},
           {{"group", Attribute::FromInt(6)}, {"dilations", Attribute::FromInts({2, 2})}, {"pads", Attribute::FromInts({2, 2, 2, 2})}}}, 1e-4, 1e-4);
  RunCase({"Conv", {{"x", {1, 4, 17}}, {"w", {5, 4, 3}, DataType::kFloat, true}}, {{"auto_pad", Attribute::FromString("SAME_UPPER")}}},
          1e-4, 1e-4);
}

// kiln.FusedConv = act(Conv(X, W, B) + Z): cudnnConvolutionBiasActivationForward
// (zero bias when B is absent, z = y with alpha2 = 0 when Z is absent; identity
// activation only with IMPLICIT_PRECOMP_GEMM, else the unfused fallback).
TEST(GpuOps, FusedConv) {
  const AttributeMap relu = {{"activation", Attribute::FromString("Relu")}, {"pads", Attribute::FromInts({1, 1, 1, 1})}};
  const AttributeMap ident = {{"activation", Attribute::FromString("")}, {"pads", Attribute::FromInts({1, 1, 1, 1})}};
  In x{"x", {2, 8, 9, 11}}, w{"w", {16, 8, 3, 3}, DataType::kFloat, true}, b{"b", {16}, DataType::kFloat, true};
  In z{"z", {2, 16, 9, 11}}, none{""};
  RunCase({"FusedConv", {x, w, b, z}, relu, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedConv", {x, w}, relu, 1, 17, "kiln"}, 1e-4, 1e-4);            // no bias: zero bias buffer
  RunCase({"FusedConv", {x, w, b}, relu, 1, 17, "kiln"}, 1e-4, 1e-4);         // no Z: z = y, alpha2 = 0
  RunCase({"FusedConv", {x, w, none, z}, relu, 1, 17, "kiln"}, 1e-4, 1e-4);   // Z without bias
  RunCase({"FusedConv", {x, w, b, z}, ident, 1, 17, "kiln"}, 1e-4, 1e-4);     // identity: PRECOMP_GEMM or fallback
  RunCase({"FusedConv", {x, w, none, z}, ident, 1, 17, "kiln"}, 1e-4, 1e-4);
  // Strided 1x1 (ResNet downsample), depthwise, 1-D.
  RunCase({"FusedConv", {{"x", {1, 8, 10, 10}}, {"w", {4, 8, 1, 1}, DataType::kFloat, true}, none, {"z", {1, 4, 5, 5}}},
           {{"activation", Attribute::FromString("Relu")}, {"strides", Attribute::FromInts({2, 2})}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedConv", {{"x", {1, 6, 9, 9}}, {"w", {6, 1, 3, 3}, DataType::kFloat, true}, {"b", {6}, DataType::kFloat, true}},
           {{"activation", Attribute::FromString("Relu")}, {"group", Attribute::FromInt(6)}, {"pads", Attribute::FromInts({1, 1, 1, 1})}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedConv", {{"x", {1, 4, 17}}, {"w", {5, 4, 3}, DataType::kFloat, true}, {"b", {5}, DataType::kFloat, true}, {"z", {1, 5, 17}}},
           {{"activation", Attribute::FromString("Relu")}, {"auto_pad", Attribute::FromString("SAME_UPPER")}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  // float16 (PSEUDO_HALF: FP32 accumulation), against the reference's per-step rounding.
  In xh{"x", {2, 8, 9, 11}, DataType::kFloat16}, wh{"w", {16, 8, 3, 3}, DataType::kFloat16, true};
  In bh{"b", {16}, DataType::kFloat16, true}, zh{"z", {2, 16, 9, 11}, DataType::kFloat16};
  RunCase({"FusedConv", {xh, wh, bh, zh}, relu, 1, 17, "kiln"}, 1e-2, 2e-2);
  RunCase({"FusedConv", {xh, wh, bh, zh}, ident, 1, 17, "kiln"}, 1e-2, 2e-2);
}

// FusedConv activations cuDNN does not fuse (Clip, Sigmoid, Swish): one pass after it.
TEST(GpuOps, FusedConvActivations) {
  In x{"x", {2, 8, 9, 11}}, w{"w", {16, 8, 3, 3}, DataType::kFloat, true}, b{"b", {16}, DataType::kFloat, true};
  In z{"z", {2, 16, 9, 11}};
  AttributeMap clip = {{"activation", Attribute::FromString("Clip")}, {"activation_min", Attribute::FromFloat(0.f)},
                       {"activation_max", Attribute::FromFloat(6.f)}, {"pads", Attribute::FromInts({1, 1, 1, 1})}};
  RunCase({"FusedConv", {x, w, b}, clip, 1, 17, "kiln"}, 1e-4, 1e-4);
  for (const char* act : {"Sigmoid", "Swish"}) {
    AttributeMap a = {{"activation", Attribute::FromString(act)}, {"pads", Attribute::FromInts({1, 1, 1, 1})}};
    RunCase({"FusedConv", {x, w, b}, a, 1, 17, "kiln"}, 1e-4, 1e-4);
    RunCase({"FusedConv", {x, w, b, z}, a, 1, 17, "kiln"}, 1e-4, 1e-4);
  }
}

// Channels-last forms (passes/layout_nhwc.cc): X/Z/Y [N,H,W,C], W [K,R,S,C/g].
TEST(GpuOps, ChannelsLast) {
  const AttributeMap relu = {{"activation", Attribute::FromString("Relu")}, {"pads", Attribute::FromInts({1, 1, 1, 1})}};
  In x{"x", {2, 9, 11, 8}}, w{"w", {16, 3, 3, 8}, DataType::kFloat, true}, b{"b", {16}, DataType::kFloat, true};
  In z{"z", {2, 9, 11, 16}}, none{""};
  RunCase({"FusedConvNhwc", {x, w, b, z}, relu, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedConvNhwc", {x, w}, relu, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedConvNhwc", {x, w, none, z}, {{"activation", Attribute::FromString("")}, {"pads", Attribute::FromInts({1, 1, 1, 1})}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  // Depthwise, strided, odd channel counts (3 input channels as resnet's stem).
  RunCase({"FusedConvNhwc", {{"x", {1, 9, 9, 6}}, {"w", {6, 3, 3, 1}, DataType::kFloat, true}, {"b", {6}, DataType::kFloat, true}},
           {{"activation", Attribute::FromString("Relu")}, {"group", Attribute::FromInt(6)}, {"pads", Attribute::FromInts({1, 1, 1, 1})}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedConvNhwc", {{"x", {2, 15, 15, 3}}, {"w", {8, 7, 7, 3}, DataType::kFloat, true}, {"b", {8}, DataType::kFloat, true}},
           {{"activation", Attribute::FromString("Relu")}, {"strides", Attribute::FromInts({2, 2})}, {"pads", Attribute::FromInts({3, 3, 3, 3})}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  In xh{"x", {2, 9, 11, 8}, DataType::kFloat16}, wh{"w", {16, 3, 3, 8}, DataType::kFloat16, true};
  In bh{"b", {16}, DataType::kFloat16, true}, zh{"z", {2, 9, 11, 16}, DataType::kFloat16};
  RunCase({"FusedConvNhwc", {xh, wh, bh, zh}, relu, 1, 17, "kiln"}, 1e-2, 2e-2);
  RunCase({"FusedConvNhwc", {{"x", {2, 16, 16, 1}, DataType::kFloat16}, {"w", {64, 5, 5, 1}, DataType::kFloat16, true},
                             {"b", {64}, DataType::kFloat16, true}},
           {{"activation", Attribute::FromString("Relu")}, {"pads", Attribute::FromInts({2, 2, 2, 2})}}, 1, 17, "kiln"}, 1e-2, 2e-2);
  // 1x1 stride 1: one cuBLASLt product (bias/ReLU epilogue, Z through beta).
  In x1{"x", {2, 7, 9, 24}}, w1{"w", {40, 1, 1, 24}, DataType::kFloat, true}, b1{"b", {40}, DataType::kFloat, true};
  In z1{"z", {2, 7, 9, 40}};
  RunCase({"FusedConvNhwc", {x1, w1, b1, z1}, {{"activation", Attribute::FromString("Relu")}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedConvNhwc", {x1, w1, b1}, {{"activation", Attribute::FromString("Swish")}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedConvNhwc", {x1, w1, none, z1}, {{"activation", Attribute::FromString("")}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedConvNhwc", {{"x", {2, 7, 9, 32}, DataType::kFloat16}, {"w", {16, 1, 1, 32}, DataType::kFloat16, true},
                             {"b", {16}, DataType::kFloat16, true}, {"z", {2, 7, 9, 16}, DataType::kFloat16}},
           {{"activation", Attribute::FromString("Relu")}}, 1, 17, "kiln"}, 1e-2, 2e-2);
  // Depthwise: our own kernel (16-byte channel vectors when C allows), every epilogue.
  AttributeMap dw5 = {{"activation", Attribute::FromString("Swish")}, {"group", Attribute::FromInt(32)},
                      {"strides", Attribute::FromInts({2, 2})}, {"pads", Attribute::FromInts({2, 2, 2, 2})}};
  RunCase({"FusedConvNhwc", {{"x", {2, 15, 15, 32}}, {"w", {32, 5, 5, 1}, DataType::kFloat, true}, {"b", {32}, DataType::kFloat, true}},
           dw5, 1, 17, "kiln"}, 1e-4, 1e-4);
  AttributeMap dw3 = {{"activation", Attribute::FromString("Clip")}, {"activation_min", Attribute::FromFloat(0.f)},
                      {"activation_max", Attribute::FromFloat(6.f)}, {"group", Attribute::FromInt(16)},
                      {"pads", Attribute::FromInts({1, 1, 1, 1})}, {"dilations", Attribute::FromInts({1, 1})}};
  RunCase({"FusedConvNhwc", {{"x", {2, 14, 13, 16}, DataType::kFloat16}, {"w", {16, 3, 3, 1}, DataType::kFloat16, true},
                             {"b", {16}, DataType::kFloat16, true}, {"z", {2, 14, 13, 16}, DataType::kFloat16}},
           dw3, 1, 17, "kiln"}, 1e-2, 2e-2);
  RunCase({"FusedConvNhwc", {{"x", {1, 7, 9, 5}}, {"w", {5, 3, 3, 1}, DataType::kFloat, true}},
           {{"activation", Attribute::FromString("Sigmoid")}, {"group", Attribute::FromInt(5)}, {"dilations", Attribute::FromInts({2, 2})},
            {"pads", Attribute::FromInts({2, 2, 2, 2})}}, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"PoolNhwc", {{"x", {2, 9, 11, 5}}}, {{"pool", Attribute::FromString("MaxPool")},
           {"kernel_shape", Attribute::FromInts({3, 3})}, {"strides", Attribute::FromInts({2, 2})}, {"pads", Attribute::FromInts({1, 1, 1, 1})}}, 1, 17, "kiln"});
  RunCase({"PoolNhwc", {{"x", {2, 7, 7, 24}}}, {{"pool", Attribute::FromString("GlobalAveragePool")}}, 1, 17, "kiln"});
  RunCase({"PoolNhwc", {{"x", {1, 8, 8, 3}}}, {{"pool", Attribute::FromString("AveragePool")},
           {"kernel_shape", Attribute::FromInts({2, 2})}, {"strides", Attribute::FromInts({2, 2})}}, 1, 17, "kiln"});
}

// kiln.FusedMatMul = act(A·B + bias): cuBLASLt BIAS / RELU_BIAS / RELU epilogues.
TEST(GpuOps, FusedMatMul) {
  const AttributeMap relu = {{"activation", Attribute::FromString("Relu")}};
  const AttributeMap ident = {{"activation", Attribute::FromString("")}};
  In a{"a", {3, 7, 16}}, b{"b", {16, 10}, DataType::kFloat, true}, bias{"bias", {10}, DataType::kFloat, true};
  RunCase({"FusedMatMul", {a, b, bias}, relu, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedMatMul", {a, b, bias}, ident, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedMatMul", {a, b}, relu, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedMatMul", {a, b, bias, {"z", {3, 7, 10}}}, relu, 1, 17, "kiln"}, 1e-4, 1e-4);  // residual
  RunCase({"FusedMatMul", {a, b, bias, {"z", {3, 7, 10}}}, ident, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedMatMul", {{"a", {17, 33}}, {"b", {33, 65}, DataType::kFloat, true}, {"bias", {65}, DataType::kFloat, true}},
           relu, 1, 17, "kiln"}, 1e-4, 1e-4);
  RunCase({"FusedMatMul", {{"a", {2, 9, 64}, DataType::kFloat16}, {"b", {64, 48}, DataType::kFloat16, true},
                           {"bias", {48}, DataType::kFloat16, true}},
           relu, 1, 17, "kiln"}, 1e-2, 3e-2);
}

// Residual block relu(conv2(relu(conv1(x))) + x), a bias-free conv + Add, an
// MLP layer: for the build pipeline (simplifier + fuse_gpu [+ fp16]).
std::unique_ptr<Model> MakeFusionModel(std::mt19937& rng) {
  auto m = std::make_unique<Model>();
  m->ir_version = 8;
  m->opsets[""] = 17;
  m->graph = std::make_shared<Graph>();
  Graph& g = *m->graph;
  auto input = [&](const std::string& name, std::vector<int64_t> dims) {
    Value* v = g.AddValue(name);
    v->type = TypeInfo::Tensor(DataType::kFloat, Shape::Of(dims));
    g.inputs.push_back(v);
    return v;
  };
  // Weights scaled by 1/sqrt(fan_in) so activations stay O(1) (FP16 tolerances stay meaningful).
  auto constant = [&](const std::string& name, std::vector<int64_t> dims) {
    Value* v = g.AddValue(name);
    Tensor t = Random({name, dims}, rng);
    int64_t fan_in = 1;
    for (size_t i = 1; i < dims.size(); ++i) fan_in *= dims[i];
    if (name == "wm") fan_in = dims[0];
    for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] /= std::sqrt(static_cast<float>(fan_in));
    v->data = t;
    v->type = TypeInfo::Tensor(DataType::kFloat, Shape::Of(dims));
    g.initializers.push_back(v);
    return v;
  };
  auto op = [&](const std::string& type, const std::string& name, std::vector<Value*> ins, AttributeMap attrs = {}) {
    Node* n = g.AddNode(type, name);
    for (Value* v : ins) n->AddInput(v);
    n->attrs = std::move(attrs);
    Value* y = g.AddValue(name);
    n->AddOutput(y);
    return y;
  };
  // Residual block: relu(conv2(relu(conv1(x))) + x), then a bias-only conv+add, then an MLP.
  Value* x = input("x", {2, 8, 12, 12});
  Value* c1 = op("Conv", "conv1", {x, constant("w1", {8, 8, 3, 3}), constant("b1", {8})}, {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  Value* r1 = op("Relu", "relu1", {c1});
  Value* c2 = op("Conv", "conv2", {r1, constant("w2", {8, 8, 3, 3})}, {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  Value* r2 = op("Relu", "relu2", {op("Add", "add2", {c2, x})});
  Value* c3 = op("Conv", "conv3", {r2, constant("w3", {8, 8, 1, 1})});
  Value* a3 = op("Add", "add3", {x, c3});
  Value* f = op("Reshape", "flat", {a3, [&] {
                  Value* v = g.AddValue("shape");
                  v->data = Tensor::FromVector<int64_t>(DataType::kInt64, {3}, {2, 8, 144});
                  v->type = TypeInfo::Tensor(DataType::kInt64, Shape::Of({3}));
                  g.initializers.push_back(v);
                  return v;
                }()});
  Value* h = op("Relu", "mlp_relu", {op("Add", "mlp_bias", {constant("bm", {32}), op("MatMul", "mlp", {f, constant("wm", {144, 32})})})});
  g.outputs.push_back(h);
  return m;
}

// Runs without a GPU: what the builder's passes make of the model.
TEST(GpuBuildPasses, FusesTheModel) {
  std::mt19937 rng(42);
  std::unique_ptr<Model> m = MakeFusionModel(rng);
  ASSERT_TRUE(InferShapes(*m).ok());
  std::vector<std::string> notes;
  Status s = cuda::RunBuildPasses(*m, BuildOptions{}, &notes);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::vector<std::string> ops;
  for (const Node* n : m->graph->nodes()) ops.push_back(n->op_type + "/" + n->name);
  EXPECT_EQ(ops, (std::vector<std::string>{"FusedConv/conv1", "FusedConv/conv2", "FusedConv/conv3", "Reshape/flat",
                                           "FusedMatMul/mlp"}));
  EXPECT_EQ(m->graph->outputs[0]->name(), "mlp_relu");
}

// The engine must fuse (kernel count) and match the unfused reference.
void RunFusionModel(bool fp16) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  std::mt19937 rng(42);
  std::unique_ptr<Model> m = MakeFusionModel(rng);
  std::map<std::string, RtValue> cpu_inputs;
  std::map<std::string, Tensor> gpu_inputs;
  Tensor xt = Random({"x", {2, 8, 12, 12}}, rng);
  cpu_inputs["x"] = RtValue::FromTensor(xt);
  gpu_inputs["x"] = xt;
  std::unique_ptr<Model> gm = CloneModel(*m);
  ASSERT_TRUE(InferShapes(*m).ok());
  auto want = ReferenceExecutor(*m).Run(cpu_inputs);
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  BuildOptions opts;
  opts.fp16 = fp16;
  BuildReport report;
  auto engine = cuda::BuildEngine(std::move(gm), opts, &report);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  // conv1+relu1, conv2+add2+relu2, conv3+add3, mlp+bias+relu; FP16 adds the
  // input/output casts and, with the convs in NHWC, a Transpose in and one out.
  EXPECT_EQ(report.num_kernels, fp16 ? 8u : 4u);
  auto runner = cuda::HostRunner::Create(*engine);
  ASSERT_TRUE(runner.ok()) << runner.status().ToString();
  ASSERT_TRUE((*runner)->SetInputs(gpu_inputs).ok());
  const double rtol = fp16 ? 2e-2 : 1e-4, atol = fp16 ? 5e-2 : 1e-4;
  for (int rep = 0; rep < 3; ++rep) {
    Status s = (*runner)->Run();
    ASSERT_TRUE(s.ok()) << s.ToString();
    auto got = (*runner)->Outputs();
    ASSERT_TRUE(got.ok());
    Status close = ExpectClose("mlp_relu run " + std::to_string(rep), (*want)[0].tensor, got->at("mlp_relu"),
                               Tol(rtol, atol));
    ASSERT_TRUE(close.ok()) << close.message();
  }
}

TEST(GpuOps, FusionPipelineFp32) { RunFusionModel(false); }
TEST(GpuOps, FusionPipelineFp16) { RunFusionModel(true); }

// Every op again through the FP16 build (casts at the edges, FP16 inside).
TEST(GpuOps, Fp16Builds) {
  auto fp16 = [](Case c) {
    c.fp16 = true;
    RunCase(c, 2e-2, 3e-2);
  };
  fp16({"Conv", {{"x", {1, 6, 9, 9}}, {"w", {6, 1, 3, 3}, DataType::kFloat, true}, {"b", {6}, DataType::kFloat, true}},
        {{"group", Attribute::FromInt(6)}, {"pads", Attribute::FromInts({1, 1, 1, 1})}}});
  fp16({"Conv", {{"x", {2, 32, 14, 14}}, {"w", {32, 1, 3, 3}, DataType::kFloat, true}},
        {{"group", Attribute::FromInt(32)}, {"strides", Attribute::FromInts({2, 2})}, {"pads", Attribute::FromInts({1, 1, 1, 1})}}});
  fp16({"Conv", {{"x", {2, 16, 7, 7}}, {"w", {24, 16, 1, 1}, DataType::kFloat, true}, {"b", {24}, DataType::kFloat, true}}});
  In lo{"lo", {}, DataType::kFloat, true}, hi{"hi", {}, DataType::kFloat, true};
  lo.values = {-0.7f};
  hi.values = {1.1f};
  fp16({"Clip", {{"x", {4, 9}}, lo, hi}});
  fp16({"Sigmoid", {{"x", {3, 17}}}});
  fp16({"Mul", {{"a", {2, 8, 5, 5}}, {"b", {2, 8, 1, 1}}}});
  fp16({"GlobalAveragePool", {{"x", {2, 24, 7, 7}}}});
  fp16({"Gemm", {{"a", {2, 40}}, {"b", {10, 40}, DataType::kFloat, true}, {"c", {10}, DataType::kFloat, true}},
        {{"transB", Attribute::FromInt(1)}}});
  fp16({"MatMul", {{"a", {2, 7, 32}}, {"b", {32, 24}, DataType::kFloat, true}}});
  fp16({"Softmax", {{"x", {3, 7, 33}}}});
  fp16({"LayerNormalization", {{"x", {4, 3, 37}}, {"s", {37}, DataType::kFloat, true}, {"b", {37}, DataType::kFloat, true}}});
}

// kiln.Attention: kiln's kernel (float32; float16 head sizes cuDNN does not
// take) and cuDNN's fused attention (float16, head sizes multiple of 8), both
// layouts, key counts off the 32-key chunks, biases of every broadcast.
TEST(GpuOps, Attention) {
  auto attrs = [](float scale, const char* layout) {
    return AttributeMap{{"scale", Attribute::FromFloat(scale)}, {"layout", Attribute::FromString(layout)}};
  };
  const DataType f16 = DataType::kFloat16;
  RunCase({"Attention", {{"q", {2, 3, 37, 16}}, {"k", {2, 3, 45, 16}}, {"v", {2, 3, 45, 24}}}, attrs(0.25f, "bhsd"),
           1, 17, "kiln"}, 1e-4, 1e-5);
  RunCase({"Attention", {{"q", {37, 6, 20}}, {"k", {45, 6, 20}}, {"v", {45, 6, 70}}, {"bias", {6, 37, 45}}},
           attrs(0.5f, "bshd"), 1, 17, "kiln"}, 1e-4, 1e-5);
  RunCase({"Attention", {{"q", {2, 33, 4, 8}}, {"k", {2, 64, 4, 8}}, {"v", {2, 64, 4, 8}}, {"mask", {2, 1, 1, 64}}},
           attrs(0.35f, "bshd"), 1, 17, "kiln"}, 1e-4, 1e-5);
  RunCase({"Attention", {{"q", {1, 2, 5, 200}}, {"k", {1, 2, 3, 200}}, {"v", {1, 2, 3, 256}}, {"bias", {5, 1}}},
           attrs(0.05f, "bhsd"), 1, 17, "kiln"}, 1e-4, 1e-5);
  RunCase({"Attention", {{"q", {33, 2, 3, 16}}, {"k", {40, 2, 3, 16}}, {"v", {40, 2, 3, 16}}}, attrs(0.25f, "sbhd"),
           1, 17, "kiln"}, 1e-4, 1e-5);
  RunCase({"Attention", {{"q", {77, 2, 12, 64}, f16}, {"k", {77, 2, 12, 64}, f16}, {"v", {77, 2, 12, 64}, f16}},
           attrs(0.125f, "sbhd"), 1, 17, "kiln"}, 1e-2, 1e-2);
  // float16: ViT-B/16's geometry (heads folded into N, seq first), BERT's with its mask, odd head size.
  RunCase({"Attention", {{"q", {197, 24, 64}, f16}, {"k", {197, 24, 64}, f16}, {"v", {197, 24, 64}, f16}},
           attrs(0.125f, "bshd"), 1, 17, "kiln"}, 1e-2, 1e-2);
  RunCase({"Attention", {{"q", {2, 128, 12, 64}, f16}, {"k", {2, 128, 12, 64}, f16}, {"v", {2, 128, 12, 64}, f16},
                         {"mask", {2, 1, 1, 128}, f16}},
           attrs(0.125f, "bshd"), 1, 17, "kiln"}, 1e-2, 1e-2);
  RunCase({"Attention", {{"q", {2, 3, 33, 20}, f16}, {"k", {2, 3, 50, 20}, f16}, {"v", {2, 3, 50, 20}, f16}},
           attrs(0.2f, "bhsd"), 1, 17, "kiln"}, 1e-2, 1e-2);
  RunCase({"Attention", {{"q", {2, 4, 70, 64}, f16}, {"k", {2, 4, 70, 64}, f16}, {"v", {2, 4, 70, 64}, f16}},
           attrs(0.125f, "bhsd"), 1, 17, "kiln"}, 1e-2, 1e-2);
}

TEST(GpuOps, Pool) {
  RunCase({"MaxPool", {{"x", {2, 3, 9, 11}}}, {{"kernel_shape", Attribute::FromInts({3, 3})}, {"strides", Attribute::FromInts({2, 2})}, {"pads", Attribute::FromInts({1, 1, 1, 1})}}});
  RunCase({"AveragePool", {{"x", {1, 2, 8, 8}}}, {{"kernel_shape", Attribute::FromInts({2, 2})}, {"strides", Attribute::FromInts({2, 2})}}});
  RunCase({"GlobalAveragePool", {{"x", {2, 5, 7, 3}}}});
}

TEST(GpuOps, MatMulGemm) {
  RunCase({"MatMul", {{"a", {17, 33}}, {"b", {33, 65}, DataType::kFloat, true}}}, 1e-4, 1e-4);
  RunCase({"MatMul", {{"a", {2, 5, 7, 9}}, {"b", {2, 5, 9, 3}}}}, 1e-4, 1e-4);
  RunCase({"MatMul", {{"a", {3, 7, 16}}, {"b", {16, 10}, DataType::kFloat, true}}}, 1e-4, 1e-4);
  RunCase({"Gemm", {{"a", {6, 20}}, {"b", {12, 20}, DataType::kFloat, true}, {"c", {12}, DataType::kFloat, true}},
           {{"transB", Attribute::FromInt(1)}}}, 1e-4, 1e-4);
  RunCase({"Gemm", {{"a", {20, 6}}, {"b", {20, 12}}, {"c", {6, 12}}}, {{"transA", Attribute::FromInt(1)}, {"alpha", Attribute::FromFloat(0.5f)}, {"beta", Attribute::FromFloat(2.f)}}},
          1e-4, 1e-4);
}

TEST(GpuOps, Movement) {
  RunCase({"Transpose", {{"x", {2, 3, 5, 7}}}, {{"perm", Attribute::FromInts({0, 2, 3, 1})}}});
  In starts{"s", {2}, DataType::kInt64, true, {1, -1}}, ends{"e", {2}, DataType::kInt64, true, {4, -100}};
  In axes{"a", {2}, DataType::kInt64, true, {1, 2}}, steps{"st", {2}, DataType::kInt64, true, {2, -2}};
  RunCase({"Slice", {{"x", {3, 6, 9}}, starts, ends, axes, steps}});
  RunCase({"Concat", {{"a", {2, 3, 4}}, {"b", {2, 5, 4}}}, {{"axis", Attribute::FromInt(1)}}});
  RunCase({"Split", {{"x", {4, 9}}}, {{"axis", Attribute::FromInt(1)}, {"num_outputs", Attribute::FromInt(3)}}, 3, 18});
  RunCase({"Expand", {{"x", {3, 1}}, {"shape", {3}, DataType::kInt64, true, {2, 3, 4}}}});
  RunCase({"DepthToSpace", {{"x", {1, 8, 3, 5}}}, {{"blocksize", Attribute::FromInt(2)}}});
  RunCase({"DepthToSpace", {{"x", {2, 18, 2, 3}}}, {{"blocksize", Attribute::FromInt(3)}, {"mode", Attribute::FromString("CRD")}}});
  RunCase({"SpaceToDepth", {{"x", {1, 3, 4, 6}}}, {{"blocksize", Attribute::FromInt(2)}}});
  RunCase({"Pad", {{"x", {2, 3}}, {"p", {4}, DataType::kInt64, true, {1, 0, 2, 3}}}});
  RunCase({"Gather", {{"x", {5, 4, 3}}, {"i", {2, 2}, DataType::kInt64, true, {0, 3, -1, 2}}}, {{"axis", Attribute::FromInt(1)}}});

  // The copy kernel's paths: 16/8/4-byte words (inner dims contiguous on both
  // sides), the tiled transpose (last dim moves), element-wise fallbacks (odd
  // sizes and offsets); each in FP32 and through the FP16 build.
  auto both = [](Case c) {
    RunCase(c);
    c.fp16 = true;
    RunCase(c, 2e-2, 3e-2);
  };
  auto perm = [](std::vector<int64_t> p) { return AttributeMap{{"perm", Attribute::FromInts(p)}}; };
  both({"Transpose", {{"x", {4, 197, 3, 12, 64}}}, perm({2, 0, 3, 1, 4})});  // ViT qkv split: 256-byte rows
  both({"Transpose", {{"x", {2, 37, 65}}}, perm({0, 2, 1})});                // tiled, partial tiles
  both({"Transpose", {{"x", {2, 24, 13, 17}}}, perm({0, 2, 3, 1})});         // NCHW→NHWC: tiled over C × HW
  both({"Transpose", {{"x", {40, 3, 48}}}, perm({2, 1, 0})});                // tiled, batch dim in the middle
  both({"Transpose", {{"x", {6, 5, 3}}}, perm({1, 0, 2})});                  // odd inner: element-wise
  both({"Concat", {{"a", {2, 3, 5}}, {"b", {2, 3, 7}}}, {{"axis", Attribute::FromInt(2)}}});     // odd: element-wise
  both({"Concat", {{"a", {2, 3, 8}}, {"b", {2, 3, 16}}}, {{"axis", Attribute::FromInt(2)}}});    // 16-byte words
  both({"Concat", {{"a", {3, 2, 6}}, {"b", {3, 1, 6}}}, {{"axis", Attribute::FromInt(1)}}});     // 8-byte words (fp32)
  In s7{"s", {1}, DataType::kInt64, true, {1}}, e7{"e", {1}, DataType::kInt64, true, {8}}, a2{"a", {1}, DataType::kInt64, true, {2}};
  both({"Slice", {{"x", {3, 6, 9}}, s7, e7, a2}});  // 7 of 9 from offset 1: element-wise
  In s8{"s", {1}, DataType::kInt64, true, {4}}, e8{"e", {1}, DataType::kInt64, true, {12}};
  both({"Slice", {{"x", {4, 6, 16}}, s8, e8, a2}});  // 8 of 16 from offset 4: 16/8-byte words
  both({"Split", {{"x", {3, 16}}}, {{"axis", Attribute::FromInt(1)}, {"num_outputs", Attribute::FromInt(2)}}, 2, 18});
  both({"Expand", {{"x", {3, 1, 8}}, {"shape", {3}, DataType::kInt64, true, {3, 5, 8}}}});

  // Gather: words when inner·elem allows (inner 8, 24, 16), else elements (inner 3, 1, 5).
  both({"Gather", {{"x", {5, 6, 8}}, {"i", {3}, DataType::kInt64, true, {0, 5, -1}}}, {{"axis", Attribute::FromInt(1)}}});
  both({"Gather", {{"x", {7, 24}}, {"i", {2, 2}, DataType::kInt64, true, {6, 0, -2, 3}}}});
  both({"Gather", {{"x", {3, 197, 16}}, {"i", {}, DataType::kInt64, true, {0}}}, {{"axis", Attribute::FromInt(1)}}});  // class token
  both({"Gather", {{"x", {1, 7, 2, 3, 16}}, {"i", {}, DataType::kInt64, true, {2}}}, {{"axis", Attribute::FromInt(3)}}});  // Q/K/V split (gather_transpose)
  both({"Gather", {{"x", {9, 5}}, {"i", {4}, DataType::kInt64, true, {4, 1, 1, -5}}}, {{"axis", Attribute::FromInt(1)}}});
  both({"Gather", {{"x", {4, 7, 5}}, {"i", {2}, DataType::kInt64, true, {3, -7}}}, {{"axis", Attribute::FromInt(1)}}});
}

// GatherND: index tuples (k = 1, 2, 3), batch_dims, negative indices, int32 indices.
TEST(GpuOps, GatherND) {
  RunCase({"GatherND", {{"x", {5, 4, 3}}, {"i", {2, 2}, DataType::kInt64, true, {0, 1, 4, 3}}}, {}, 1, 13});
  RunCase({"GatherND", {{"x", {5, 4, 3}}, {"i", {3, 1}, DataType::kInt64, true, {4, -1, 2}}}, {}, 1, 13});
  RunCase({"GatherND", {{"x", {5, 4, 3}}, {"i", {2, 1, 3}, DataType::kInt64, true, {0, 1, 2, 4, 3, -3}}}, {}, 1, 13});
  RunCase({"GatherND", {{"x", {2, 3, 4}}, {"i", {2, 2, 1}, DataType::kInt64, true, {2, 0, 1, -1}}},
           {{"batch_dims", Attribute::FromInt(1)}}, 1, 13});
  RunCase({"GatherND", {{"x", {2, 3, 4, 5}, DataType::kFloat16}, {"i", {2, 3, 2}, DataType::kInt64, true,
                                                                   {0, 1, 2, 3, 1, -4, 0, 0, 2, 2, 1, 1}}},
           {{"batch_dims", Attribute::FromInt(1)}}, 1, 13});
}

TEST(GpuOps, Normalization) {
  RunCase({"Softmax", {{"x", {3, 7, 33}}}});
  RunCase({"Softmax", {{"x", {2, 5, 3}}}, {{"axis", Attribute::FromInt(1)}}});
  RunCase({"LayerNormalization", {{"x", {4, 3, 37}}, {"s", {37}, DataType::kFloat, true}, {"b", {37}, DataType::kFloat, true}}});

  // Softmax / LogSoftmax paths: warp per row (scalar loads: 197, 33; 16-byte
  // loads: 64, 1000, 1024), block per row (2500, and inner != 1); FP32 and the FP16 build.
  auto both = [](Case c, double rtol, double atol) {
    RunCase(c, rtol, atol);
    c.fp16 = true;
    RunCase(c, 2e-2, 3e-2);
  };
  const AttributeMap axis1 = {{"axis", Attribute::FromInt(1)}};
  for (const char* op : {"Softmax", "LogSoftmax"}) {
    both({op, {{"x", {5, 197}}}}, 1e-4, 1e-5);
    both({op, {{"x", {6, 64}}}}, 1e-4, 1e-5);
    both({op, {{"x", {3, 7, 1000}}}}, 1e-4, 1e-5);
    both({op, {{"x", {2, 1024}}}}, 1e-4, 1e-5);
    both({op, {{"x", {2, 3, 2500}}}}, 1e-4, 1e-5);
    both({op, {{"x", {3, 197, 4}}}, axis1}, 1e-4, 1e-5);
    both({op, {{"x", {2, 3, 40}}}, axis1, 1, 11}, 1e-4, 1e-5);  // opset 11: rows of 3·40
  }
  // LayerNorm: warp per row (768 and 100 in 16-byte loads, 197 scalar, no bias), block per row (2000).
  auto layer_norm = [&](std::vector<int64_t> dims, bool bias) {
    int64_t len = dims.back();
    Case c{"LayerNormalization", {{"x", dims}, {"s", {len}, DataType::kFloat, true}}};
    if (bias) c.inputs.push_back({"b", {len}, DataType::kFloat, true});
    both(c, 1e-4, 1e-4);
  };
  layer_norm({2, 5, 768}, true);
  layer_norm({4, 100}, false);
  layer_norm({3, 197}, true);
  layer_norm({3, 2000}, true);
  RunCase({"ReduceMean", {{"x", {3, 5, 7}}}, {{"axes", Attribute::FromInts({1})}}, 1, 13});
  RunCase({"BatchNormalization", {{"x", {2, 4, 5, 3}}, {"s", {4}, DataType::kFloat, true}, {"b", {4}, DataType::kFloat, true},
                                  {"m", {4}, DataType::kFloat, true}, {"v", {4}, DataType::kFloat, true, {}, true}}});
}

}  // namespace
}  // namespace kiln
