#include "backend/cuda/cuda_op_table.h"

#include <vector>

namespace kiln::cuda {

#define KILN_CUDA_OP(domain, name, factory, caps) Expected<std::unique_ptr<GpuOp>> factory(const GpuOpInfo&);
#include "backend/cuda/cuda_ops.def"
#undef KILN_CUDA_OP

namespace {

struct Row {
  std::string_view domain;
  std::string_view name;
  GpuOpFactory factory;
};

const std::vector<Row>& Rows() {
  static const std::vector<Row> kRows = {
#define KILN_CUDA_OP(domain, name, factory, caps) {domain, #name, &factory},
#include "backend/cuda/cuda_ops.def"
#undef KILN_CUDA_OP
  };
  return kRows;
}

}  // namespace

GpuOpFactory FindGpuOp(std::string_view domain, std::string_view op_type) {
  if (domain == "ai.onnx") domain = "";
  for (const Row& r : Rows())
    if (r.domain == domain && r.name == op_type) return r.factory;
  return nullptr;
}

GpuProbe FactoryProbe(bool fp16) {
  return [fp16](const Node& n, int64_t opset) -> Status {
    GpuOpFactory f = FindGpuOp(n.domain, n.op_type);
    if (!f) return Unsupported(n.Label() + ": no CUDA kernel for this op");
    return f(GpuOpInfo{&n, opset, fp16}).status();
  };
}

}  // namespace kiln::cuda
