// Test helpers for the GPU build passes (fuse_gpu, layout_nhwc): a small model
// builder with random constant weights, and a check that a pass leaves the
// model verifier-clean and computing what it computed before on the CPU
// reference (random inputs; symbolic dims bound to `sym`).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "build/build_passes.h"
#include "fixtures.h"
#include "ir/clone.h"
#include "ir/graph.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "onnx/import.h"
#include "passes/pass.h"
#include "passes/pipeline.h"
#include "passes/shape_inference.h"
#include "reference/compare.h"
#include "reference/executor.h"

namespace kiln {
namespace testing_build {

inline Tensor RandomTensor(DataType dt, const std::vector<int64_t>& dims, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  Tensor t(dt, dims);
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (dt == DataType::kFloat)
      t.mutable_data<float>()[i] = u(rng);
    else if (dt == DataType::kFloat16)
      t.mutable_data<Half>()[i] = Half(u(rng));
    else if (dt == DataType::kDouble)
      t.mutable_data<double>()[i] = u(rng);
  }
  return t;
}

// Builds small models by hand; node outputs are named after their node.
class GraphBuilder {
 public:
  explicit GraphBuilder(DataType dt = DataType::kFloat) : dt_(dt), m_(std::make_unique<Model>()), rng_(7) {
    m_->ir_version = 8;
    m_->opsets[""] = 17;
    m_->graph = std::make_shared<Graph>();
    m_->graph->name = "main";
  }
  Value* Input(const std::string& name, Shape shape) {
    Value* v = g().AddValue(name);
    v->type = TypeInfo::Tensor(dt_, std::move(shape));
    g().inputs.push_back(v);
    return v;
  }
  Value* Const(const std::string& name, std::vector<int64_t> dims) {
    return Fixed(name, RandomTensor(dt_, dims, rng_));
  }
  // A constant of the builder's type holding `value` (shape `dims`, default scalar).
  Value* Scalar(const std::string& name, double value, std::vector<int64_t> dims = {}) {
    Tensor t(dt_, dims);
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (dt_ == DataType::kFloat)
        t.mutable_data<float>()[i] = static_cast<float>(value);
      else if (dt_ == DataType::kFloat16)
        t.mutable_data<Half>()[i] = Half(static_cast<float>(value));
      else if (dt_ == DataType::kDouble)
        t.mutable_data<double>()[i] = value;
    }
    return Fixed(name, std::move(t));
  }
  // A constant holding `t` (any type and contents).
  Value* Fixed(const std::string& name, Tensor t) {
    Value* v = g().AddValue(name);
    v->type = TypeInfo::Tensor(t.dtype(), t.shape());
    v->data = std::move(t);
    g().initializers.push_back(v);
    return v;
  }
  // A 1-D int64 constant (shapes, axes, pads).
  Value* Int64s(const std::string& name, const std::vector<int64_t>& values) {
    return Fixed(name, Tensor::Int64s(values));
  }

  void Opset(int64_t version) { m_->opsets[""] = version; }
  Value* Op(const std::string& op, const std::string& name, std::vector<Value*> inputs, AttributeMap attrs = {},
            const std::string& domain = "") {
    Node* n = g().AddNode(op, name, domain);
    for (Value* v : inputs) n->AddInput(v);
    n->attrs = std::move(attrs);
    Value* y = g().AddValue(name);
    n->AddOutput(y);
    if (!domain.empty()) m_->opsets[domain] = 1;
    return y;
  }
  void Output(Value* v) { g().outputs.push_back(v); }
  // Shape inference, then hands the model over.
  std::unique_ptr<Model> Done() {
    Status s = InferShapes(*m_);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return std::move(m_);
  }
  // Hands the model over without shape inference (for models it must reject).
  std::unique_ptr<Model> Release() { return std::move(m_); }

 private:
  Graph& g() { return *m_->graph; }
  DataType dt_;
  std::unique_ptr<Model> m_;
  std::mt19937 rng_;
};

// m through ONNX bytes and back (SerializeModel, ParseModel, shape inference) prints the same graph;
// returns the parsed model (nullptr, with a failure recorded, when a step fails).
inline std::unique_ptr<Model> ExpectOnnxRoundTrip(const Model& m) {
  auto bytes = SerializeModel(m);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  if (!bytes.ok()) return nullptr;
  auto back = ParseModel(bytes->data(), bytes->size(), "");
  EXPECT_TRUE(back.ok()) << back.status().ToString();
  if (!back.ok()) return nullptr;
  Status shapes = InferShapes(**back);
  EXPECT_TRUE(shapes.ok()) << shapes.ToString();
  if (!shapes.ok()) return nullptr;
  EXPECT_EQ(PrintGraph(**back), PrintGraph(m));
  return std::move(*back);
}

