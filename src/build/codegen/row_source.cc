// Row kernels for kiln.Pointwise bodies with reductions (see row_source.h).
#include "build/codegen/row_source.h"

#include <set>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "build/codegen/pointwise_ops.h"
#include "build/codegen/source_text.h"
#include "ops/pointwise_abi.h"
#include "passes/pass_util.h"

namespace kiln::codegen {
namespace {

class RowKernel : KernelGenerator {
 public:
  using KernelGenerator::KernelGenerator;

  Expected<PointwiseKernel> Generate() {
    PointwiseKernel k = NewKernel(true);
    const Dim& last = domain_[k.rank - 1];
    if (last.known() && last.value() == 1) return Fail("the reduced axis has one element");
    KILN_ASSIGN_OR_RETURN(inputs_, KernelInputs(fused_, opset_, {}, k));
    for (size_t i = 0; i < inputs_.size(); ++i) {
      input_index_[inputs_[i]] = i;
      for (const Value* v = inputs_[i]; v != body_.inputs[i]; v = v->producer()->input(0))
        view_nodes_.insert(v->producer());  // the view chain: the loads read through it
    }
    KILN_RETURN_IF_ERROR(Classify());
    std::string body, packed;
    KILN_RETURN_IF_ERROR(EmitBody(body, k.input_modes));
    vec_ = true;  // the same row, eight columns a thread at a time (8 | C), full inputs and outputs as packs
    KILN_RETURN_IF_ERROR(EmitBody(packed, k.input_modes));
    vec_ = false;
    const std::string columns = "p.dims[" + std::to_string(k.rank - 1) + "]";
    std::string s = Prelude();
    // The host entry runs the packed body when it can (the unit tests check it against the reference there).
    s += "extern \"C\" KILN_ENTRY(" + name_ +
         ") {\n  KILN_SHARED_PARTIALS\n  KILN_WAIT_PRIOR();\n#ifdef KILN_PW_HOST\n  if (" + columns +
         " % 8 == 0) {\n" + packed + "    return;\n  }\n#endif\n" + body + "}\n";
    // One warp per row: reductions by shuffles only, no barrier (rows of up to a few thousand columns, enough
    // rows to fill the GPU), columns one at a time or eight (8 | C, aligned packs): the runtime picks
    // (src/backend/cuda/pointwise.cc).
    s += "#ifndef KILN_PW_HOST\n" + WarpRowMacros() + "extern \"C\" __global__ void __launch_bounds__(256) " +
         name_ + "_wrow(const KilnPwParams p) {\n  KILN_WAIT_PRIOR();\n" + body +
         "}\nextern \"C\" __global__ void __launch_bounds__(256) " + name_ +
         "_wrow8(const KilnPwParams p) {\n  KILN_WAIT_PRIOR();\n" + packed + "}\n#endif\n";
    k.source = EntryMacros() + s;
    return k;
  }

 private:
  Status Fail(const std::string& why) const { return Internal(fused_.Label() + ": row kernel: " + why); }

  // The entries' body: a loop over the rows this thread (block or warp) takes.
  Status EmitBody(std::string& s, const std::vector<InputMode>& modes) {
    s += "  const long long C = p.dims[" + std::to_string(domain_.rank() - 1) + "];\n";
    s += "  const long long rows = C > 0 ? p.n / C : 0;\n";
    s += "  for (long long row = KILN_ROW0; row < rows; row += KILN_ROWS_STEP) {\n";
    KILN_RETURN_IF_ERROR(EmitRow(s, modes));
    s += "  }\n";
    return Status::Ok();
  }

  // A loop over the row's columns around `inner` (which defines c and i's uses). Packed (vec_): eight
  // columns a step, the full inputs `inner` read loaded as packs first; `outputs` (stores into packs
  // s<o>.e[e]) stored as packs after.
  void ColumnLoop(std::string& s, const std::string& inner, const std::vector<const Value*>& outputs) {
    if (!vec_) {
      s += "    for (long long c = KILN_TID; c < C; c += KILN_NTHREADS) {\n";
      s += "      const long long i = row * C + c;\n" + inner + "    }\n";
      return;
    }
    s += "    for (long long c0 = (long long)KILN_TID * 8; c0 < C; c0 += (long long)KILN_NTHREADS * 8) {\n";
    for (size_t k : packed_) s += PackLoad(k, inputs_[k]->dtype(), "row * C + c0", "      ");
    for (size_t o = 0; o < outputs.size(); ++o) s += PackDecl(o, outputs[o]->dtype(), "      ");
    s += "      KILN_UNROLL\n      for (int e = 0; e < 8; ++e) {\n      const long long c = c0 + e;\n"
         "      const long long i = row * C + c;\n" +
         inner + "      }\n";
    for (size_t o = 0; o < outputs.size(); ++o) s += PackStore(o, outputs[o]->dtype(), "row * C + c0", "      ");
    s += "    }\n";
  }

