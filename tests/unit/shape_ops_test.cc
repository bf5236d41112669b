// Shape-family ops: symbolic shape inference through exporter patterns
// (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) and CPU reference
// results on small hand-built graphs.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ops/shape_util.h"
#include "passes/shape_inference.h"
#include "reference/executor.h"

namespace kiln {
namespace {

Dim Sym(const std::string& s) { return Dim::Symbol(s); }

// Builds a one-graph model by hand.
class GraphBuilder {
 public:
  explicit GraphBuilder(int64_t opset = 18) {
    model_.opsets[""] = opset;
    model_.graph = std::make_shared<Graph>();
    g_ = model_.graph.get();
  }

  Value* Input(const std::string& name, DataType dt, Shape shape) {
    Value* v = g_->AddValue(name);
    v->type = TypeInfo::Tensor(dt, std::move(shape));
    g_->inputs.push_back(v);
    return v;
  }
  Value* Const(const std::string& name, Tensor t) {
    Value* v = g_->AddValue(name);
    v->type = TypeInfo::Tensor(t.dtype(), t.shape());
    v->data = std::move(t);
    g_->initializers.push_back(v);
    return v;
  }
  Value* Ints(const std::vector<int64_t>& v) { return Const(Fresh("c"), Tensor::Int64s(v)); }
  Value* Scalar(int64_t v) { return Const(Fresh("c"), Tensor::ScalarInt64(v)); }

  std::vector<Value*> Op(const std::string& type, const std::vector<Value*>& inputs, AttributeMap attrs = {},
                         size_t n_out = 1) {
    Node* n = g_->AddNode(type, Fresh(type));
    for (Value* v : inputs) n->AddInput(v);
    for (size_t i = 0; i < n_out; ++i) n->AddOutput(g_->AddValue(Fresh(type + "_out")));
    n->attrs = std::move(attrs);
    return n->outputs();
  }
  Value* Op1(const std::string& type, const std::vector<Value*>& inputs, AttributeMap attrs = {}) {
    return Op(type, inputs, std::move(attrs))[0];
  }
  void Output(Value* v) { g_->outputs.push_back(v); }

  Status Infer() { return InferShapes(model_); }
  Expected<std::vector<RtValue>> Run(const std::map<std::string, RtValue>& in) {
    return ReferenceExecutor(model_).Run(in);
  }

