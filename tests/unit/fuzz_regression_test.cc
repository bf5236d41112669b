// Inputs the libFuzzer targets (fuzz/) found, each turned into a test of the
// fixed behaviour: a clear Status error (or a clean result), no crash, no huge
// allocation. The raw findings are in fuzz/regressions/<target>/, which
// tools/fuzz.sh also feeds back to the fuzzers.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <string>

#include "io/npy.h"
#include "ir/verifier.h"
#include "onnx/import.h"
#include "ops/misc_image.h"
#include "onnx_test_util.h"
#include "passes/shape_inference.h"
#include "graph_nodes.h"
#include "plan/plan_file.h"
#include "plan/plan_graph.h"
#include "reference/executor.h"

namespace kiln {
namespace {

using namespace testing_onnx;  // NOLINT

bool Has(const Status& s, const std::string& text) { return s.message().find(text) != std::string::npos; }

// fuzz_npy, oom: a zero-width unicode dtype holds no bytes, so a 200-byte file
// asked for 190 M empty strings (6 GB).
TEST(FuzzRegression, NpyZeroWidthStringsAreRejected) {
  for (const char* descr : {"<U0", "|S0"}) {
    std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (2,95477507), }";
    header.resize(118, ' ');
    header += '\n';
    std::string file = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size()) + '\0' + header;
    auto t = ParseNpy(file.data(), file.size(), "f.npy");
    EXPECT_TRUE(Has(t.status(), std::string("zero-width string dtype '") + descr + "'")) << t.status().ToString();
  }
}

// fuzz_onnx_model, UBSan: a Constant node with no outputs, loaded leniently
// (`kiln check`), was folded by shape inference, and the kernel wrote output 0
// of a node that has none.
TEST(FuzzRegression, ConstantWithoutOutputsInLenientLoad) {
  onnx::ModelProto m = SimpleModel();
  auto* g = m.mutable_graph();
  auto* c = AddNode(g, "Constant", {}, {}, "no_output");
  auto* a = c->add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  *a->mutable_t() = FloatTensor("", {2}, {1.f, 2.f});
  std::string bytes = m.SerializeAsString();
  LoadOptions lenient;
  lenient.strict = false;
  auto model = ParseModel(bytes.data(), bytes.size(), ".", lenient);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  (void)CheckModel(**model);
  (void)CheckShapes(**model);  // crashed here
  EXPECT_EQ((*model)->graph->outputs[0]->type.shape.rank(), 2);
}

// Found reading the decoders while fuzzing: an 8-bit BMP whose DIB header size
// is near 2^32 wrapped the 32-bit palette bounds check, and the palette
// pointer went 4 GB past the file.
TEST(FuzzRegression, BmpHugeDibSizeIsABadPalette) {
  std::string bmp(54 + 4 * 4 + 4, '\0');
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) bmp[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  };
  bmp[0] = 'B';
  bmp[1] = 'M';
  put32(10, 54 + 16);       // pixel data offset
  put32(14, 0xFFFFFFF8u);   // DIB header size: 14 + this + 16 wraps to 22 in 32 bits
  put32(18, 2);             // width
  put32(22, 1);             // height
  bmp[28] = 8;              // bits per pixel
  put32(46, 4);             // palette colors
  auto img = image::DecodeImage(reinterpret_cast<const uint8_t*>(bmp.data()), bmp.size());
  EXPECT_TRUE(Has(img.status(), "BMP: bad palette")) << img.status().ToString();
}

std::string ReadRegression(const std::string& target, const std::string& name) {
  return ReadFile(std::string(KILN_SOURCE_DIR) + "/fuzz/regressions/" + target + "/" + name);
}

// fuzz_image, timeout: a 1.6 KB JPEG declaring 216x65499 pixels with 1 KB of
// scan data; the decoder fed zeros past the end (as libjpeg does) and decoded
// all 14 M pixels. Data that ends early is now an error, as in Pillow.
TEST(FuzzRegression, JpegWhoseDataEndsEarlyIsAnError) {
  const std::string jpg = ReadRegression("image", "jpeg_truncated_64mp_timeout");
  ASSERT_EQ(jpg.size(), 1650u);
  auto img = image::DecodeImage(reinterpret_cast<const uint8_t*>(jpg.data()), jpg.size());
  EXPECT_TRUE(Has(img.status(), "JPEG: image data ends early (truncated file)")) << img.status().ToString();
}

// Found reading the decoders while fuzzing: PNG bit depths other than 1, 2, 4
// and 8 were accepted for gray images; depth 0 read a row of 0 bytes past its
// end, depth 3 shifted by a negative amount.
TEST(FuzzRegression, PngInvalidBitDepthsAreRejected) {
  for (int depth : {0, 3, 5, 7}) {
    std::string png("\x89PNG\r\n\x1a\n", 8);
    auto chunk = [&](const std::string& type, const std::string& body) {
      const uint32_t n = static_cast<uint32_t>(body.size());
      for (int i = 3; i >= 0; --i) png += static_cast<char>((n >> (8 * i)) & 0xFF);
      png += type + body + std::string(4, '\0');  // CRC (not checked)
    };
    std::string ihdr(13, '\0');
    ihdr[3] = 3;  // width 3
    ihdr[7] = 1;  // height 1
    ihdr[8] = static_cast<char>(depth);
    chunk("IHDR", ihdr);
    // zlib header, one stored block of 4 bytes: filter 0 and 3 data bytes.
    chunk("IDAT", std::string("\x78\x01\x01\x04\x00\xfb\xff\x00\xff\xff\xff", 11));
    chunk("IEND", "");
    auto img = image::DecodeImage(reinterpret_cast<const uint8_t*>(png.data()), png.size());
    EXPECT_TRUE(Has(img.status(), "PNG: color type 0 with depth " + std::to_string(depth))) << img.status().ToString();
  }
}

