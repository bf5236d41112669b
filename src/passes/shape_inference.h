// Shape and type inference over the whole model (subgraphs included), with
// symbolic dims. Also propagates constants of small results (shape arithmetic)
// and symbolic contents of shape tensors (Value::sym_data).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln {

struct ShapeInferenceOptions {
  // Overrides for graph input shapes (e.g. from --shapes / --input-shape).
  std::map<std::string, Shape> input_shapes;
  // Outputs with at most this many elements are computed when all inputs are
  // constant (so Reshape(x, Concat(Shape(x)[0], -1)) stays exact).
  int64_t max_fold_elements = 1024;
  // When false, an op without inference or an inference error is reported as
  // an error; when true, the outputs stay unknown and inference goes on.
  bool tolerate_errors = false;
  // When tolerating errors, the messages of the nodes whose inference failed
  // are appended here (when set).
  std::vector<std::string>* errors = nullptr;
};

Status InferShapes(Model& model, const ShapeInferenceOptions& options = {});

}  // namespace kiln
