// What every backend's Engine/Context share about inputs and outputs: their
// description (TensorInfo) and the rules of Context::SetInputShape.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/engine.h"

namespace kiln {

// A graph input or output as Engine::Inputs/Outputs describe it.
TensorInfo DescribeTensor(const Value& v);

// The engine's inputs (graph inputs without an initializer) and outputs.
std::vector<TensorInfo> DescribeInputs(const Graph& g);
std::vector<TensorInfo> DescribeOutputs(const Graph& g);

// `name` is an input or output of the engine (for SetTensorAddress & co.;
// `what` names the call in the error).
Status CheckIoName(const Graph& g, const std::string& name, const char* what);

// SetInputValue's copy of an input's values at its set shape (`shapes`),
// checked against its size.
Expected<Tensor> InputValue(const Graph& g, const std::map<std::string, std::vector<int64_t>>& shapes,
                            const std::string& name, const void* host_data, size_t bytes);

// The input exists, the rank and fixed dims match the model, no negative dims,
// and the shape lies within the engine's profile for that input (when it has
// one). Returns the graph input `name` (without an initializer) in `*input`, or an
// error naming the input, the shape and what it must be.
Status CheckInputShape(const Graph& g, const std::map<std::string, ShapeRange>& profiles, const std::string& name,
                       const std::vector<int64_t>& dims, const Value** input = nullptr);

}  // namespace kiln
