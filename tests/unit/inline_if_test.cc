// inline_if: an If whose condition folds (here from the input's shape) is
// replaced by the branch it takes, nested decided Ifs too; the model computes
// what it computed before (CPU reference, bit for bit), and an If on a value
// only a run can tell stays.
#include <gtest/gtest.h>

#include <algorithm>

#include "graph_builder.h"
#include "graph_nodes.h"
#include "ir/inline_if.h"
#include "passes/inline_if.h"

namespace kiln {
namespace {

using testing_ir::Builder;

std::shared_ptr<Graph> Branch(Graph& parent, const std::function<Value*(Builder&)>& body) {
  auto g = std::make_shared<Graph>();
  g->parent = &parent;
  Builder b(g.get());
  b.Output(body(b));
  return g;
}

// y = If(shape(x)[0] == 2) { If(true) { Relu(x) * 2 } else { x } } else { Neg(x) }
std::unique_ptr<Model> ShapeConditional(int64_t rows) {
  std::unique_ptr<Model> m = testing_ir::NewModel();
  Graph& g = *m->graph;
  Builder b(&g);
  Value* x = b.Input("x", DataType::kFloat, Shape::Of({rows, 3}));
  Value* rows_of_x = b.Op1("Gather", {b.Op1("Shape", {x}), b.Const(Tensor::FromVector<int64_t>(DataType::kInt64, {}, {0}))});
  Value* cond = b.Op1("Equal", {rows_of_x, b.Const(Tensor::FromVector<int64_t>(DataType::kInt64, {}, {2}))});
  auto then_branch = Branch(g, [&](Builder& tb) {
    Value* yes = tb.Const(Tensor::FromVector<bool>(DataType::kBool, {}, {true}));
    Value* two = tb.Const(Tensor::FromVector<float>(DataType::kFloat, {}, {2.f}));
    auto inner_then = std::make_shared<Graph>();
    auto inner_else = std::make_shared<Graph>();
    Value* out = tb.Op1("If", {yes});  // nested: decided once inlined
    Node* inner = out->producer();
    inner_then->parent = inner->graph();
    inner_else->parent = inner->graph();
    Builder it(inner_then.get()), ie(inner_else.get());
    it.Output(it.Op1("Mul", {it.Op1("Relu", {x}), two}));
    ie.Output(ie.Op1("Identity", {x}));
    inner->attrs["then_branch"] = Attribute::FromGraph(inner_then);
    inner->attrs["else_branch"] = Attribute::FromGraph(inner_else);
    return out;
  });
  auto else_branch = Branch(g, [&](Builder& eb) { return eb.Op1("Neg", {x}); });
  Value* y = b.Op1("If", {cond}, {{"then_branch", Attribute::FromGraph(then_branch)},
                                  {"else_branch", Attribute::FromGraph(else_branch)}});
  b.Output(y);
  EXPECT_TRUE(InferShapes(*m).ok());
  return m;
}

TEST(InlineIf, DecidedBranchesReplaceTheIfs) {
  for (int64_t rows : {2, 3}) {
    SCOPED_TRACE("rows " + std::to_string(rows));
    std::unique_ptr<Model> m = ShapeConditional(rows);
    ASSERT_EQ(testing_build::CountOps(*m, "If"), 1);
    std::unique_ptr<Model> after = testing_build::RunPassAndCompare(*m, RunInlineIf);
    EXPECT_EQ(testing_build::CountOps(*after, "If"), 0);
    EXPECT_EQ(testing_build::CountOps(*after, "Relu"), rows == 2 ? 1 : 0);
    EXPECT_EQ(testing_build::CountOps(*after, "Neg"), rows == 2 ? 0 : 1);
    EXPECT_EQ(after->graph->outputs[0]->name(), m->graph->outputs[0]->name());
    // The removed Ifs' branch nodes are no uses of x any more (they were
    // dangling: a later pass crashed walking them).
    std::vector<Node*> live = after->graph->nodes();
    for (const Node* u : after->graph->FindValue("x")->uses())
      EXPECT_NE(std::find(live.begin(), live.end(), u), live.end()) << "a removed node still uses x";
  }
}

TEST(InlineIf, ConditionOnlyARunCanTellStays) {
  std::unique_ptr<Model> m = testing_ir::NewModel();
  Graph& g = *m->graph;
  Builder b(&g);
  Value* c = b.Input("c", DataType::kBool, Shape::Of({}));
  Value* x = b.Input("x", DataType::kFloat, Shape::Of({4}));
  auto t = Branch(g, [&](Builder& tb) { return tb.Op1("Relu", {x}); });
  auto e = Branch(g, [&](Builder& eb) { return eb.Op1("Neg", {x}); });
  b.Output(b.Op1("If", {c}, {{"then_branch", Attribute::FromGraph(t)}, {"else_branch", Attribute::FromGraph(e)}}));
  ASSERT_TRUE(InferShapes(*m).ok());
  bool changed = false;
  std::vector<std::pair<const Node*, const Node*>> traced;
  ASSERT_TRUE(InlineDecidedIfs(*m->graph, [&](const Node* a, const Node* s) { traced.emplace_back(a, s); }, &changed).ok());
  EXPECT_FALSE(changed);
  EXPECT_TRUE(traced.empty());
  EXPECT_EQ(testing_build::CountOps(*m, "If"), 1);
}

}  // namespace
}  // namespace kiln
