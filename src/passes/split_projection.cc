// Build pass: column-block reads of a constant-weight product → one product
// per block (see split_projection.h).
#include "passes/split_projection.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

struct Block {
  Node* reader;    // the Slice
  Value* out;      // the value the new product makes
  int64_t begin;   // columns [begin, end) of the product
  int64_t end;
};

// t's elements [begin, end) along `axis` (a copy).
Tensor SliceAxis(const Tensor& t, int axis, int64_t begin, int64_t end) {
  std::vector<int64_t> dims = t.dims();
  const size_t elem = ElementSize(t.dtype());
  size_t outer = 1, inner = elem;
  for (int i = 0; i < axis; ++i) outer *= static_cast<size_t>(dims[i]);
  for (size_t i = static_cast<size_t>(axis) + 1; i < dims.size(); ++i) inner *= static_cast<size_t>(dims[i]);
  const size_t row = static_cast<size_t>(dims[static_cast<size_t>(axis)]) * inner;
  dims[static_cast<size_t>(axis)] = end - begin;
  Tensor out(t.dtype(), dims);
  const size_t take = static_cast<size_t>(end - begin) * inner;
  auto* dst = static_cast<char*>(out.mutable_raw());
  const auto* src = static_cast<const char*>(t.raw());
  for (size_t o = 0; o < outer && take > 0; ++o)
    std::memcpy(dst + o * take, src + o * row + static_cast<size_t>(begin) * inner, take);
  return out;
}

class SplitProjection {
 public:
  explicit SplitProjection(Model& model) : g_(*model.graph) {}

  int Run() {
    int rewritten = 0;
    std::vector<Node*> products;
    for (Node* n : g_.nodes())
      if (Columns(*n) > 0) products.push_back(n);
    for (Node* n : products) {
      std::vector<Block> blocks;
      Node* bias = BiasAdd(*n);
      if (ReadInBlocks(*n, bias ? bias->output(0) : n->output(0), &blocks)) {
        Rewrite(n, bias, blocks);
        ++rewritten;
      }
    }
    return rewritten;
  }

 private:
  // The product's column count N when it is a MatMul with a constant 2-D B or
  // a Gemm (transA = 0) with constant B and C; else 0.
  int64_t Columns(const Node& n) const {
    const bool matmul = passes::IsOnnxOp(&n, "MatMul"), gemm = passes::IsOnnxOp(&n, "Gemm");
    if ((!matmul && !gemm) || n.num_outputs() != 1 || !n.output(0) || !n.input(0)) return 0;
    const Value* b = n.input(1);
    if (!b || !passes::IsConstant(b) || b->data->rank() != 2) return 0;
    if (passes::IsGraphOutput(g_, n.output(0)) || n.output(0)->uses().empty()) return 0;
    if (matmul) return b->data->dim(1);
    const Attribute* ta = n.attr("transA");
    if (ta && ta->i != 0) return 0;
    if (n.num_inputs() > 2 && n.input(2) && !passes::IsConstant(n.input(2))) return 0;
    const Attribute* tb = n.attr("transB");
    return b->data->dim(tb && tb->i != 0 ? 0 : 1);
  }

  // The Add of a per-column constant ([N] or [1, .., N]) that is the only
  // reader of MatMul n's output (a Linear layer's bias, as torch exports it
  // for 3-D inputs); nullptr when there is none.
  Node* BiasAdd(const Node& n) const {
    if (!passes::IsOnnxOp(&n, "MatMul")) return nullptr;
    Node* add = passes::SoleUser(g_, n.output(0));
    if (!passes::IsOnnxOp(add, "Add") || !passes::IsPlainNode(add, 2) ||
        passes::IsGraphOutput(g_, add->output(0)))
      return nullptr;  // (a graph output must keep its producer)
    const Value* c = add->input(add->input(0) == n.output(0) ? 1 : 0);
    const Shape& y = n.output(0)->shape();
    const int64_t cols = Columns(n);
    if (!passes::IsConstant(c) || !y.rank_known() || c->data->rank() < 1 || c->data->rank() > y.rank() ||
        c->data->numel() != cols || c->data->dims().back() != cols ||
        c->data->dtype() != n.output(0)->dtype())
      return nullptr;
    return add;
  }

  // Every use of y (n's output, or its bias Add's) reads a column block; `blocks` lists them.
  bool ReadInBlocks(const Node& n, const Value* y, std::vector<Block>* blocks) const {
    const int64_t cols = Columns(n);
    const Shape& s = y->shape();
    if (!s.rank_known() || s.rank() < 1) return false;
    const int64_t last = s.rank() - 1;
    for (Node* use : y->uses()) {
      if (use->input(0) != y) return false;
      if (!passes::IsOnnxOp(use, "Slice") || !SliceBlock(use, last, cols, blocks)) return false;
    }
    // Each Slice is a copy kernel and each extra block an extra product: a
    // single block (one Slice) would not save a kernel.
    return blocks->size() >= 2;
  }