// Random inputs for the model's graph inputs (symbolic dims set to `sym`).
inline std::map<std::string, RtValue> RandomFeed(const Model& m, int64_t sym) {
  std::mt19937 rng(99);
  std::map<std::string, RtValue> feed;
  for (const Value* in : m.graph->inputs) {
    if (in->data) continue;
    std::vector<int64_t> dims;
    for (const Dim& d : in->shape().dims()) dims.push_back(d.known() ? d.value() : sym);
    feed[in->name()] = RtValue::FromTensor(RandomTensor(in->dtype(), dims, rng));
  }
  return feed;
}

// Runs `pass` on a copy; checks the copy verifies and computes what the
// original does (on `feed`, or random inputs with symbolic dims set to `sym`):
// within `tol` relative, or bit for bit (NaN matching NaN, the sign of zero
// kept) when `tol` is 0. Returns the copy.
inline std::unique_ptr<Model> RunPassAndCompare(const Model& before, PassFn pass, int64_t sym = 2, double tol = 0.0,
                                         const std::map<std::string, RtValue>* feed = nullptr) {
  std::unique_ptr<Model> after = CloneModel(before);
  PassContext ctx;
  Status s = pass(*after, ctx);
  EXPECT_TRUE(s.ok()) << s.ToString();
  Status valid = VerifyModel(*after);
  EXPECT_TRUE(valid.ok()) << valid.ToString() << "\n" << PrintGraph(*after);
  std::map<std::string, RtValue> random;
  if (!feed) {
    random = RandomFeed(before, sym);
    feed = &random;
  }
  auto want = ReferenceExecutor(before).Run(*feed);
  auto got = ReferenceExecutor(*after).Run(*feed);
  EXPECT_TRUE(want.ok()) << want.status().ToString();
  EXPECT_TRUE(got.ok()) << got.status().ToString();
  if (!want.ok() || !got.ok()) return after;
  EXPECT_EQ(want->size(), got->size());
  Tolerance t;
  t.rtol = tol;
  t.atol = tol;
  for (size_t i = 0; i < want->size() && i < got->size(); ++i) {
    const Tensor& w = (*want)[i].tensor;
    const Tensor& o = (*got)[i].tensor;
    EXPECT_EQ(w.dims(), o.dims());
    EXPECT_EQ(w.dtype(), o.dtype());
    Status can_fail = CheckCanFail(w, t);
    EXPECT_TRUE(can_fail.ok()) << "output " << i << ": the comparison cannot fail: " << can_fail.message();
    if (w.dims() != o.dims()) continue;
    if (tol > 0.0) {
      Comparison c = CompareTensors(w, o, t);
      EXPECT_TRUE(c.ok) << "output " << i << " (after vs before the pass) " << c.message;
      continue;
    }
    for (int64_t k = 0; k < w.numel(); ++k) {
      double a = w.ScalarAt(k), b = o.ScalarAt(k);
      bool same = (a == b && std::signbit(a) == std::signbit(b)) || (std::isnan(a) && std::isnan(b));
      EXPECT_TRUE(same) << "output " << i << " element " << k << ": " << a << " (before) vs " << b
                        << " (after)";
      if (!same) break;
    }
  }
  return after;
}

// A Transpose's attributes.
inline AttributeMap Perm(std::vector<int64_t> p) { return {{"perm", Attribute::FromInts(std::move(p))}}; }

// The first node of op type `op` in schedule order, or nullptr.
inline const Node* FindOp(const Model& m, const std::string& op) {
  for (const Node* n : m.graph->nodes())
    if (n->op_type == op) return n;
  return nullptr;
}

// The GPU build's passes on m (FP16 unless opts says otherwise: `fp16` sets it); false, with the status
// recorded as a test failure, when they fail.
inline bool RunGpuBuild(Model& m, BuildOptions opts = {}, bool fp16 = true) {
  opts.fp16 = fp16;
  std::vector<std::string> notes;
  Status s = RunBuildPasses(m, opts, &notes);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return s.ok();
}

inline int CountOps(const Model& m, const std::string& op) {
  int n = 0;
  for (const Node* node : m.graph->nodes()) n += node->op_type == op;
  return n;
}

// A zoo model (tests/models/export_zoo.py --calibrate-bn, 64x64 conv nets;
// fixture "zoo") or a checked-in one (tests/fixtures/NAME.onnx) after the
// simplifier, as the GPU builder runs it. nullptr, with a test failure, when
// the file is missing.
inline std::unique_ptr<Model> LoadSimplified(const std::string& path) {
  if (path.empty()) return nullptr;
  auto loaded = LoadModel(path);
  EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
  if (!loaded.ok()) return nullptr;
  std::unique_ptr<Model> m = std::move(*loaded);
  EXPECT_TRUE(InferShapes(*m).ok());
  PassContext ctx;
  Status s = RunSimplify(*m, ctx);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return m;
}

inline std::unique_ptr<Model> SimplifiedZooModel(const std::string& name) {
  return LoadSimplified(fixtures::ZooModel(name));
}

inline std::unique_ptr<Model> SimplifiedFixtureModel(const std::string& file) {
  return LoadSimplified(fixtures::Require(fixtures::SourceFixture(file), "a checked-in file of the repo"));
}

}  // namespace testing_build
}  // namespace kiln
