// Helpers for tests that build ONNX protobufs by hand and write them to a
// per-test temporary folder (onnx_import_test.cc, verifier_test.cc).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "onnx.pb.h"

namespace kiln {
namespace testing_onnx {

// A fresh empty folder for the running test.
inline std::string TestDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "kiln_onnx_tests" /
                              (std::string(info->test_suite_name()) + "." + info->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

inline void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// ValueInfo of a float tensor; dims: >= 0 known, -1 unknown; `syms` names
// symbolic dims by position ("" = use dims).
inline onnx::ValueInfoProto TensorInfo(const std::string& name, int32_t elem_type, const std::vector<int64_t>& dims,
                                       const std::vector<std::string>& syms = {}) {
  onnx::ValueInfoProto vi;
  vi.set_name(name);
  auto* tt = vi.mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem_type);
  auto* shape = tt->mutable_shape();
  for (size_t i = 0; i < dims.size(); ++i) {
    auto* d = shape->add_dim();
    if (i < syms.size() && !syms[i].empty())
      d->set_dim_param(syms[i]);
    else if (dims[i] >= 0)
      d->set_dim_value(dims[i]);
  }
  return vi;
}

inline onnx::NodeProto* AddNode(onnx::GraphProto* g, const std::string& op, const std::vector<std::string>& in,
                                const std::vector<std::string>& out, const std::string& name = "") {
  auto* n = g->add_node();
  n->set_op_type(op);
  if (!name.empty()) n->set_name(name);
  for (const auto& s : in) n->add_input(s);
  for (const auto& s : out) n->add_output(s);
  return n;
}

inline onnx::AttributeProto* AddIntsAttr(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
  return a;
}

inline onnx::AttributeProto* AddIntAttr(onnx::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
  return a;
}

inline onnx::TensorProto FloatTensor(const std::string& name, const std::vector<int64_t>& dims,
                                     const std::vector<float>& values) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t.add_dims(d);
  for (float v : values) t.add_float_data(v);
  return t;
}

// A model: Y = Relu(X + W), X: float[batch,3], W an initializer.
inline onnx::ModelProto SimpleModel(int64_t ir_version = 8, int64_t opset = 17) {
  onnx::ModelProto m;
  m.set_ir_version(ir_version);
  m.set_producer_name("kiln-test");
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  auto* g = m.mutable_graph();
  g->set_name("main");
  *g->add_input() = TensorInfo("X", onnx::TensorProto::FLOAT, {-1, 3}, {"batch"});
  *g->add_initializer() = FloatTensor("W", {3}, {1.f, 2.f, 3.f});
  AddNode(g, "Add", {"X", "W"}, {"S"}, "add");
  AddNode(g, "Relu", {"S"}, {"Y"});
  *g->add_output() = TensorInfo("Y", onnx::TensorProto::FLOAT, {-1, 3}, {"batch"});
  return m;
}

inline std::string WriteModel(const onnx::ModelProto& m, const std::string& dir,
                              const std::string& name = "model.onnx") {
  std::string path = dir + "/" + name;
  WriteFile(path, m.SerializeAsString());
  return path;
}

}  // namespace testing_onnx
}  // namespace kiln
