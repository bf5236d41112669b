// The attribute schema table of well-known ONNX ops used by the verifier.
// Not every op or attribute is here: what is here is checked, the rest passes.
#include "ir/verifier_attrs.h"

#include <string_view>

namespace kiln {
namespace verifier_internal {
namespace {

using T = Attribute::Type;

struct AttrRule {
  std::string_view op;
  std::string_view attr;
  T type;
  bool required;
};

constexpr AttrRule kRules[] = {
    // Convolution and pooling.
    {"Conv", "strides", T::kInts, false}, {"Conv", "pads", T::kInts, false}, {"Conv", "dilations", T::kInts, false},
    {"Conv", "kernel_shape", T::kInts, false}, {"Conv", "group", T::kInt, false}, {"Conv", "auto_pad", T::kString, false},
    {"ConvTranspose", "strides", T::kInts, false}, {"ConvTranspose", "pads", T::kInts, false},
    {"ConvTranspose", "dilations", T::kInts, false}, {"ConvTranspose", "kernel_shape", T::kInts, false},
    {"ConvTranspose", "group", T::kInt, false}, {"ConvTranspose", "auto_pad", T::kString, false},
    {"ConvTranspose", "output_padding", T::kInts, false}, {"ConvTranspose", "output_shape", T::kInts, false},
    {"ConvInteger", "strides", T::kInts, false}, {"ConvInteger", "pads", T::kInts, false},
    {"ConvInteger", "dilations", T::kInts, false}, {"ConvInteger", "group", T::kInt, false},
    {"QLinearConv", "strides", T::kInts, false}, {"QLinearConv", "pads", T::kInts, false},
    {"QLinearConv", "dilations", T::kInts, false}, {"QLinearConv", "group", T::kInt, false},
    {"MaxPool", "kernel_shape", T::kInts, true}, {"MaxPool", "strides", T::kInts, false},
    {"MaxPool", "pads", T::kInts, false}, {"MaxPool", "dilations", T::kInts, false},
    {"MaxPool", "auto_pad", T::kString, false}, {"MaxPool", "ceil_mode", T::kInt, false},
    {"MaxPool", "storage_order", T::kInt, false},
    {"AveragePool", "kernel_shape", T::kInts, true}, {"AveragePool", "strides", T::kInts, false},
    {"AveragePool", "pads", T::kInts, false}, {"AveragePool", "dilations", T::kInts, false},
    {"AveragePool", "auto_pad", T::kString, false}, {"AveragePool", "ceil_mode", T::kInt, false},
    {"AveragePool", "count_include_pad", T::kInt, false},
    {"LpPool", "kernel_shape", T::kInts, true}, {"LpPool", "strides", T::kInts, false}, {"LpPool", "p", T::kInt, false},
    {"GlobalLpPool", "p", T::kInt, false},
    // Dense / normalization / activations.
    {"Gemm", "alpha", T::kFloat, false}, {"Gemm", "beta", T::kFloat, false}, {"Gemm", "transA", T::kInt, false},
    {"Gemm", "transB", T::kInt, false},
    {"BatchNormalization", "epsilon", T::kFloat, false}, {"BatchNormalization", "momentum", T::kFloat, false},
    {"BatchNormalization", "training_mode", T::kInt, false},
    {"InstanceNormalization", "epsilon", T::kFloat, false},
    {"LayerNormalization", "axis", T::kInt, false}, {"LayerNormalization", "epsilon", T::kFloat, false},
    {"LayerNormalization", "stash_type", T::kInt, false},
    {"GroupNormalization", "epsilon", T::kFloat, false}, {"GroupNormalization", "num_groups", T::kInt, true},
    {"RMSNormalization", "axis", T::kInt, false}, {"RMSNormalization", "epsilon", T::kFloat, false},
    {"LRN", "size", T::kInt, true}, {"LRN", "alpha", T::kFloat, false}, {"LRN", "beta", T::kFloat, false},
    {"LRN", "bias", T::kFloat, false},
    {"LeakyRelu", "alpha", T::kFloat, false}, {"Elu", "alpha", T::kFloat, false}, {"Celu", "alpha", T::kFloat, false},
    {"Selu", "alpha", T::kFloat, false}, {"Selu", "gamma", T::kFloat, false},
    {"HardSigmoid", "alpha", T::kFloat, false}, {"HardSigmoid", "beta", T::kFloat, false},
    {"ThresholdedRelu", "alpha", T::kFloat, false}, {"Gelu", "approximate", T::kString, false},
    {"Softmax", "axis", T::kInt, false}, {"LogSoftmax", "axis", T::kInt, false}, {"Hardmax", "axis", T::kInt, false},
    {"Clip", "min", T::kFloat, false}, {"Clip", "max", T::kFloat, false},
    {"Dropout", "ratio", T::kFloat, false}, {"Dropout", "seed", T::kInt, false},
    // Shape manipulation.
    {"Transpose", "perm", T::kInts, false}, {"Concat", "axis", T::kInt, true}, {"Flatten", "axis", T::kInt, false},
    {"Reshape", "allowzero", T::kInt, false}, {"Squeeze", "axes", T::kInts, false},
    {"Unsqueeze", "axes", T::kInts, false}, {"Split", "axis", T::kInt, false}, {"Split", "split", T::kInts, false},
    {"Split", "num_outputs", T::kInt, false}, {"Slice", "starts", T::kInts, false}, {"Slice", "ends", T::kInts, false},
    {"Slice", "axes", T::kInts, false}, {"Gather", "axis", T::kInt, false}, {"GatherElements", "axis", T::kInt, false},
    {"GatherND", "batch_dims", T::kInt, false}, {"ScatterElements", "axis", T::kInt, false},
    {"ScatterElements", "reduction", T::kString, false}, {"ScatterND", "reduction", T::kString, false},
    {"Pad", "mode", T::kString, false}, {"Pad", "pads", T::kInts, false}, {"Pad", "value", T::kFloat, false},
    {"DepthToSpace", "blocksize", T::kInt, true}, {"DepthToSpace", "mode", T::kString, false},
    {"SpaceToDepth", "blocksize", T::kInt, true}, {"Shape", "start", T::kInt, false}, {"Shape", "end", T::kInt, false},
    {"Trilu", "upper", T::kInt, false}, {"OneHot", "axis", T::kInt, false}, {"CumSum", "exclusive", T::kInt, false},
    {"CumSum", "reverse", T::kInt, false}, {"TopK", "axis", T::kInt, false}, {"TopK", "largest", T::kInt, false},
    {"TopK", "sorted", T::kInt, false}, {"ArgMax", "axis", T::kInt, false}, {"ArgMax", "keepdims", T::kInt, false},
    {"ArgMax", "select_last_index", T::kInt, false}, {"ArgMin", "axis", T::kInt, false},
    {"ArgMin", "keepdims", T::kInt, false}, {"ArgMin", "select_last_index", T::kInt, false},
    {"Resize", "mode", T::kString, false}, {"Resize", "coordinate_transformation_mode", T::kString, false},
    {"Resize", "nearest_mode", T::kString, false}, {"Resize", "cubic_coeff_a", T::kFloat, false},
    {"Resize", "exclude_outside", T::kInt, false}, {"Resize", "extrapolation_value", T::kFloat, false},
    {"Resize", "antialias", T::kInt, false}, {"Resize", "axes", T::kInts, false},
    {"Resize", "keep_aspect_ratio_policy", T::kString, false}, {"Upsample", "mode", T::kString, false},
    // Reductions.
    {"ReduceMean", "axes", T::kInts, false}, {"ReduceMean", "keepdims", T::kInt, false},
    {"ReduceSum", "axes", T::kInts, false}, {"ReduceSum", "keepdims", T::kInt, false},
    {"ReduceMax", "axes", T::kInts, false}, {"ReduceMax", "keepdims", T::kInt, false},
    {"ReduceMin", "axes", T::kInts, false}, {"ReduceMin", "keepdims", T::kInt, false},
    {"ReduceProd", "axes", T::kInts, false}, {"ReduceProd", "keepdims", T::kInt, false},
    {"ReduceL2", "axes", T::kInts, false}, {"ReduceL2", "keepdims", T::kInt, false},
    // Types, constants, control flow, misc.
    {"Cast", "to", T::kInt, true}, {"Cast", "saturate", T::kInt, false}, {"CastLike", "saturate", T::kInt, false},
    {"EyeLike", "dtype", T::kInt, false}, {"EyeLike", "k", T::kInt, false},
    {"ConstantOfShape", "value", T::kTensor, false}, {"Constant", "value", T::kTensor, false},
    {"Constant", "value_float", T::kFloat, false}, {"Constant", "value_floats", T::kFloats, false},
    {"Constant", "value_int", T::kInt, false}, {"Constant", "value_ints", T::kInts, false},
    {"Constant", "value_string", T::kString, false}, {"Constant", "value_strings", T::kStrings, false},
    {"If", "then_branch", T::kGraph, true}, {"If", "else_branch", T::kGraph, true}, {"Loop", "body", T::kGraph, true},
    {"Scan", "body", T::kGraph, true}, {"Scan", "num_scan_inputs", T::kInt, true},
    {"Einsum", "equation", T::kString, true}, {"QuantizeLinear", "axis", T::kInt, false},
    {"QuantizeLinear", "saturate", T::kInt, false}, {"QuantizeLinear", "block_size", T::kInt, false},
    {"DequantizeLinear", "axis", T::kInt, false}, {"DequantizeLinear", "block_size", T::kInt, false},
    {"NonMaxSuppression", "center_point_box", T::kInt, false},
    {"LSTM", "hidden_size", T::kInt, false}, {"LSTM", "direction", T::kString, false},
    {"LSTM", "activations", T::kStrings, false}, {"GRU", "hidden_size", T::kInt, false},
    {"GRU", "direction", T::kString, false}, {"RNN", "hidden_size", T::kInt, false},
    {"RNN", "direction", T::kString, false},
};

constexpr std::string_view kConstantValueAttrs[] = {"value",     "value_float",  "value_floats", "value_int",
                                                     "value_ints", "value_string", "value_strings", "sparse_value"};

void Add(std::vector<Issue>* issues, const Node& n, const std::string& where, std::string msg) {
  issues->push_back({Issue::Severity::kError, n.name, n.Label() + where + ": " + std::move(msg)});
}

}  // namespace

void CheckAttributes(const Node& n, int64_t opset, const std::string& where, std::vector<Issue>* issues) {
  for (const auto& [name, a] : n.attrs) {
    if (!a.ref_attr_name.empty()) {
      Add(issues, n, where, "attribute '" + name + "' refers to function attribute '" + a.ref_attr_name +
                                "' outside a function");
      continue;
    }
    if (a.type == T::kUndefined) Add(issues, n, where, "attribute '" + name + "' has no type");
    if (a.type == T::kGraph && !a.g) Add(issues, n, where, "graph attribute '" + name + "' holds no graph");
    for (const auto& g : a.graphs)
      if (!g) Add(issues, n, where, "graphs attribute '" + name + "' holds a null graph");
  }
  if (!n.domain.empty()) return;
  for (const AttrRule& r : kRules) {
    if (r.op != n.op_type) continue;
    const Attribute* a = n.attr(std::string(r.attr));
    if (!a) {
      if (r.required) Add(issues, n, where, "required attribute '" + std::string(r.attr) + "' is missing");
      continue;
    }
    if (a->type != r.type && a->ref_attr_name.empty())
      Add(issues, n, where, "attribute '" + std::string(r.attr) + "' must be " + AttributeTypeName(r.type) +
                                ", not " + AttributeTypeName(a->type));
  }
  if (n.op_type == "Constant") {
    int count = 0;
    for (std::string_view k : kConstantValueAttrs) count += n.attr(std::string(k)) ? 1 : 0;
    if (count != 1)
      Add(issues, n, where, "needs exactly one of the value attributes, has " + std::to_string(count));
  }
  (void)opset;
}

}  // namespace verifier_internal
}  // namespace kiln
