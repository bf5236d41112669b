#include "ops/op_table.h"

#include <algorithm>
#include <exception>
#include <string>

namespace kiln {

const std::vector<OpInfo>& AllOps() {
  static const std::vector<OpInfo> kOps = {
#define KILN_OP(domain, name, infer, run) {domain, #name, &ops::infer, &ops::run},
#include "ops/ops.def"
#undef KILN_OP
  };
  return kOps;
}

namespace {

template <class Fn, class Ctx>
Status Guarded(Fn fn, Ctx& ctx) {
  try {
    return fn(ctx);
  } catch (const std::exception& e) {
    return ctx.InternalError(std::string(kOpThrew) + e.what() +
                             " (a kiln bug: please report it with the model)");
  }
}

}  // namespace

Status OpInfo::Infer(InferContext& ctx) const { return Guarded(infer, ctx); }
Status OpInfo::Run(RunContext& ctx) const { return Guarded(run, ctx); }

const OpInfo* FindOp(std::string_view domain, std::string_view op_type) {
  if (domain == "ai.onnx") domain = "";
  const auto& ops = AllOps();
  auto it = std::find_if(ops.begin(), ops.end(),
                         [&](const OpInfo& o) { return o.domain == domain && o.name == op_type; });
  return it == ops.end() ? nullptr : &*it;
}

}  // namespace kiln
