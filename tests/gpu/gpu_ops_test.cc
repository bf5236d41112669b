// Every CUDA op against the CPU reference on random inputs: odd sizes,
// broadcasting, tile-unfriendly shapes. Single-op models are built in memory,
// run by the ReferenceExecutor (the oracle) and by a CUDA engine; outputs must
// agree within per-dtype tolerances. Skipped (not failed) without a GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ir/clone.h"
#include "passes/shape_inference.h"
#include "reference/executor.h"
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
};

struct Case {
  std::string op;
  std::vector<In> inputs;
  AttributeMap attrs;
  int outputs = 1;
  int64_t opset = 17;
};

Attribute Ints(std::vector<int64_t> v) {
  Attribute a;
  a.type = Attribute::Type::kInts;
  a.ints = std::move(v);
  return a;
}
Attribute Int(int64_t v) {
  Attribute a;
  a.type = Attribute::Type::kInt;
  a.i = v;
  return a;
}
Attribute Float(float v) {
  Attribute a;
  a.type = Attribute::Type::kFloat;
  a.f = v;
  return a;
}
Attribute Str(std::string v) {
  Attribute a;
  a.type = Attribute::Type::kString;
  a.s = std::move(v);
  return a;
}

Tensor Random(const In& in, std::mt19937& rng) {
  if (!in.int_values.empty()) return Tensor::FromVector<int64_t>(DataType::kInt64, in.dims, in.int_values);
  Tensor t(in.dtype, in.dims);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (in.dtype == DataType::kFloat) t.mutable_data<float>()[i] = in.positive ? 0.1f + std::fabs(u(rng)) : u(rng);
    else if (in.dtype == DataType::kFloat16) t.mutable_data<Half>()[i] = Half(u(rng));
    else if (in.dtype == DataType::kBool) t.mutable_data<bool>()[i] = rng() & 1;
    else if (in.dtype == DataType::kInt64) t.mutable_data<int64_t>()[i] = static_cast<int64_t>(rng() % 5);
  }
  return t;
}

void RunCase(const Case& c, double rtol = 1e-4, double atol = 1e-5) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  SCOPED_TRACE(c.op);
  std::mt19937 rng(1234);
  auto m = std::make_unique<Model>();
  m->ir_version = 8;
  m->opsets[""] = c.opset;
  m->graph = std::make_shared<Graph>();
  Graph& g = *m->graph;
  Node* n = g.AddNode(c.op, "node0");
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

  auto engine = cuda::BuildEngine(std::move(gm), BuildOptions{}, nullptr);
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
      ASSERT_EQ(o.dims(), w.dims()) << "output " << i;
      ASSERT_EQ(o.dtype(), w.dtype());
      for (int64_t k = 0; k < w.numel(); ++k) {
        double a = o.ScalarAt(k), b = w.ScalarAt(k);
        ASSERT_LE(std::fabs(a - b), atol + rtol * std::fabs(b)) << "output " << i << " element " << k << " run " << rep;
      }
    }
  }
}

TEST(GpuOps, Unary) {
  for (const char* op : {"Relu", "Sigmoid", "Tanh", "Exp", "Erf", "Neg", "Abs", "Softplus", "HardSwish", "Floor",
                         "LeakyRelu", "Elu", "Sin"})
    RunCase({op, {{"x", {3, 5, 7}}}});
  RunCase({"Gelu", {{"x", {2, 33}}}, {{"approximate", Str("tanh")}}, 1, 20});
  RunCase({"Clip", {{"x", {4, 9}}, {"lo", {}, DataType::kFloat, true}, {"hi", {}, DataType::kFloat, true}}});
}

TEST(GpuOps, BinaryBroadcast) {
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Max", "Min"}) {
    RunCase({op, {{"a", {2, 3, 5}}, {"b", {5}}}});
    RunCase({op, {{"a", {2, 1, 5}}, {"b", {3, 1}}}});
    RunCase({op, {{"a", {7, 13}}, {"b", {7, 13}}}});
  }
  RunCase({"Greater", {{"a", {4, 6}}, {"b", {6}}}});
  RunCase({"Where", {{"c", {3, 1}, DataType::kBool}, {"x", {3, 4}}, {"y", {4}}}});
}

TEST(GpuOps, Cast) {
  Case c{"Cast", {{"x", {5, 7}}}, {{"to", Int(static_cast<int64_t>(DataType::kFloat16))}}};
  RunCase(c, 1e-3, 1e-3);
  RunCase({"Cast", {{"x", {9}, DataType::kInt64}}, {{"to", Int(1)}}});
}