  // A node of an input's view chain (the input's loads read through it).
  bool IsView(const Node& n) const { return view_nodes_.count(&n) > 0; }

  // Levels and phases of every body value; the reductions by phase.
  Status Classify() {
    for (const Value* in : body_.inputs) phase_[in] = 0;
    for (const Node* n : body_.nodes()) {
      const RowReduce r = RowReduceOf(*n, opset_);
      int phase = 0;
      bool row = false;
      for (size_t i = 0; i < n->num_inputs(); ++i) {
        const Value* v = n->input(i);
        if (!v || (r != RowReduce::kNone && i > 0)) continue;
        phase = std::max(phase, phase_.count(v) ? phase_[v] : 0);
      }
      if (r != RowReduce::kNone) {
        if (row_.count(n->input(0))) return Fail(n->Label() + " reduces a row-level value");
        reduces_.resize(std::max<size_t>(reduces_.size(), phase + 1));
        reduces_[phase].push_back(n);
        phase += 1;
        row = true;
      } else if (IsView(*n)) {
        row = false;  // an absorbed Transpose or Slice: the input's loads read through it
      } else {
        if (!CanGeneratePointwise(*n, opset_)) return Fail(n->Label() + " has no generated form");
        // One value per row, or element-level: over the domain, or smaller and
        // broadcast (recomputed per element).
        row = RowShaped(n->output(0)->shape(), domain_);
      }
      phase_[n->output(0)] = phase;
      if (row) row_.insert(n->output(0));
    }
    for (const Value* o : body_.outputs)
      if (row_.count(o)) return Fail("output '" + o->name() + "' is one value per row");
    return Status::Ok();
  }

  // The load of body input `in` at linear index `idx` ("i" = row * C + c inside a column loop).
  std::string Load(const Value* in, const std::string& idx, const std::vector<InputMode>& modes) {
    const size_t k = input_index_.at(in);
    if (vec_ && idx == "i" && modes[k] == InputMode::kFull) {  // from its pack (ColumnLoop)
      packed_.insert(k);
      return std::string("kiln_ld_") + Suffix(in->dtype()) + "(r" + std::to_string(k) + ".e, e)";
    }
    std::string off = idx;
    if (modes[k] == InputMode::kScalar) off = "0";
    // Along the row only, (i / div) % mod is the column: no 64-bit division per element (it made a BERT-base
    // LayerNorm's row kernel about 5x slower than the hand-written one on an H100).
    if (modes[k] == InputMode::kBlock && idx == "i" && AlongLastAxisOnly(in->shape(), domain_))
      off = "c";
    else if (modes[k] == InputMode::kBlock)
      off = "((" + idx + ") / p.div[" + std::to_string(k) + "]) % p.mod[" + std::to_string(k) + "]";
    // Strided: the row's first element's offset (o<k>, once per row: EmitRow), plus the column's.
    if (modes[k] == InputMode::kStrided)
      off = idx == "i" ? "(o" + std::to_string(k) + " + c * p.strides[" + std::to_string(k) + "][" +
                             std::to_string(domain_.rank() - 1) + "])"
                       : "o" + std::to_string(k);
    return std::string("kiln_ld_") + Suffix(in->dtype()) + "(p.in[" + std::to_string(k) + "], " + off + ")";
  }

  // Emits, in body order, the element-level nodes `targets` need (through
  // element-level producers), inside a loop over the row's columns.
  Status EmitElements(std::string& s, const std::vector<const Value*>& targets,
                      const std::vector<InputMode>& modes, std::unordered_map<const Value*, std::string>& expr) {
    std::unordered_set<const Value*> need;
    std::vector<const Value*> stack(targets.begin(), targets.end());
    while (!stack.empty()) {
      const Value* v = stack.back();
      stack.pop_back();
      if (!v || row_.count(v) || !need.insert(v).second) continue;
      if (v->producer() && v->producer()->graph() == &body_ && !input_index_.count(v))
        for (const Value* in : v->producer()->inputs()) stack.push_back(in);
    }
    int next = 0;
    for (const Value* in : inputs_) {
      if (!need.count(in)) continue;
      const std::string var = "x" + std::to_string(input_index_.at(in));
      s += "      const " + std::string(ComputeTypeName(in->dtype())) + " " + var + " = " + Load(in, "i", modes) + ";\n";
      expr[in] = var;
    }
    for (const Node* n : body_.nodes()) {
      if (!need.count(n->output(0)) || RowReduceOf(*n, opset_) != RowReduce::kNone || IsView(*n)) continue;
      KILN_ASSIGN_OR_RETURN(std::string e, Expr(*n, expr));
      const std::string var = "e" + std::to_string(next++);
      s += "      const " + std::string(ComputeTypeName(n->output(0)->dtype())) + " " + var + " = " + e + ";\n";
      expr[n->output(0)] = var;
    }
    return Status::Ok();
  }

