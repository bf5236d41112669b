// Deterministic builds (issue 11): the same ONNX model and flags give the same
// bytes. What the CPU can check: the build passes and, with CUDA compiled in,
// the generated kernels (NVRTC for sm_90, no GPU needed), encoded with the
// plan's IR codec (the plan's 'graph' and 'weights' sections), twice from two
// separate loads, so anything ordered by pointers or hash-table iteration
// shows up. The whole plan, tactics included, is compared on the GPU
// (tests/gpu/build_determinism_gpu_test.cc).
#include <gtest/gtest.h>

#include "build/build_passes.h"
#include "fixtures.h"
#include "onnx/import.h"
#include "passes/shape_inference.h"
#include "plan/ir_codec.h"
#ifdef KILN_HAS_CUDA
#include "build/cuda/nvrtc_compile.h"
#endif

namespace kiln {
namespace {

struct Built {
  EncodedModel encoded;
  int generated = 0;  // kiln.Pointwise nodes (with a cubin when CUDA is compiled in)
};

Expected<Built> BuildAndEncode(const std::string& path, const BuildOptions& opts) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Model> m, LoadModel(path));
  KILN_RETURN_IF_ERROR(InferShapes(*m));
  std::vector<std::string> notes;
  KILN_RETURN_IF_ERROR(RunBuildPasses(*m, opts, &notes));
#ifdef KILN_HAS_CUDA
  cuda::KernelCache cache;
  KILN_RETURN_IF_ERROR(cuda::CompilePointwiseKernels(*m, 90, cache));
#endif
  Built b;
  for (const Node* n : m->graph->nodes()) {
    if (n->op_type != "Pointwise") continue;
#ifdef KILN_HAS_CUDA
    if (!n->attr("cubin") || n->attr("cubin")->s.empty()) return Internal(n->Label() + " has no cubin");
#endif
    ++b.generated;
  }
  b.encoded = EncodeModel(*m);
  return b;
}

// The first byte where a and b differ, with some context, for the failure message.
std::string FirstDifference(const std::string& a, const std::string& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  auto around = [&](const std::string& s) {
    std::string out;
    for (size_t k = i >= 48 ? i - 48 : 0; k < s.size() && k < i + 48; ++k)
      out += (s[k] >= 32 && s[k] < 127) ? s[k] : '.';
    return out;
  };
  return "sizes " + std::to_string(a.size()) + " and " + std::to_string(b.size()) +
         ", first difference at byte " + std::to_string(i) + ":\n  " + around(a) + "\n  " + around(b);
}

// `generated`: the build makes kiln.Pointwise kernels (BERT's norms and GELU
// tails; the CNNs' elementwise ops all go into conv epilogues).
void ExpectSameBytesTwice(const std::string& name, bool fp16, bool generated) {
  SCOPED_TRACE(name + (fp16 ? " fp16" : " fp32"));
  BuildOptions opts;
  opts.fp16 = fp16;
  const std::string path = fixtures::ZooModel(name);
  auto a = BuildAndEncode(path, opts);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto b = BuildAndEncode(path, opts);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  if (generated) {
    EXPECT_GT(a->generated, 0) << "no generated kernel: the comparison would not cover them";
  }
  const EncodedModel& ea = a->encoded;
  const EncodedModel& eb = b->encoded;
  EXPECT_TRUE(ea.graph == eb.graph) << "graph section: " << FirstDifference(ea.graph, eb.graph);
  EXPECT_TRUE(ea.weights == eb.weights) << "weights section: " << FirstDifference(ea.weights, eb.weights);
  // The comparison can fail: other flags give other bytes.
  opts.fp16 = !fp16;
  auto c = BuildAndEncode(path, opts);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_NE(ea.graph, c->encoded.graph);
}

TEST(DeterministicBuild, BertEncoderOpset13Fp16) { ExpectSameBytesTwice("bert_encoder_opset13", true, true); }
TEST(DeterministicBuild, BertEncoderFp32) { ExpectSameBytesTwice("bert_encoder", false, true); }
TEST(DeterministicBuild, Resnet50Fp16) { ExpectSameBytesTwice("resnet50", true, false); }
TEST(DeterministicBuild, EfficientnetB0Fp16) { ExpectSameBytesTwice("efficientnet_b0", true, false); }
TEST(DeterministicBuild, MobilenetV2Fp32) { ExpectSameBytesTwice("mobilenet_v2", false, false); }

}  // namespace
}  // namespace kiln