 private:
  std::string Fresh(const std::string& base) { return base + "_" + std::to_string(counter_++); }
  Model model_;
  Graph* g_;
  int counter_ = 0;
};

Shape Image() { return Shape({Sym("batch"), Dim(3), Dim(224), Dim(224)}); }

// ---- symbolic inference ----

TEST(ShapeOpsInfer, ShapeGatherUnsqueezeConcatReshape) {
  GraphBuilder b(13);
  Value* x = b.Input("x", DataType::kFloat, Image());
  Value* shape = b.Op1("Shape", {x});
  Value* batch = b.Op1("Gather", {shape, b.Scalar(0)}, {{"axis", Attribute::FromInt(0)}});
  Value* batch1 = b.Op1("Unsqueeze", {batch, b.Ints({0})});
  Value* target = b.Op1("Concat", {batch1, b.Ints({-1})}, {{"axis", Attribute::FromInt(0)}});
  Value* y = b.Op1("Reshape", {x, target});
  b.Output(y);
  ASSERT_TRUE(b.Infer().ok());
  EXPECT_EQ(shape->shape().ToString(), "[4]");
  ASSERT_TRUE(shape->sym_data.has_value());
  EXPECT_EQ(Shape(*shape->sym_data).ToString(), "[batch,3,224,224]");
  EXPECT_EQ(batch->shape().ToString(), "[]");
  EXPECT_EQ(Shape(*batch->sym_data).ToString(), "[batch]");
  EXPECT_EQ(batch1->shape().ToString(), "[1]");
  EXPECT_EQ(target->shape().ToString(), "[2]");
  EXPECT_EQ(y->type.ToString(), "float32[batch,150528]");
}

TEST(ShapeOpsInfer, ConcatOfSymbolicAndConstantDims) {
  // Reshape(x, Concat(Shape(x)[0:1], [3, -1])): [batch, 3, 50176].
  GraphBuilder b(13);
  Value* x = b.Input("x", DataType::kFloat, Image());
  Value* shape = b.Op1("Shape", {x});
  Value* head = b.Op1("Slice", {shape, b.Ints({0}), b.Ints({1})});
  Value* target = b.Op1("Concat", {head, b.Ints({3, -1})}, {{"axis", Attribute::FromInt(0)}});
  Value* y = b.Op1("Reshape", {x, target});
  b.Output(y);
  ASSERT_TRUE(b.Infer().ok());
  EXPECT_EQ(Shape(*head->sym_data).ToString(), "[batch]");
  EXPECT_EQ(y->shape().ToString(), "[batch,3,50176]");
}

TEST(ShapeOpsInfer, ReshapeZeroAndMinusOne) {
  GraphBuilder b(14);
  Value* x = b.Input("x", DataType::kFloat, Shape({Sym("batch"), Sym("seq"), Dim(768)}));
  Value* y = b.Op1("Reshape", {x, b.Ints({0, 0, 12, 64})});
  Value* z = b.Op1("Reshape", {x, b.Ints({-1, 768})});
  Value* w = b.Op1("Reshape", {y, b.Ints({0, -1, 768})});
  b.Output(z);
  b.Output(w);
  ASSERT_TRUE(b.Infer().ok());
  EXPECT_EQ(y->shape().ToString(), "[batch,seq,12,64]");
  EXPECT_EQ(z->shape().ToString(), "[batch*seq,768]");
  EXPECT_EQ(w->shape().ToString(), "[batch,seq,768]");
}

TEST(ShapeOpsInfer, ShapeOfKnownInputIsConstant) {
  GraphBuilder b(15);
  Value* x = b.Input("x", DataType::kFloat, Shape::Of({2, 3, 4}));
  AttributeMap attrs{{"start", Attribute::FromInt(1)}};
  Value* s = b.Op1("Shape", {x}, attrs);
  Value* n = b.Op1("Size", {x});
  b.Output(s);
  b.Output(n);
  ASSERT_TRUE(b.Infer().ok());
  ASSERT_TRUE(s->data.has_value());
  EXPECT_EQ(s->data->ToInt64s(), (std::vector<int64_t>{3, 4}));
  ASSERT_TRUE(n->data.has_value());
  EXPECT_EQ(n->data->IntAt(0), 24);
}

TEST(ShapeOpsInfer, FlattenExpandConstantOfShapeTileRange) {
  GraphBuilder b(13);
  Value* x = b.Input("x", DataType::kFloat, Image());
  Value* flat = b.Op1("Flatten", {x}, {{"axis", Attribute::FromInt(1)}});
  Value* shape = b.Op1("Shape", {x});
  Value* zeros = b.Op1("ConstantOfShape", {shape});
  Value* v = b.Input("v", DataType::kFloat, Shape::Of({3, 1, 1}));
  Value* expanded = b.Op1("Expand", {v, shape});
  Value* tiled = b.Op1("Tile", {x, b.Ints({1, 2, 1, 1})});
  Value* seq = b.Op1("Gather", {shape, b.Scalar(0)}, {{"axis", Attribute::FromInt(0)}});
  Value* r = b.Op1("Range", {b.Scalar(0), seq, b.Scalar(1)});
  b.Output(flat);
  b.Output(zeros);
  b.Output(expanded);
  b.Output(tiled);
  b.Output(r);
  ASSERT_TRUE(b.Infer().ok());
  EXPECT_EQ(flat->shape().ToString(), "[batch,150528]");
  EXPECT_EQ(zeros->type.ToString(), "float32[batch,3,224,224]");
  EXPECT_EQ(expanded->shape().ToString(), "[batch,3,224,224]");
  EXPECT_EQ(tiled->shape().ToString(), "[batch,6,224,224]");
  EXPECT_EQ(r->type.ToString(), "int64[batch]");
}

// torch.arange(seq, dtype=torch.float32) (rotary position tables) exports
// Range(0.0, Cast(seq, float), 1.0): the count is the cast integer's. Without
// it the rotary tables' seq dim is unknown, and so are Q and K after them
// (a Llama-style export then keeps its attention unfused). A float start or
// delta that is not a whole number, or a limit that is not a cast integer,
// leaves the count unknown.
TEST(ShapeOpsInfer, FloatRangeOverACastDimCountsTheDim) {
  GraphBuilder b(17);
  Value* ids = b.Input("ids", DataType::kInt64, Shape({Sym("batch"), Sym("seq")}));
  Value* seq = b.Op1("Gather", {b.Op1("Shape", {ids}), b.Scalar(1)}, {{"axis", Attribute::FromInt(0)}});
  Value* seq_f = b.Op1("Cast", {seq}, {{"to", Attribute::FromInt(static_cast<int64_t>(DataType::kFloat))}});
  int consts = 0;
  auto f = [&](float v) {
    return b.Const("f" + std::to_string(consts++), Tensor::FromVector<float>(DataType::kFloat, {}, {v}));
  };
  Value* pos = b.Op1("Range", {f(0.f), seq_f, f(1.f)});
  Value* from2 = b.Op1("Range", {f(2.f), seq_f, f(1.f)});
  Value* halves = b.Op1("Range", {f(0.f), seq_f, f(0.5f)});
  Value* uncast = b.Op1("Range", {f(0.f), b.Op1("Sqrt", {seq_f}), f(1.f)});
  // float16 holds integers exactly only up to 2048: a cast seq of 2049 would count 2048.
  auto to_half = [&](Value* v) {
    return b.Op1("Cast", {v}, {{"to", Attribute::FromInt(static_cast<int64_t>(DataType::kFloat16))}});
  };
  Value* half = b.Op1("Range", {to_half(f(0.f)), to_half(seq), to_half(f(1.f))});
  for (Value* v : {pos, from2, halves, uncast, half}) b.Output(v);
  ASSERT_TRUE(b.Infer().ok());
  EXPECT_EQ(pos->type.ToString(), "float32[seq]");
  EXPECT_EQ(from2->type.ToString(), "float32[seq-2]");
  EXPECT_EQ(halves->type.ToString(), "float32[?]");
  EXPECT_EQ(uncast->type.ToString(), "float32[?]");
  EXPECT_EQ(half->type.ToString(), "float16[?]");
  // The CPU reference agrees at a concrete length.
  Tensor x(DataType::kInt64, {1, 7});
  for (int64_t i = 0; i < 7; ++i) x.mutable_data<int64_t>()[i] = 0;
  auto out = b.Run({{"ids", RtValue::FromTensor(x)}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ((*out)[0].tensor.dims(), (std::vector<int64_t>{7}));
  EXPECT_EQ((*out)[1].tensor.dims(), (std::vector<int64_t>{5}));
}

TEST(ShapeOpsInfer, SliceSqueezeTransposeSplit) {
  GraphBuilder b(18);
  Value* x = b.Input("x", DataType::kFloat, Shape({Sym("batch"), Sym("seq"), Dim(768)}));
  Value* all = b.Op1("Slice", {x, b.Ints({0}), b.Ints({INT64_MAX}), b.Ints({1})});
  Value* cut = b.Op1("Slice", {x, b.Ints({1, 0}), b.Ints({5, 100}), b.Ints({2, 1})});
  Value* t = b.Op1("Transpose", {x}, {{"perm", Attribute::FromInts({1, 0, 2})}});
  auto parts = b.Op("Split", {x}, {{"axis", Attribute::FromInt(2)}, {"num_outputs", Attribute::FromInt(3)}}, 3);
  Value* u = b.Op1("Unsqueeze", {x, b.Ints({1, -1})});
  Value* sq = b.Op1("Squeeze", {u, b.Ints({1})});
  b.Output(all);
  b.Output(cut);
  b.Output(t);
  b.Output(parts[0]);
  b.Output(sq);
  ASSERT_TRUE(b.Infer().ok());
  EXPECT_EQ(all->shape().ToString(), "[batch,seq,768]");
  EXPECT_EQ(cut->shape().ToString(), "[batch,?,4]");
  EXPECT_EQ(t->shape().ToString(), "[seq,batch,768]");
  EXPECT_EQ(parts[2]->shape().ToString(), "[batch,seq,256]");
  EXPECT_EQ(u->shape().ToString(), "[batch,1,seq,768,1]");
  EXPECT_EQ(sq->shape().ToString(), "[batch,seq,768,1]");
}

TEST(ShapeOpsInfer, AttentionHeadsPattern) {
  // GPT-2 style: split heads with Concat(batch, seq, 12, 64), merge back with
  // Concat(Shape(x)[:-1], 2304), positions from Range(0, seq), causal mask
  // sliced from a constant to [:seq, :seq].
  GraphBuilder b(13);
  Value* x = b.Input("x", DataType::kFloat, Shape({Sym("batch"), Sym("seq"), Dim(768)}));
  Value* shape = b.Op1("Shape", {x});
  Value* bt = b.Op1("Unsqueeze", {b.Op1("Gather", {shape, b.Scalar(0)}), b.Ints({0})});
  Value* seq = b.Op1("Gather", {shape, b.Scalar(1)});
  Value* sq = b.Op1("Unsqueeze", {seq, b.Ints({0})});
  Value* heads = b.Op1("Reshape", {x, b.Op1("Concat", {bt, sq, b.Ints({12, 64})}, {{"axis", Attribute::FromInt(0)}})});
  Value* perm = b.Op1("Transpose", {heads}, {{"perm", Attribute::FromInts({0, 2, 1, 3})}});
  Value* lead = b.Op1("Slice", {shape, b.Ints({0}), b.Ints({-1})});
  Value* wide = b.Op1("Reshape", {b.Op1("Tile", {x, b.Ints({1, 1, 3})}),
                                  b.Op1("Concat", {lead, b.Ints({2304})}, {{"axis", Attribute::FromInt(0)}})});
  auto qkv = b.Op("Split", {wide, b.Ints({768, 768, 768})}, {{"axis", Attribute::FromInt(2)}}, 3);
  Value* pos = b.Op1("Range", {b.Scalar(0), seq, b.Scalar(1)});
  Value* posb = b.Op1(
      "Expand", {b.Op1("Unsqueeze", {pos, b.Ints({0})}), b.Op1("Concat", {bt, sq}, {{"axis", Attribute::FromInt(0)}})});
  Value* mask = b.Op1("Slice", {b.Const("bias", Tensor(DataType::kBool, {1, 1, 64, 64})), b.Ints({0, 0}),
                                b.Op1("Concat", {sq, sq}, {{"axis", Attribute::FromInt(0)}}), b.Ints({2, 3})});
  auto halves = b.Op("Split", {shape}, {{"axis", Attribute::FromInt(0)}, {"num_outputs", Attribute::FromInt(3)}}, 3);
  for (Value* v : {perm, qkv[2], posb, mask}) b.Output(v);
  ASSERT_TRUE(b.Infer().ok());
  EXPECT_EQ(perm->shape().ToString(), "[batch,12,seq,64]");
  EXPECT_EQ(qkv[2]->shape().ToString(), "[batch,seq,768]");
  EXPECT_EQ(posb->type.ToString(), "int64[batch,seq]");
  EXPECT_EQ(mask->type.ToString(), "bool[1,1,seq,seq]");
  ASSERT_TRUE(halves[1]->sym_data.has_value());
  EXPECT_EQ(Shape(*halves[1]->sym_data).ToString(), "[seq]");
  ASSERT_TRUE(halves[2]->data.has_value());  // fully known: a constant
  EXPECT_EQ(halves[2]->data->IntAt(0), 768);
}

TEST(ShapeOpsInfer, KvCachePattern) {
  // Decoder step with a KV cache: keys = Concat(past, new) along the sequence
  // axis, positions = Range(past_len, total_len), mask rows [past:past+seq]
  // of a constant buffer, last token x[:, -1:], shifted logits x[:, :-1].
  GraphBuilder b(13);
  Value* past = b.Input("past", DataType::kFloat, Shape({Sym("batch"), Dim(12), Sym("past"), Dim(64)}));
  Value* k = b.Input("k", DataType::kFloat, Shape({Sym("batch"), Dim(12), Sym("seq"), Dim(64)}));
  Value* keys = b.Op1("Concat", {past, k}, {{"axis", Attribute::FromInt(2)}});
  Value* past_len = b.Op1("Gather", {b.Op1("Shape", {past}), b.Scalar(2)});
  Value* total_len = b.Op1("Gather", {b.Op1("Shape", {keys}), b.Scalar(2)});
  Value* pos = b.Op1("Range", {past_len, total_len, b.Scalar(1)});
  Value* mask = b.Op1("Slice", {b.Const("mask", Tensor(DataType::kBool, {1, 1, 1024, 1024})),
                                b.Op1("Unsqueeze", {past_len, b.Ints({0})}),
                                b.Op1("Unsqueeze", {total_len, b.Ints({0})}), b.Ints({2})});
  Value* x = b.Input("x", DataType::kFloat, Shape({Sym("batch"), Sym("seq"), Dim(768)}));
  Value* last = b.Op1("Slice", {x, b.Ints({-1}), b.Ints({INT64_MAX}), b.Ints({1})});
  Value* shifted = b.Op1("Slice", {x, b.Ints({0}), b.Ints({-1}), b.Ints({1})});
  Value* tail = b.Op1("Slice", {x, b.Ints({1}), b.Ints({INT64_MAX}), b.Ints({1})});
  Value* unsure = b.Op1("Slice", {x, b.Ints({0}), b.Ints({5}), b.Ints({1})});  // min(seq, 5)
  for (Value* v : {pos, mask, last, shifted, tail, unsure}) b.Output(v);
  ASSERT_TRUE(b.Infer().ok());
  EXPECT_EQ(keys->shape().ToString(), "[batch,12,past+seq,64]");
  EXPECT_EQ(pos->shape().ToString(), "[seq]");
  EXPECT_EQ(mask->shape().ToString(), "[1,1,seq,1024]");
  EXPECT_EQ(last->shape().ToString(), "[batch,1,768]");
  EXPECT_EQ(shifted->shape().ToString(), "[batch,seq-1,768]");
  EXPECT_EQ(tail->shape().ToString(), "[batch,seq-1,768]");
  EXPECT_EQ(unsure->shape().ToString(), "[batch,?,768]");
}

TEST(ShapeOpsInfer, SymbolicSums) {
  using shape_ops::SymAdd;
  using shape_ops::SymSub;
  EXPECT_EQ(SymSub(Sym("past+seq"), Sym("past")).ToString(), "seq");
  EXPECT_EQ(SymSub(Sym("seq"), Sym("seq-1")).ToString(), "1");
  EXPECT_EQ(SymSub(Sym("a*b"), Sym("b*a")).ToString(), "0");
  EXPECT_EQ(SymAdd(Sym("seq-1"), Dim(1)).ToString(), "seq");
  EXPECT_EQ(SymSub(Sym("batch*seq*2"), Sym("seq*batch")).ToString(), "batch*seq");
  EXPECT_TRUE(SymSub(Dim(1), Dim(3)).unknown());
  EXPECT_EQ(SymSub(Sym("a"), Sym("b")).ToString(), "a-b");
}

TEST(ShapeOpsInfer, ErrorsNameTheNode) {
  GraphBuilder b(13);
  Value* x = b.Input("x", DataType::kFloat, Shape::Of({2, 3}));
  b.Output(b.Op1("Reshape", {x, b.Ints({4, 2})}));
  Status s = b.Infer();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("Reshape"), std::string::npos) << s.message();
}

TEST(ShapeOpsInfer, SymbolicProducts) {
  using shape_ops::ExactDiv;
  using shape_ops::Product;
  EXPECT_EQ(Product({Sym("batch"), Dim(3), Sym("seq"), Dim(4)}).ToString(), "batch*seq*12");
  EXPECT_EQ(ExactDiv(Product({Sym("batch"), Dim(3), Dim(224)}), Sym("batch")).ToString(), "672");
  EXPECT_EQ(ExactDiv(Sym("batch*seq*12"), Dim(4)).ToString(), "batch*seq*3");
  EXPECT_TRUE(ExactDiv(Sym("batch"), Dim(2)).unknown());
  EXPECT_TRUE(ExactDiv(Sym("batch"), Sym("seq")).unknown());
}

// ---- CPU reference ----

std::vector<float> Floats(const Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = static_cast<float>(t.ScalarAt(i));
  return v;
}

Tensor Iota(std::vector<int64_t> dims) {
  Tensor t(DataType::kFloat, std::move(dims));
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = static_cast<float>(i);
  return t;
}

TEST(ShapeOpsRun, ReshapeFromSymbolicChain) {
  GraphBuilder b(13);
  Value* x = b.Input("x", DataType::kFloat, Shape({Sym("batch"), Dim(2), Dim(3)}));
  Value* shape = b.Op1("Shape", {x});
  Value* batch = b.Op1("Gather", {shape, b.Scalar(0)});
  Value* target =
      b.Op1("Concat", {b.Op1("Unsqueeze", {batch, b.Ints({0})}), b.Ints({-1})}, {{"axis", Attribute::FromInt(0)}});
  b.Output(b.Op1("Reshape", {x, target}));
  ASSERT_TRUE(b.Infer().ok());
  auto r = b.Run({{"x", RtValue::FromTensor(Iota({4, 2, 3}))}});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)[0].tensor.dims(), (std::vector<int64_t>{4, 6}));
}

TEST(ShapeOpsRun, TransposeSliceNegativeStep) {
  GraphBuilder b(13);
  Value* x = b.Input("x", DataType::kFloat, Shape::Of({2, 3}));
  b.Output(b.Op1("Transpose", {x}));
  b.Output(b.Op1("Slice", {x, b.Ints({-1, 10}), b.Ints({-100, -10}), b.Ints({1, 0}), b.Ints({-1, -2})}));
  ASSERT_TRUE(b.Infer().ok());
  auto r = b.Run({{"x", RtValue::FromTensor(Iota({2, 3}))}});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(Floats((*r)[0].tensor), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ((*r)[1].tensor.dims(), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(Floats((*r)[1].tensor), (std::vector<float>{5, 4, 3}));
}

TEST(ShapeOpsRun, PadModes) {
  const std::map<std::string, std::vector<float>> want = {
      {"constant", {9, 0, 1, 2, 9, 9}},
      {"reflect", {1, 0, 1, 2, 1, 0}},
      {"edge", {0, 0, 1, 2, 2, 2}},
      {"wrap", {2, 0, 1, 2, 0, 1}},
  };
  for (const auto& [mode, expect] : want) {
    GraphBuilder b(19);
    Value* x = b.Input("x", DataType::kFloat, Shape::Of({3}));
    Value* y =
        b.Op1("Pad", {x, b.Ints({1, 2}), b.Const("v", Tensor::Scalar(9.0f))}, {{"mode", Attribute::FromString(mode)}});
    b.Output(y);
    ASSERT_TRUE(b.Infer().ok());
    EXPECT_EQ(y->shape().ToString(), "[6]");
    auto r = b.Run({{"x", RtValue::FromTensor(Iota({3}))}});
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(Floats((*r)[0].tensor), expect) << mode;
  }
}

TEST(ShapeOpsRun, ConcatAndGatherStrings) {
  GraphBuilder b(13);
  Tensor s(DataType::kString, {2});
  s.mutable_strings() = {"a", "b"};
  Value* x = b.Input("x", DataType::kString, Shape::Of({2}));
  Value* c = b.Op1("Concat", {x, b.Const("s", s)}, {{"axis", Attribute::FromInt(0)}});
  b.Output(b.Op1("Gather", {c, b.Ints({3, -4})}));
  ASSERT_TRUE(b.Infer().ok());
  Tensor in(DataType::kString, {2});
  in.mutable_strings() = {"x", "y"};
  auto r = b.Run({{"x", RtValue::FromTensor(in)}});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)[0].tensor.strings(), (std::vector<std::string>{"b", "x"}));
}

TEST(ShapeOpsRun, UniqueUnsortedOrder) {
  GraphBuilder b(11);
  Value* x = b.Input("x", DataType::kFloat, Shape::Of({6}));
  auto outs = b.Op("Unique", {x}, {{"sorted", Attribute::FromInt(0)}}, 4);
  for (Value* v : outs) b.Output(v);
  ASSERT_TRUE(b.Infer().ok());
  Tensor in = Tensor::FromVector<float>(DataType::kFloat, {6}, {2, 1, 1, 3, 4, 3});
  auto r = b.Run({{"x", RtValue::FromTensor(in)}});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(Floats((*r)[0].tensor), (std::vector<float>{2, 1, 3, 4}));
  EXPECT_EQ((*r)[1].tensor.ToInt64s(), (std::vector<int64_t>{0, 1, 3, 4}));
  EXPECT_EQ((*r)[2].tensor.ToInt64s(), (std::vector<int64_t>{0, 1, 1, 2, 3, 2}));
  EXPECT_EQ((*r)[3].tensor.ToInt64s(), (std::vector<int64_t>{1, 2, 2, 1}));
}

TEST(ShapeOpsRun, ScatterNDReductionAndIndexErrors) {
  GraphBuilder b(18);
  Value* x = b.Input("x", DataType::kFloat, Shape::Of({4}));
  Value* idx = b.Const("i", Tensor::FromVector<int64_t>(DataType::kInt64, {2, 1}, {1, 1}));
  Value* upd = b.Const("u", Tensor::FromVector<float>(DataType::kFloat, {2}, {5, 6}));
  b.Output(b.Op1("ScatterND", {x, idx, upd}, {{"reduction", Attribute::FromString("add")}}));
  ASSERT_TRUE(b.Infer().ok());
  auto r = b.Run({{"x", RtValue::FromTensor(Iota({4}))}});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(Floats((*r)[0].tensor), (std::vector<float>{0, 12, 2, 3}));

  GraphBuilder bad(13);
  Value* y = bad.Input("y", DataType::kFloat, Shape::Of({3}));
  bad.Output(bad.Op1("Gather", {y, bad.Ints({3})}));
  auto e = bad.Run({{"y", RtValue::FromTensor(Iota({3}))}});
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("out of range"), std::string::npos) << e.status().message();
}

