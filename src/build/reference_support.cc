// kiln::builder's ReferenceSupport (runtime/reference_support.h): shape
// inference at run time for plans the shape program cannot express, and CPU
// plans on the reference executor. Stateless: one per engine or load.
#include "runtime/reference_support.h"

#include "ir/inline_if.h"
#include "passes/shape_inference.h"
#include "runtime/cpu/cpu_engine.h"

namespace kiln {
namespace {

class BuilderReference final : public ReferenceSupport {
 public:
  Status InferAtShapes(Model& clone, const std::map<std::string, std::vector<int64_t>>& input_shapes,
                       int64_t max_fold_elements, const InlineTrace& trace) const override {
    ShapeInferenceOptions opt;
    opt.max_fold_elements = max_fold_elements;
    for (const auto& [name, dims] : input_shapes) opt.input_shapes[name] = Shape::Of(dims);
    KILN_RETURN_IF_ERROR(InferShapes(clone, opt).WithPrefix("shape inference at the given input shapes"));
    for (bool inlined = true; inlined;) {
      inlined = false;
      KILN_RETURN_IF_ERROR(InlineDecidedIfs(*clone.graph, trace, &inlined));
      if (inlined)
        KILN_RETURN_IF_ERROR(InferShapes(clone, opt).WithPrefix("shape inference after inlining Ifs"));
    }
    return Status::Ok();
  }

  Expected<std::shared_ptr<Engine>> LoadCpuPlan(const PlanFile& plan) const override {
    return cpu::DeserializeCpuEngine(plan);
  }
};

}  // namespace

PlanLoadOptions BuilderLoadOptions() {
  PlanLoadOptions o;
  o.reference = std::make_shared<BuilderReference>();
  return o;
}

}  // namespace kiln
