#include "runtime/engine_io.h"

#include <cstring>

namespace kiln {

TensorInfo DescribeTensor(const Value& v) {
  TensorInfo t;
  t.name = v.name();
  t.dtype = std::string(DataTypeName(v.type.dtype));
  for (const Dim& d : v.type.shape.dims()) {
    t.dims.push_back(d.known() ? d.value() : -1);
    t.names.push_back(d.symbolic() ? d.symbol() : "");
  }
  return t;
}

std::vector<TensorInfo> DescribeInputs(const Graph& g) {
  std::vector<TensorInfo> out;
  for (const Value* v : g.inputs)
    if (!v->data) out.push_back(DescribeTensor(*v));
  return out;
}

std::vector<TensorInfo> DescribeOutputs(const Graph& g) {
  std::vector<TensorInfo> out;
  for (const Value* v : g.outputs) out.push_back(DescribeTensor(*v));
  return out;
}

Status CheckIoName(const Graph& g, const std::string& name, const char* what) {
  bool io = false;
  for (const Value* v : g.inputs) io |= v->name() == name;
  for (const Value* v : g.outputs) io |= v->name() == name;
  if (!io) return InvalidArgument(std::string(what) + ": '" + name + "' is not an input or output of the engine");
  return Status::Ok();
}

Expected<Tensor> InputValue(const Graph& g, const std::map<std::string, std::vector<int64_t>>& shapes,
                            const std::string& name, const void* host_data, size_t bytes) {
  auto shape = shapes.find(name);
  const Value* v = g.FindValue(name);
  if (shape == shapes.end() || !v) return InvalidArgument("input '" + name + "': set its shape before its values");
  Tensor t(v->dtype(), shape->second);
  if (t.nbytes() != bytes)
    return InvalidArgument("input '" + name + "' " + std::string(DataTypeName(v->dtype())) +
                           DimsToString(shape->second) + " takes " + std::to_string(t.nbytes()) + " bytes, got " +
                           std::to_string(bytes));
  if (bytes) std::memcpy(t.mutable_raw(), host_data, bytes);
  return t;
}

Status CheckInputShape(const Graph& g, const std::map<std::string, ShapeRange>& profiles, const std::string& name,
                       const std::vector<int64_t>& dims, const Value** input) {
  const Value* in = nullptr;
  for (const Value* v : g.inputs)
    if (v->name() == name && !v->data) in = v;
  if (!in) return InvalidArgument("SetInputShape: the engine has no input named '" + name + "'");
  const Shape& decl = in->type.shape;
  if (decl.rank_known() && decl.rank() != static_cast<int>(dims.size()))
    return InvalidArgument("input '" + name + "': shape " + DimsToString(dims) + " has rank " +
                           std::to_string(dims.size()) + ", the model expects " + decl.ToString());
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] < 0) return InvalidArgument("input '" + name + "': negative dim in " + DimsToString(dims));
    if (decl.rank_known() && decl[i].known() && decl[i].value() != dims[i])
      return InvalidArgument("input '" + name + "': dim " + std::to_string(i) + " must be " + decl[i].ToString() +
                             ", got " + DimsToString(dims));
  }
  auto prof = profiles.find(name);
  if (prof != profiles.end()) {
    const ShapeRange& r = prof->second;
    bool inside = r.min.size() == dims.size() && r.max.size() == dims.size();
    for (size_t i = 0; inside && i < dims.size(); ++i) inside = r.min[i] <= dims[i] && dims[i] <= r.max[i];
    if (!inside)
      return OutOfRange("input '" + name + "': shape " + DimsToString(dims) + " is outside the engine's profile [" +
                        DimsToString(r.min) + " .. " + DimsToString(r.max) + "]; rebuild with a wider range");
  }
  if (input) *input = in;
  return Status::Ok();
}

}  // namespace kiln
