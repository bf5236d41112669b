// `kiln inspect`'s content as data (the CLI, tools/kiln/inspect.cc, prints it;
// the Python package returns it from kiln.inspect): a model's inputs, outputs,
// versions, op histogram, parameters, MACs at given input shapes and sync
// points, optionally its text IR and every value's inferred type.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln {

struct InspectOptions {
  // Input dims for shape inference and the MAC count (symbolic dims default to 1).
  std::map<std::string, std::vector<int64_t>> shapes;
  bool ir = false;      // add the text IR (PrintGraph)
  bool values = false;  // add every value's inferred type, symbolic dims kept (only `shapes` bind dims)
};

struct InspectReport {
  std::string model;  // the path
  int64_t ir_version = 0;
  std::vector<std::pair<std::string, int64_t>> opsets;  // in the model's order; "" is named "ai.onnx"
  std::string producer_name, producer_version;
  struct Io {
    std::string name;
    TypeInfo type;
  };
  std::vector<Io> inputs, outputs;  // inputs: those a caller feeds (no initializers)
  int64_t nodes = 0;                // subgraphs' nodes included
  std::vector<std::pair<std::string, int64_t>> ops;  // op ("domain.Op" outside ai.onnx) → count, most first
  double parameters = 0, parameter_bytes = 0;
  int64_t initializers = 0;
  // MACs of Conv/ConvTranspose/Gemm/MatMul at input_shapes.
  double macs = 0;
  std::map<std::string, double> macs_by_op;
  std::map<std::string, std::vector<int64_t>> input_shapes;
  std::vector<std::string> uncounted;  // counted ops whose shapes stayed unknown
  std::string inference_error;         // non-empty when shape inference failed
  std::vector<std::string> sync_points;  // nodes whose output shapes depend on values
  std::string ir;                        // with options.ir
  bool has_values = false;               // with options.values:
  nlohmann::json values;                 //   [{name, graph, source, op, kind, dtype, elem_type, dims, type}]
  nlohmann::json shape_inference_errors;  //   the messages of that inference
};

// Loads and inspects the model at `path`. Errors: the load's, an unknown
// input in options.shapes, dims that contradict the declared ones.
Expected<InspectReport> InspectModelFile(const std::string& path, const InspectOptions& options = {});

// `kiln inspect --json`'s document (with "ir" when options.ir, "values" and
// "shape_inference_errors" when options.values).
nlohmann::json InspectJson(const InspectReport& r);
// `kiln inspect`'s text, without the IR (printed after a blank line).
std::string InspectText(const InspectReport& r);

// The graph inputs a caller must (or may) feed: inputs without an initializer.
std::vector<const Value*> RuntimeInputs(const Graph& g);

// Concrete dims for a declared input type: `override_dims` when given
// (checked against the declared rank and known dims), else the declared dims
// with symbolic dims taken from `symbols` (bound there when first seen) and
// symbolic/unknown dims defaulting to 1. Errors name the input.
Expected<std::vector<int64_t>> ConcreteDims(const Value& input, const std::vector<int64_t>* override_dims,
                                            std::map<std::string, int64_t>* symbols);

// 1234567 → "1.23M" (K, M, G, T); small numbers as is.
std::string HumanCount(double v);
// 1536 → "1.5 KiB".
std::string HumanBytes(double v);

}  // namespace kiln
