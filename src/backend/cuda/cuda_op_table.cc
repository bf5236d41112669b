#include "backend/cuda/cuda_op_table.h"

#include <vector>

namespace kiln::cuda {
namespace {

struct Row {
  std::string_view domain;
  std::string_view name;
  GpuOpFactory factory;
};

const std::vector<Row>& Rows() {
  static const std::vector<Row> kRows = {
#define KILN_CUDA_OP(domain, name, factory) {domain, #name, &factory},
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

}  // namespace kiln::cuda