  bool LastAxis(int64_t axis, int64_t last) const { return axis == -1 || axis == last; }

  // Slice (opset ≥ 10: constant starts, ends, one axis, step 1).
  bool SliceBlock(Node* use, int64_t last, int64_t cols, std::vector<Block>* blocks) const {
    if (use->attr("starts") || use->num_inputs() < 4 || !use->input(3)) return false;
    auto starts = passes::ConstInts(use->input(1)), ends = passes::ConstInts(use->input(2)),
         axes = passes::ConstInts(use->input(3));
    if (!starts || !ends || !axes || starts->size() != 1 || ends->size() != 1 || axes->size() != 1) return false;
    if (!LastAxis((*axes)[0], last)) return false;
    if (use->num_inputs() > 4 && use->input(4)) {
      auto steps = passes::ConstInts(use->input(4));
      if (!steps || steps->size() != 1 || (*steps)[0] != 1) return false;
    }
    auto clamp = [cols](int64_t v) { return std::clamp(v < 0 ? v + cols : v, int64_t{0}, cols); };
    const int64_t b = clamp((*starts)[0]), e = clamp((*ends)[0]);
    if (e <= b) return false;
    blocks->push_back({use, use->output(0), b, e});
    return true;
  }

  // The blocks' products (and, with `bias_add`, their bias Adds) replace n.
  void Rewrite(Node* n, Node* bias_add, const std::vector<Block>& blocks) {
    const bool gemm = n->op_type == "Gemm";
    const Attribute* tb = n->attr("transB");
    const int w_axis = gemm && tb && tb->i != 0 ? 0 : 1;
    const Tensor& w = *n->input(1)->data;
    Value* c = gemm && n->num_inputs() > 2 ? n->input(2) : nullptr;
    const int64_t cols = Columns(*n);
    const std::string base = n->name.empty() ? n->output(0)->name() : n->name;
    std::vector<Node*> readers;
    std::vector<std::pair<Node*, Value*>> made;  // new product → the block's value it makes
    for (size_t k = 0; k < blocks.size(); ++k) {
      const Block& blk = blocks[k];
      const std::string name = base + "/cols" + std::to_string(blk.begin) + "_" + std::to_string(blk.end);
      Node* m = g_.InsertNode(n, n->op_type, g_.UniqueName(name));
      m->attrs = n->attrs;
      m->AddInput(n->input(0));
      m->AddInput(passes::AddInitializer(g_, name + "_w", SliceAxis(w, w_axis, blk.begin, blk.end)));
      if (c) {
        const Tensor& ct = *c->data;
        const bool per_column = ct.rank() >= 1 && ct.dims().back() == cols && cols > 1;
        m->AddInput(per_column ? passes::AddInitializer(g_, name + "_c", SliceAxis(ct, ct.rank() - 1, blk.begin,
                                                                                     blk.end))
                               : c);
      }
      if (bias_add) {
        // The block's columns of the bias, added to the block's product.
        const Value* c = bias_add->input(bias_add->input(0) == n->output(0) ? 1 : 0);
        const Tensor& ct = *c->data;
        Shape part_shape = n->output(0)->shape();
        std::vector<Dim> dims = part_shape.dims();
        dims.back() = Dim(blk.end - blk.begin);
        Value* part = passes::NewTensorValue(g_, name, n->output(0)->dtype(), Shape(dims));
        m->AddOutput(part);
        m = g_.InsertNode(n, "Add", g_.UniqueName(name + "/bias"));
        m->AddInput(part);
        m->AddInput(
            passes::AddInitializer(g_, name + "_b", SliceAxis(ct, ct.rank() - 1, blk.begin, blk.end)));
      }
      made.push_back({m, blk.out});
      if (std::find(readers.begin(), readers.end(), blk.reader) == readers.end()) readers.push_back(blk.reader);
    }
    for (Node* r : readers) g_.RemoveNode(r);
    if (bias_add) g_.RemoveNode(bias_add);
    g_.RemoveNode(n);
    for (const auto& [m, out] : made) m->AddOutput(out);
  }

  Graph& g_;
};

}  // namespace

Status RunSplitProjection(Model& model, PassContext& ctx) {
  if (!model.graph) return Status::Ok();
  if (SplitProjection(model).Run() > 0) {
    model.graph->RemoveUnusedValues();
    ctx.changed = true;
  }
  return Status::Ok();
}

}  // namespace kiln