// fuzz_onnx_model, UBSan: an ImageDecoder with no inputs and no outputs.
// Shape inference folded it (no inputs: "all constant"; no outputs: nothing
// too large) and the kernel read input 0 past the end. Nodes without outputs
// are not folded now, and a kernel reading an input its node lacks sees an
// undefined tensor that its checks reject; `kiln run` of MatMul, Conv or
// ImageDecoder without inputs crashed the same way.
TEST(FuzzRegression, NodesWithoutInputsOrOutputs) {
  const std::string bytes = ReadRegression("onnx_model", "imagedecoder_without_inputs_outputs");
  for (bool strict : {true, false}) {
    LoadOptions opts;
    opts.strict = strict;
    auto model = ParseModel(bytes.data(), bytes.size(), ".", opts);
    if (strict) {  // its graph output is produced by nothing
      EXPECT_TRUE(Has(model.status(), "'output' is not produced by any node")) << model.status().ToString();
      continue;
    }
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    ShapeInferenceOptions tolerant;
    tolerant.tolerate_errors = true;
    EXPECT_TRUE(InferShapes(**model, tolerant).ok());  // crashed here
    (void)CheckShapes(**model);
  }
  for (const char* op : {"ImageDecoder", "MatMul", "Conv"}) {
    onnx::ModelProto m = SimpleModel(9, 20);
    auto* g = m.mutable_graph();
    g->clear_node();
    g->clear_initializer();
    g->clear_output();
    AddNode(g, op, {}, {"Z"}, "no_inputs");
    g->add_output()->set_name("Z");
    std::string b = m.SerializeAsString();
    auto model = ParseModel(b.data(), b.size(), ".");
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    std::map<std::string, RtValue> inputs;
    inputs["X"] = RtValue::FromTensor(Tensor(DataType::kFloat, {1, 3}));
    auto out = ReferenceExecutor(**model).Run(inputs);
    EXPECT_TRUE(Has(out.status(), std::string("node 'no_inputs' (") + op + ")")) << out.status().ToString();
  }
}

// fuzz_plan: plan graphs that shape inference mishandled, each found with a
// declared dim near 2^57..2^61. Plans now refuse dims above 2^40 when they
// load; the shape inference fixes below matter for ONNX models too.
// - allocation-size-too-big: CenterCropPad's shape and Expand's target inputs
//   declared with ~1e17 values sized a vector. The length must be one per
//   axis; a rank read from a length is bounded (RankFromLength).
// - UBSan: a window (kernel_shape x dilations) whose extent overflowed int64;
//   kernel, strides, dilations and pads are bounded by 2^31.
// - UBSan: Conv's weight channels times group overflowed; the check divides.
// - UBSan: LinearAttention's q_num_heads (2^61) times the value head size
//   overflowed; head counts are bounded (2^16) and the outputs checked.
// The fuzzer also tries each input with its header's size and checksum
// fixed; so do we.
TEST(FuzzRegression, PlanGraphsWithHostileShapesAreErrors) {
  for (const char* name : {"centercroppad_shape_length_oom", "expand_target_length_oom", "window_span_overflow_ubsan",
                           "conv_group_channels_overflow_ubsan", "linear_attention_heads_overflow_ubsan"}) {
    std::string bytes = ReadRegression("plan", name);
    ASSERT_GE(bytes.size(), kPlanHeaderSize) << name;
    const uint64_t payload = bytes.size() - kPlanHeaderSize;
    const uint64_t checksum = PlanChecksum(bytes.data() + kPlanHeaderSize, payload);
    std::memcpy(&bytes[8], &kPlanFormatVersion, 4);  // written at format version 2
    std::memcpy(&bytes[16], &payload, 8);
    std::memcpy(&bytes[24], &checksum, 8);
    auto plan = ParsePlan(bytes.data(), bytes.size());
    ASSERT_TRUE(plan.ok()) << name << ": " << plan.status().ToString();
    // Decoding takes the stored types; the hostile shapes are caught where
    // they are used: by shape inference (a CPU plan's load, inspect, refit).
    auto graph = ParsePlanGraph(*plan);
    EXPECT_FALSE(graph.ok() && InferShapes(**graph).ok()) << name;
  }
}

// The same hostile shapes in a model: shape inference gives a clear error.
TEST(FuzzRegression, HostileDeclaredLengthsAreInferenceErrors) {
  struct Case {
    const char* op;
    std::vector<int64_t> second;  // the declared dims of input 1
    AttributeMap attrs;
    const char* want;
  };
  const Case cases[] = {
      {"Expand", {int64_t{1} << 57}, {}, "more than 4096 dims"},
      {"Reshape", {int64_t{1} << 57}, {}, "more than 4096 dims"},
      {"CenterCropPad", {int64_t{1} << 57}, {}, "one per axis"},
      {"Conv", {480, (int64_t{1} << 61) + 1, 1, 1}, {{"group", Attribute::FromInt(480)}}, "does not match"},
  };
  for (const Case& c : cases) {
    std::unique_ptr<Model> m = testing_ir::NewModel(18);
    testing_ir::Builder b(m->graph.get());
    Value* x = b.Input("x", DataType::kFloat, Shape::Of({1, 3, 4, 4}));
    Value* second = b.Input("s", std::string(c.op) == "Conv" ? DataType::kFloat : DataType::kInt64, Shape::Of(c.second));
    b.Output(b.Op1(c.op, {x, second}, c.attrs));
    Status s = InferShapes(*m);
    EXPECT_TRUE(Has(s, c.want)) << c.op << ": " << s.ToString();
  }
}

}  // namespace
}  // namespace kiln