TEST(ShapeOpsRun, BadInputsAreErrorsNotCrashes) {
  GraphBuilder b(13);
  Value* x = b.Input("x", DataType::kFloat, Shape::Of({2, 3}));
  Value* s = b.Input("s", DataType::kInt64, Shape::Of({2}));
  b.Output(b.Op1("Expand", {x, s}));
  auto r = b.Run({{"x", RtValue::FromTensor(Iota({2, 3}))},
                  {"s", RtValue::FromTensor(Tensor::Int64s({-1, INT64_MAX}))}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("negative"), std::string::npos) << r.status().message();

  GraphBuilder big(13);
  Value* y = big.Input("y", DataType::kFloat, Shape::Of({1}));
  Value* t = big.Input("t", DataType::kInt64, Shape::Of({2}));
  big.Output(big.Op1("Reshape", {y, t}));
  r = big.Run({{"y", RtValue::FromTensor(Tensor(DataType::kFloat, {0}))},
               {"t", RtValue::FromTensor(Tensor::Int64s({int64_t{1} << 32, int64_t{1} << 32}))}});
  ASSERT_FALSE(r.ok());  // the product overflows: must not pass as 0 elements

  GraphBuilder missing(13);
  Value* z = missing.Input("z", DataType::kFloat, Shape::Of({3}));
  missing.Output(missing.Op1("Gather", {z}));
  r = missing.Run({{"z", RtValue::FromTensor(Iota({3}))}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("required"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace kiln
