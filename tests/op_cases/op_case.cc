#include "op_cases/op_case.h"

#include <cmath>
#include <unordered_map>

#include "ir/clone.h"

namespace kiln::op_cases {

Tensor Random(const In& in, std::mt19937& rng) {
  if (!in.int_values.empty()) {
    if (in.dtype == DataType::kFloat8E4M3FN) {  // fixed codes (bit patterns), e.g. finite FP8 weights
      Tensor t(in.dtype, in.dims);
      for (int64_t i = 0; i < t.numel(); ++i)
        t.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(in.int_values[static_cast<size_t>(i) % in.int_values.size()]);
      return t;
    }
    if (in.dtype == DataType::kInt8 || in.dtype == DataType::kUInt8 || in.dtype == DataType::kInt32 ||
        in.dtype == DataType::kInt16 || in.dtype == DataType::kUInt16 || in.dtype == DataType::kUInt32 ||
        in.dtype == DataType::kUInt64) {
      Tensor t(in.dtype, in.dims);
      for (int64_t i = 0; i < t.numel(); ++i) {
        const int64_t v = in.int_values[static_cast<size_t>(i) % in.int_values.size()];
        if (in.dtype == DataType::kInt8) t.mutable_data<int8_t>()[i] = static_cast<int8_t>(v);
        else if (in.dtype == DataType::kUInt8) t.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(v);
        else if (in.dtype == DataType::kInt16) t.mutable_data<int16_t>()[i] = static_cast<int16_t>(v);
        else if (in.dtype == DataType::kUInt16) t.mutable_data<uint16_t>()[i] = static_cast<uint16_t>(v);
        else if (in.dtype == DataType::kUInt32) t.mutable_data<uint32_t>()[i] = static_cast<uint32_t>(v);
        else if (in.dtype == DataType::kUInt64) t.mutable_data<uint64_t>()[i] = static_cast<uint64_t>(v);
        else t.mutable_data<int32_t>()[i] = static_cast<int32_t>(v);
      }
      return t;
    }
    return Tensor::FromVector<int64_t>(DataType::kInt64, in.dims, in.int_values);
  }

  if (!in.values.empty()) {
    int64_t n = 1;
    for (int64_t d : in.dims) n *= d;
    if (in.values.size() == 1u && n != 1)  // one value repeated (scales)
      return Tensor::FromVector<float>(DataType::kFloat, in.dims, std::vector<float>(static_cast<size_t>(n), in.values[0]));
    return Tensor::FromVector<float>(DataType::kFloat, in.dims, in.values);
  }
  Tensor t(in.dtype, in.dims);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (in.dtype == DataType::kFloat) t.mutable_data<float>()[i] = in.positive ? 0.1f + std::fabs(u(rng)) : u(rng);
    else if (in.dtype == DataType::kFloat16) t.mutable_data<Half>()[i] = Half(u(rng));
    else if (in.dtype == DataType::kDouble) t.mutable_data<double>()[i] = in.positive ? 0.1 + std::fabs(u(rng)) : u(rng);
    else if (in.dtype == DataType::kBool) t.mutable_data<bool>()[i] = rng() & 1;
    else if (in.dtype == DataType::kInt64) t.mutable_data<int64_t>()[i] = static_cast<int64_t>(rng() % 5);
    else if (in.dtype == DataType::kInt32) t.mutable_data<int32_t>()[i] = static_cast<int32_t>(rng() % 5);
    else if (in.dtype == DataType::kInt8) t.mutable_data<int8_t>()[i] = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
    else if (in.dtype == DataType::kUInt8) t.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(rng() % 256);
    // The small types Cast converts, one element per byte: every code of the type.
    else if (in.dtype == DataType::kInt4) t.mutable_data<int8_t>()[i] = static_cast<int8_t>(static_cast<int>(rng() % 16) - 8);
    else if (in.dtype == DataType::kInt2) t.mutable_data<int8_t>()[i] = static_cast<int8_t>(static_cast<int>(rng() % 4) - 2);
    else if (in.dtype == DataType::kUInt4 || in.dtype == DataType::kFloat4E2M1)
      t.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(rng() % 16);
    else if (in.dtype == DataType::kUInt2) t.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(rng() % 4);
    else if (ElementSize(in.dtype) == 1 && IsFloatingPoint(in.dtype))  // float8 family
      t.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(rng() % 256);
    if (in.special && in.dtype == DataType::kFloat && i % 3 != 0)
      t.mutable_data<float>()[i] = i % 3 == 1 ? NAN : (i % 2 ? INFINITY : -INFINITY);
  }
  return t;
}

CaseModel BuildCaseModel(const Case& c, std::mt19937& rng) {
  CaseModel cm;
  cm.model = std::make_unique<Model>();
  Model& m = *cm.model;
  m.ir_version = 8;
  m.opsets[""] = c.opset;
  if (!c.domain.empty()) m.opsets[c.domain] = 1;
  m.graph = std::make_shared<Graph>();
  Graph& g = *m.graph;
  Node* n = g.AddNode(c.op, "node0", c.domain);
  std::unordered_map<const Value*, Value*> copies;
  for (const auto& [name, a] :
       c.attrs)  // graph attributes copied: this graph their parent, passes free to edit
    n->attrs[name] = CloneAttribute(a, g, copies);
  for (const In& in : c.inputs) {
    if (in.name.empty()) {
      n->AddInput(nullptr);
      continue;
    }
    // A name given again is the same value read twice (kiln.Attention's packed Q/K/V).
    if (Value* again = g.FindValue(in.name)) {
      n->AddInput(again);
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
      cm.inputs[in.name] = t;
    }
    n->AddInput(v);
  }
  for (int i = 0; i < c.outputs; ++i) {
    Value* y = g.AddValue("y" + std::to_string(i));
    n->AddOutput(y);
    g.outputs.push_back(y);
  }
  return cm;
}

}  // namespace kiln::op_cases
