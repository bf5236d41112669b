// Text pieces the kernel generators share (pointwise_source.cc, row_source.cc):
// the prelude, load/store suffixes, inlined constants, how inputs are read.
#pragma once

#include <string>
#include <unordered_set>
#include <vector>

#include "build/codegen/pointwise_source.h"
#include "core/dtype.h"
#include "ir/graph.h"

namespace kiln::codegen {

// The helpers every generated kernel starts with (pointwise_prelude.inc),
// followed by the parameter block's definition.
const std::string& Prelude();
// The load/store suffix of an element type (kiln_ld_<suffix>), or nullptr.
const char* Suffix(DataType dt);
// A one-element float/bool constant as a literal, or "" when it is not one.
std::string ConstantLiteral(const Value& v);
// The eight-element entries' statements (kiln_v8_* packs, pointwise_prelude.inc): declare pack r<k> and load
// input k's elements index .. index + 7 into it; declare pack s<o>; store it as output o's elements index ..
// index + 7. `index` is an expression; `indent` starts each line.
std::string PackLoad(size_t k, DataType dt, const std::string& index, const std::string& indent);
std::string PackDecl(size_t o, DataType dt, const std::string& indent);
std::string PackStore(size_t o, DataType dt, const std::string& index, const std::string& indent);
// How the kernel of `fused` reads each input, into k.input_modes and
// k.input_views: through the input's view (pointwise_view.h AbsorbedView),
// kStrided when it has one or when the value its loads give is in `strided`
// (unless it is one element), else as its shape says (ModeOf). Returns those
// values, by input.
Expected<std::vector<const Value*>> KernelInputs(const Node& fused, int64_t opset,
                                                 const std::unordered_set<const Value*>& strided,
                                                 PointwiseKernel& k);

// What a generator works from: kiln.Pointwise node `fused`, its body, the
// model's opset, the entry points' name and the output domain.
class KernelGenerator {
 public:
  KernelGenerator(const Node& fused, int64_t opset, const std::string& name)
      : fused_(fused),
        body_(*fused.attr("body")->g),
        opset_(opset),
        name_(name),
        domain_(fused.output(0)->shape()) {}

 protected:
  // The kernel's description before its inputs and source are known.
  PointwiseKernel NewKernel(bool rows) const {
    PointwiseKernel k;
    k.name = name_;
    k.rows = rows;
    k.rank = domain_.rank();
    return k;
  }

  const Node& fused_;
  const Graph& body_;
  int64_t opset_;
  std::string name_;
  const Shape& domain_;
};

}  // namespace kiln::codegen