TEST(GpuOps, Conv) {
  RunCase({"Conv", {{"x", {2, 3, 11, 13}}, {"w", {8, 3, 3, 3}, DataType::kFloat, true}, {"b", {8}, DataType::kFloat, true}},
           {{"pads", Ints({1, 1, 1, 1})}, {"strides", Ints({2, 2})}}}, 1e-4, 1e-4);
  RunCase({"Conv", {{"x", {1, 6, 9, 9}}, {"w", {6, 1, 3, 3}, DataType::kFloat, true}},
           {{"group", Int(6)}, {"dilations", Ints({2, 2})}, {"pads", Ints({2, 2, 2, 2})}}}, 1e-4, 1e-4);
  RunCase({"Conv", {{"x", {1, 4, 17}}, {"w", {5, 4, 3}, DataType::kFloat, true}}, {{"auto_pad", Str("SAME_UPPER")}}},
          1e-4, 1e-4);
}

TEST(GpuOps, Pool) {
  RunCase({"MaxPool", {{"x", {2, 3, 9, 11}}}, {{"kernel_shape", Ints({3, 3})}, {"strides", Ints({2, 2})}, {"pads", Ints({1, 1, 1, 1})}}});
  RunCase({"AveragePool", {{"x", {1, 2, 8, 8}}}, {{"kernel_shape", Ints({2, 2})}, {"strides", Ints({2, 2})}}});
  RunCase({"GlobalAveragePool", {{"x", {2, 5, 7, 3}}}});
}

TEST(GpuOps, MatMulGemm) {
  RunCase({"MatMul", {{"a", {17, 33}}, {"b", {33, 65}, DataType::kFloat, true}}}, 1e-4, 1e-4);
  RunCase({"MatMul", {{"a", {2, 5, 7, 9}}, {"b", {2, 5, 9, 3}}}}, 1e-4, 1e-4);
  RunCase({"MatMul", {{"a", {3, 7, 16}}, {"b", {16, 10}, DataType::kFloat, true}}}, 1e-4, 1e-4);
  RunCase({"Gemm", {{"a", {6, 20}}, {"b", {12, 20}, DataType::kFloat, true}, {"c", {12}, DataType::kFloat, true}},
           {{"transB", Int(1)}}}, 1e-4, 1e-4);
  RunCase({"Gemm", {{"a", {20, 6}}, {"b", {20, 12}}, {"c", {6, 12}}}, {{"transA", Int(1)}, {"alpha", Float(0.5f)}, {"beta", Float(2.f)}}},
          1e-4, 1e-4);
}

TEST(GpuOps, Movement) {
  RunCase({"Transpose", {{"x", {2, 3, 5, 7}}}, {{"perm", Ints({0, 2, 3, 1})}}});
  In starts{"s", {2}, DataType::kInt64, true, {1, -1}}, ends{"e", {2}, DataType::kInt64, true, {4, -100}};
  In axes{"a", {2}, DataType::kInt64, true, {1, 2}}, steps{"st", {2}, DataType::kInt64, true, {2, -2}};
  RunCase({"Slice", {{"x", {3, 6, 9}}, starts, ends, axes, steps}});
  RunCase({"Concat", {{"a", {2, 3, 4}}, {"b", {2, 5, 4}}}, {{"axis", Int(1)}}});
  RunCase({"Split", {{"x", {4, 9}}}, {{"axis", Int(1)}, {"num_outputs", Int(3)}}, 3, 18});
  RunCase({"Expand", {{"x", {3, 1}}, {"shape", {3}, DataType::kInt64, true, {2, 3, 4}}}});
  RunCase({"DepthToSpace", {{"x", {1, 8, 3, 5}}}, {{"blocksize", Int(2)}}});
  RunCase({"DepthToSpace", {{"x", {2, 18, 2, 3}}}, {{"blocksize", Int(3)}, {"mode", Str("CRD")}}});
  RunCase({"SpaceToDepth", {{"x", {1, 3, 4, 6}}}, {{"blocksize", Int(2)}}});
  RunCase({"Pad", {{"x", {2, 3}}, {"p", {4}, DataType::kInt64, true, {1, 0, 2, 3}}}});
  RunCase({"Gather", {{"x", {5, 4, 3}}, {"i", {2, 2}, DataType::kInt64, true, {0, 3, -1, 2}}}, {{"axis", Int(1)}}});
}

TEST(GpuOps, Normalization) {
  RunCase({"Softmax", {{"x", {3, 7, 33}}}});
  RunCase({"Softmax", {{"x", {2, 5, 3}}}, {{"axis", Int(1)}}});
  RunCase({"LayerNormalization", {{"x", {4, 3, 37}}, {"s", {37}, DataType::kFloat, true}, {"b", {37}, DataType::kFloat, true}}});
  RunCase({"ReduceMean", {{"x", {3, 5, 7}}}, {{"axes", Ints({1})}}, 1, 13});
  RunCase({"BatchNormalization", {{"x", {2, 4, 5, 3}}, {"s", {4}, DataType::kFloat, true}, {"b", {4}, DataType::kFloat, true},
                                  {"m", {4}, DataType::kFloat, true}, {"v", {4}, DataType::kFloat, true, {}, true}}});
}

}  // namespace
}  // namespace kiln
