// The shape program (issue #12's tensor table): every value's dims, and the
// contents of the shape arithmetic the runtime computes on the host (Shape →
// Gather → Concat → Expand/Slice/Range inputs), as expressions over the input
// dims. Compiled once from an engine's model, whose shapes were inferred with
// symbolic input dims; evaluated at each new set of input shapes, with no
// shape inference and no CPU kernel (TensorRT evaluates its shape expressions
// the same way).
//
// Values computable from shapes and constants whose contents are no shape
// arithmetic (BERT's position ids Range(0, seq), a causal mask from Range and
// Less, ViT's class token expanded to the batch) are device values: the
// program gives their dims, and the runtime computes them with ordinary steps
// instead of folding them on the host.
//
// A model is not always expressible: shapes that depend on values (NonZero,
// TopK with a computed k), control flow, shape-tensor inputs, or a value a
// kernel must read on the host (a Reshape's shape) that is not shape
// arithmetic leave the program incomplete; the runtime then infers shapes as
// before. incomplete() names the first value that made it so.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/shape.h"
#include "core/tensor.h"
#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln {

class ShapeProgram {
 public:
  // `m`'s shapes were inferred with symbolic input dims.
  static ShapeProgram Compile(const Model& m);

  // The plan's 'shapes' section (docs/PLAN.md): a loaded plan evaluates the
  // program its builder compiled, with no shape inference. Decode checks
  // every count, dtype, dim and binding against the bytes and itself.
  std::string Encode() const;
  static Expected<ShapeProgram> Decode(std::string_view bytes);

  // Empty when every value is expressible; otherwise why not, naming a value.
  const std::string& incomplete() const { return incomplete_; }
  bool complete() const { return incomplete_.empty(); }

  // Checks that every dynamic input has a shape of its rank and that the
  // inputs agree on the named dims they share (input_ids and attention_mask
  // both [batch, seq]; between the SetInputShape calls that move a model to
  // a new shape they disagree), and binds each name. Works on an incomplete
  // program too: contexts prepare at SetInputShape once this holds.
  Expected<std::map<std::string, int64_t>> BindInputs(
      const std::map<std::string, std::vector<int64_t>>& input_shapes) const;

  struct Result {
    std::unordered_map<std::string, std::vector<int64_t>> dims;  // every non-constant tensor value
    std::unordered_map<std::string, Tensor> data;                // host-computed values (int64/int32)
  };
  // Binds the input dims (BindInputs) and evaluates every expression. Fails
  // when the program is incomplete, binding fails, or a dim comes out
  // negative (the message names the value and its expression).
  Expected<Result> Evaluate(const std::map<std::string, std::vector<int64_t>>& input_shapes) const;

  // The dynamic inputs and their ranks (-1: unknown), in graph order.
  const std::vector<std::pair<std::string, int64_t>>& Inputs() const { return inputs_; }
  // The values whose contents the runtime computes on the host (for tests).
  std::vector<std::string> HostValues() const;
  // Values computable from shapes that the runtime computes on the device (for tests).
  std::vector<std::string> DeviceValues() const;

 private:
  struct Entry {
    std::string value;
    DataType dtype = DataType::kUndefined;
    std::vector<Dim> dims;
    std::optional<std::vector<Dim>> contents;  // host-computed values
  };
  struct Binding {
    std::string input;
    size_t axis = 0;
    std::string symbol;
  };
  std::vector<std::pair<std::string, int64_t>> inputs_;  // name, rank (-1: unknown)
  std::vector<Binding> bindings_;
  std::vector<Entry> entries_;
  std::vector<std::string> device_values_;
  std::string incomplete_;
};

}  // namespace kiln