  Expected<std::string> Expr(const Node& n, const std::unordered_map<const Value*, std::string>& expr) const {
    std::vector<std::string> args;
    for (const Value* v : n.inputs()) {
      if (!v) {
        args.emplace_back();
        continue;
      }
      auto it = expr.find(v);
      std::string lit = it == expr.end() ? ConstantLiteral(*v) : "";
      if (it == expr.end() && lit.empty()) return Fail(n.Label() + " reads '" + v->name() + "' before it is computed");
      args.push_back(it == expr.end() ? lit : it->second);
    }
    return PointwiseExpr(n, opset_, args);
  }

  // Row-level nodes whose operands are all known, in body order.
  Status EmitRowValues(std::string& s, const std::vector<InputMode>& modes,
                       std::unordered_map<const Value*, std::string>& rows) {
    for (const Node* n : body_.nodes()) {
      const Value* out = n->output(0);
      if (!row_.count(out) || rows.count(out) || RowReduceOf(*n, opset_) != RowReduce::kNone) continue;
      bool ready = true;
      for (const Value* v : n->inputs()) {
        if (!v || rows.count(v) || !ConstantLiteral(*v).empty()) continue;
        if (input_index_.count(v)) {  // an input read once per row
          rows[v] = "(" + Load(v, "row * C", modes) + ")";
          continue;
        }
        ready = false;
      }
      if (!ready) continue;
      KILN_ASSIGN_OR_RETURN(std::string e, Expr(*n, rows));
      const std::string var = "r" + std::to_string(row_vars_++);
      s += "    const " + std::string(ComputeTypeName(out->dtype())) + " " + var + " = " + e + ";\n";
      rows[out] = var;
    }
    return Status::Ok();
  }

  Status EmitRow(std::string& s, const std::vector<InputMode>& modes) {
    // Strided inputs: where the row starts, decomposed over the domain's dims once per row, not per element.
    for (size_t k = 0; k < modes.size(); ++k)
      if (modes[k] == InputMode::kStrided)
        s += "    const long long o" + std::to_string(k) + " = kiln_offset(p, " + std::to_string(k) + ", " +
             std::to_string(domain_.rank()) + ", row * C);\n";
    std::unordered_map<const Value*, std::string> rows;  // row-level values computed so far
    KILN_RETURN_IF_ERROR(EmitRowValues(s, modes, rows));
    for (size_t phase = 0; phase < reduces_.size(); ++phase) {
      const std::vector<const Node*>& reds = reduces_[phase];
      if (reds.empty()) continue;
      std::vector<const Value*> targets;
      for (size_t j = 0; j < reds.size(); ++j) {
        const RowReduce r = RowReduceOf(*reds[j], opset_);
        const char* init = r == RowReduce::kMax ? "kiln_f32_bits(0xff800000u)"
                           : r == RowReduce::kMin ? "kiln_f32_bits(0x7f800000u)"
                                                  : "0.0f";
        s += "    float a" + Id(reds[j]) + " = " + init + ";\n";
        targets.push_back(reds[j]->input(0));
      }
      std::string inner;
      packed_.clear();
      std::unordered_map<const Value*, std::string> expr = rows;
      KILN_RETURN_IF_ERROR(EmitElements(inner, targets, modes, expr));
      for (const Node* red : reds) {
        const std::string a = "a" + Id(red), v = expr.at(red->input(0));
        switch (RowReduceOf(*red, opset_)) {
          case RowReduce::kMax:
            inner += "      " + a + " = kiln_max(" + a + ", " + v + ");\n";
            break;
          case RowReduce::kMin:
            inner += "      " + a + " = kiln_min(" + a + ", " + v + ");\n";
            break;
          case RowReduce::kSumSquare:
          case RowReduce::kL2:
            inner += "      " + a + " += " + v + " * " + v + ";\n";
            break;
          default:
            inner += "      " + a + " += " + v + ";\n";
            break;
        }
      }
      ColumnLoop(s, inner, {});
      for (const Node* red : reds) {
        const RowReduce r = RowReduceOf(*red, opset_);
        const std::string a = "a" + Id(red);
        const char* block = r == RowReduce::kMax ? "kiln_block_max" : r == RowReduce::kMin ? "kiln_block_min" : "kiln_block_sum";
        s += "    " + a + " = " + block + "(" + a + ", kiln_partials);\n";
        std::string value = a;
        if (r == RowReduce::kMean) value = "(" + a + " / (float)C)";
        if (r == RowReduce::kL2) value = "sqrtf(" + a + ")";
        // A 16-bit result rounds as the reference's does once per reduction.
        const DataType dt = red->output(0)->dtype();
        if (dt == DataType::kFloat16) value = "kiln_round_f16(" + value + ")";
        if (dt == DataType::kBFloat16) value = "kiln_round_bf16(" + value + ")";
        const std::string var = "r" + std::to_string(row_vars_++);
        s += "    const float " + var + " = " + value + ";\n";
        rows[red->output(0)] = var;
      }
      KILN_RETURN_IF_ERROR(EmitRowValues(s, modes, rows));
    }
    std::vector<const Value*> outs(body_.outputs.begin(), body_.outputs.end());
    std::string inner;
    packed_.clear();
    std::unordered_map<const Value*, std::string> expr = rows;
    KILN_RETURN_IF_ERROR(EmitElements(inner, outs, modes, expr));
    for (size_t o = 0; o < outs.size(); ++o) {
      auto it = expr.find(outs[o]);
      std::string value = it == expr.end() ? ConstantLiteral(*outs[o]) : it->second;
      if (value.empty() || !Suffix(outs[o]->dtype())) return Fail("output " + std::to_string(o) + " cannot be stored");
      const std::string os = std::to_string(o);
      inner += "      kiln_st_" + std::string(Suffix(outs[o]->dtype())) +
               (vec_ ? "(s" + os + ".e, e, " : "(p.out[" + os + "], i, ") + value + ");\n";
    }
    ColumnLoop(s, inner, vec_ ? outs : std::vector<const Value*>{});
    return Status::Ok();
  }

