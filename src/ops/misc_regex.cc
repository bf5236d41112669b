// RegexFullMatch. ONNX specifies RE2 syntax; kiln uses std::regex
// (ECMAScript) after rewriting the RE2 forms it lacks: (?P<name>...) groups,
// \A and \z anchors and a leading (?i) flag. Other RE2-only syntax (\pL
// classes, inline flags elsewhere) is reported as an unsupported pattern.
//
// GCC 12 warns falsely (-Wmaybe-uninitialized) inside libstdc++'s <regex>
// when building with sanitizers; the warning is silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <regex>

#include "ops/op_table.h"

namespace kiln {
namespace ops {
namespace {

Status CheckStringInput(const RunContext& ctx, size_t i) {
  if (!ctx.has_input(i) || ctx.input_value(i).kind != ValueKind::kTensor ||
      ctx.input(i).dtype() != DataType::kString)
    return ctx.Error("input " + std::to_string(i) + " must be a string tensor");
  return Status::Ok();
}

// Rewrites the RE2 forms std::regex (ECMAScript) lacks; sets *icase for a
// leading (?i).
std::string Re2ToEcmaScript(const std::string& p, bool* icase) {
  std::string s = p;
  *icase = false;
  if (s.rfind("(?i)", 0) == 0) {
    *icase = true;
    s = s.substr(4);
  }
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char n = s[i + 1];
      if (n == 'A')
        out += '^';
      else if (n == 'z')
        out += '$';
      else
        out += s.substr(i, 2);
      ++i;
      continue;
    }
    if (s.compare(i, 4, "(?P<") == 0) {  // named group -> plain group
      size_t close = s.find('>', i);
      if (close != std::string::npos) {
        out += '(';
        i = close;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

}  // namespace

Status InferRegexFullMatch(InferContext& ctx) {
  ctx.set_output(0, DataType::kBool, ctx.input_shape(0));
  return Status::Ok();
}

Status RunRegexFullMatch(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(CheckStringInput(ctx, 0));
  const std::string pattern = ctx.attr_string("pattern");
  bool icase = false;
  std::string ecma = Re2ToEcmaScript(pattern, &icase);
  const Tensor& x = ctx.input(0);
  Tensor y(DataType::kBool, x.dims());
  bool* yd = y.mutable_data<bool>();
  try {
    auto flags = std::regex::ECMAScript;
    if (icase) flags |= std::regex::icase;
    std::regex re(ecma, flags);
    const auto& xs = x.strings();
    for (size_t i = 0; i < xs.size(); ++i) yd[i] = std::regex_match(xs[i], re);
  } catch (const std::regex_error& e) {
    return ctx.Error("regex pattern '" + pattern + "' is not supported: " + e.what());
  }
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
