// Checks that two models compute the same thing: runs both on the CPU
// reference executor with the same random inputs (fixed seed) and compares
// every output within a tolerance. `kiln simplify` verifies its result this
// way; pass tests use it too.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/status.h"
#include "ops/op_context.h"

namespace kiln {

struct EquivalenceOptions {
  // Concrete dims for some inputs; other inputs use their declared dims with
  // each symbolic dim (one value per symbol name) and unknown dim set to
  // symbolic_dim.
  std::map<std::string, std::vector<int64_t>> input_dims;
  // The value of symbolic and unknown dims of other inputs.
  int64_t symbolic_dim = 1;
  uint64_t seed = 0;
  // |a - b| <= rtol * |a| + atol * rms(a) (a: the reference model's value;
  // see reference/compare.h).
  double rtol = 1e-4;
  double atol = 1e-5;
};

struct EquivalenceReport {
  // Outputs whose comparison could not have failed on these inputs (all zeros,
  // or constant and accepted by a 5% perturbation), each with why. Their
  // agreement proves nothing; callers say so.
  std::vector<std::string> vacuous;
};

// Deterministic random values: floats uniform in [-1, 1), integers in
// [0, int_limit) (8-bit and smaller: [0, 2) signed, [0, 4) unsigned), bools
// fair, strings "s0".."s9"; float8/complex stay zero.
Tensor RandomTensor(DataType dt, const std::vector<int64_t>& dims, int int_limit, std::mt19937_64& rng);

// Random inputs for the model's runtime inputs (graph inputs without an
// initializer): floats uniform in [-1, 1), integers in [0, 10) (below the axis
// size where an input is a Gather's indices), bools fair.
Expected<std::map<std::string, RtValue>> RandomInputs(const Model& model, const EquivalenceOptions& options);

// Ok when `candidate` gives `reference`'s outputs (same names in the same
// order, dtypes, shapes, values within tolerance) on the same random inputs.
// `report`, when given, lists the outputs whose check was vacuous.
// Errors: Unsupported when `reference` itself cannot run on the CPU reference
// (so nothing can be checked); InvalidArgument with a message naming the
// first differing output (index, both values, the tolerance) otherwise.
Status CheckEquivalent(const Model& reference, const Model& candidate,
                       const EquivalenceOptions& options = {}, EquivalenceReport* report = nullptr);

}  // namespace kiln
