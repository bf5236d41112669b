// One op-harness case: a single-node model with random (or fixed) inputs,
// run by the CPU reference (the oracle) and by a backend, whose outputs must
// agree within the case's tolerance (reference/compare.h). The cases of the
// CUDA backend live in cuda_cases.cc, grouped by kernel family.
#pragma once

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"

namespace kiln::op_cases {

struct In {
  std::string name;  // "" = an omitted optional input; a name given twice: one value read twice
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

struct OpCase {
  std::string group;  // kernel family, e.g. "Movement"
  int index = 0;      // within the group
  Case c;
  // Float outputs: rtol per element, atol of the reference's RMS. Integer outputs match exactly, except
  // int8/uint8 ones of a case with a non-zero tolerance, which may be one step off (library epilogues and
  // expf round in their own order of float operations).
  double rtol = 1e-4, atol = 1e-5;
  std::string Label() const { return group + " #" + std::to_string(index) + " (" + c.op + ")"; }
};

// Collects the cases of one group: sink(case, rtol, atol).
struct Sink {
  std::string group;
  std::vector<OpCase>* out = nullptr;
  void operator()(Case c, double rtol = 1e-4, double atol = 1e-5) const {
    int index = 0;
    for (const OpCase& o : *out) index += o.group == group;
    out->push_back({group, index, std::move(c), rtol, atol});
  }
};

// Values for one input (seeded by the caller).
Tensor Random(const In& in, std::mt19937& rng);

// The case as a model (shapes not yet inferred) and its runtime inputs.
struct CaseModel {
  std::unique_ptr<Model> model;
  std::map<std::string, Tensor> inputs;
};
CaseModel BuildCaseModel(const Case& c, std::mt19937& rng);

// Every CUDA op-harness case, in group order.
const std::vector<OpCase>& CudaOpCases();

}  // namespace kiln::op_cases