  std::string Id(const Node* n) {
    auto it = ids_.find(n);
    if (it != ids_.end()) return it->second;
    return ids_[n] = std::to_string(ids_.size());
  }

  // The entry point's signature and its partials buffer, host or device.
  static std::string EntryMacros() {
    return "#ifdef KILN_PW_HOST\n"
           "#define KILN_ENTRY(NAME) void NAME##_host(const KilnPwParams* pp)\n"
           "#define KILN_SHARED_PARTIALS const KilnPwParams& p = *pp; float* kiln_partials = 0;\n"
           "#else\n"
           "#define KILN_ENTRY(NAME) __global__ void __launch_bounds__(256) NAME##_row(const KilnPwParams p)\n"
           "#define KILN_SHARED_PARTIALS __shared__ float kiln_partials[32];\n"
           "#endif\n";
  }

  // Row and thread macros of the warp-per-row entry; its reductions are one warp's.
  static std::string WarpRowMacros() {
    return "#undef KILN_ROW0\n#undef KILN_ROWS_STEP\n#undef KILN_TID\n#undef KILN_NTHREADS\n"
           "#define KILN_ROW0 ((long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5))\n"
           "#define KILN_ROWS_STEP ((long long)gridDim.x * (blockDim.x >> 5))\n"
           "#define KILN_TID (threadIdx.x & 31)\n#define KILN_NTHREADS 32\n"
           "#define kiln_block_sum(v, sh) kiln_warp_sum(v)\n"
           "#define kiln_block_max(v, sh) kiln_warp_max(v)\n"
           "#define kiln_block_min(v, sh) kiln_warp_min(v)\n";
  }

  std::unordered_map<const Value*, size_t> input_index_;  // the value an input's view gives → input
  std::vector<const Value*> inputs_;                      // those values, by input
  std::unordered_set<const Node*> view_nodes_;
  std::unordered_map<const Value*, int> phase_;
  std::unordered_set<const Value*> row_;
  std::vector<std::vector<const Node*>> reduces_;
  std::unordered_map<const Node*, std::string> ids_;
  int row_vars_ = 0;
  bool vec_ = false;         // generating the packed body (eight columns a step)
  std::set<size_t> packed_;  // the full inputs the current column loop reads as packs
};

}  // namespace

bool RowShaped(const Shape& s, const Shape& domain) {
  if (s.rank() != domain.rank() || s.rank() < 1) return false;
  const int last = s.rank() - 1;
  if (!(s[last].known() && s[last].value() == 1)) return false;
  for (int d = 0; d < last; ++d)
    if (!(s[d] == domain[d]) || s[d].unknown()) return false;
  return true;
}

Expected<PointwiseKernel> GenerateRowKernel(const Node& fused, int64_t opset, const std::string& name) {
  return RowKernel(fused, opset, name).Generate();
}

}  // namespace kiln::codegen
