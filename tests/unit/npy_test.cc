// Tests for the .npy reader/writer (src/io/npy.h).
#include "io/npy.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

namespace kiln {
namespace {

// A .npy file of format `major` with the given header dict and data bytes,
// padded like numpy pads it.
std::string MakeNpy(int major, const std::string& dict, const std::string& data) {
  size_t prefix = major == 1 ? 10 : 12;
  std::string header = dict;
  size_t total = prefix + header.size() + 1;
  header.append((total + 63) / 64 * 64 - total, ' ');
  header.push_back('\n');
  std::string out("\x93NUMPY", 6);
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  size_t n = header.size();
  out.push_back(static_cast<char>(n & 0xff));
  out.push_back(static_cast<char>(n >> 8));
  if (major != 1) out.append(2, '\0');
  return out + header + data;
}

std::string Bytes(const void* p, size_t n) { return std::string(static_cast<const char*>(p), n); }

Expected<Tensor> Parse(const std::string& bytes) { return ParseNpy(bytes.data(), bytes.size(), "x.npy"); }

TEST(Npy, MatchesNumpyBytesFloat16) {
  // np.save of np.array([[1.5,-2],[0.25,65504]], dtype=np.float16)
  const char kData[] =
      "\x00>\x00\xc0\x00"
      "4\xff{";
  std::string file =
      MakeNpy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2), }", std::string(kData, 8));
  ASSERT_EQ(file.size(), 136u);
  auto t = Parse(file);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->dtype(), DataType::kFloat16);
  EXPECT_EQ(t->dims(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(t->ScalarAt(0), 1.5);
  EXPECT_EQ(t->ScalarAt(1), -2.0);
  EXPECT_EQ(t->ScalarAt(3), 65504.0);
  // Writing gives numpy's exact bytes back.
  auto enc = EncodeNpy(*t);
  ASSERT_TRUE(enc.ok());
  EXPECT_EQ(*enc, file);
}

TEST(Npy, RoundTripsEveryDtype) {
  const DataType types[] = {DataType::kBool,      DataType::kInt8,      DataType::kUInt8,  DataType::kInt16,
                            DataType::kUInt16,    DataType::kInt32,     DataType::kUInt32, DataType::kInt64,
                            DataType::kUInt64,    DataType::kFloat16,   DataType::kFloat,  DataType::kDouble,
                            DataType::kComplex64, DataType::kComplex128};
  for (DataType dt : types) {
    Tensor t(dt, {2, 3});
    auto* p = static_cast<uint8_t*>(t.mutable_raw());
    for (size_t i = 0; i < t.nbytes(); ++i)
      p[i] = static_cast<uint8_t>(dt == DataType::kBool ? i % 2 : i * 7 + 1);
    auto enc = EncodeNpy(t);
    ASSERT_TRUE(enc.ok()) << DataTypeName(dt);
    EXPECT_EQ(enc->size() % 64, t.nbytes() % 64) << "data must start on a 64-byte boundary";
    auto back = Parse(*enc);
    ASSERT_TRUE(back.ok()) << DataTypeName(dt) << ": " << back.status().ToString();
    EXPECT_EQ(back->dtype(), dt);
    EXPECT_EQ(back->dims(), t.dims());
    EXPECT_EQ(0, std::memcmp(back->raw(), t.raw(), t.nbytes())) << DataTypeName(dt);
  }
}

TEST(Npy, ScalarAndEmpty) {
  Tensor s = Tensor::Scalar(3.5f);
  auto enc = EncodeNpy(s);
  ASSERT_TRUE(enc.ok());
  EXPECT_NE(enc->find("'shape': ()"), std::string::npos);
  auto back = Parse(*enc);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->rank(), 0);
  EXPECT_EQ(back->ScalarAt(0), 3.5);

  Tensor e(DataType::kInt64, {0, 4});
  enc = EncodeNpy(e);
  ASSERT_TRUE(enc.ok());
  EXPECT_NE(enc->find("'shape': (0, 4)"), std::string::npos);
  back = Parse(*enc);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->dims(), (std::vector<int64_t>{0, 4}));

  Tensor one(DataType::kInt32, {3});
  enc = EncodeNpy(one);
  ASSERT_TRUE(enc.ok());
  EXPECT_NE(enc->find("'shape': (3,)"), std::string::npos);
}

TEST(Npy, Versions2And3) {
  const char kI16[] = "\x00\x00\x01\x00\x02\x00\x03\x00\x04\x00\x05\x00";
  for (int major : {2, 3}) {
    auto t =
        Parse(MakeNpy(major, "{'descr': '<i2', 'fortran_order': False, 'shape': (2, 3), }", Bytes(kI16, 12)));
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_EQ(t->dtype(), DataType::kInt16);
    EXPECT_EQ(t->IntAt(5), 5);
  }
}

TEST(Npy, BigEndianAndBool) {
  const char kBe[] = "\x00\x00\x00\x01\xff\xff\xff\xfe\x00\x00\x00\x03";
  auto t = Parse(MakeNpy(1, "{'descr': '>i4', 'fortran_order': False, 'shape': (3,), }", Bytes(kBe, 12)));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->dtype(), DataType::kInt32);
  EXPECT_EQ(t->IntAt(0), 1);
  EXPECT_EQ(t->IntAt(1), -2);
  EXPECT_EQ(t->IntAt(2), 3);

  auto b = Parse(
      MakeNpy(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", Bytes("\x01\x00\x01", 3)));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->dtype(), DataType::kBool);
  EXPECT_EQ(b->data<uint8_t>()[2], 1);
}

TEST(Npy, UnicodeStrings) {
  Tensor t(DataType::kString, {3});
  t.mutable_strings() = {"a", "h\xc3\xa9llo", ""};
  auto enc = EncodeNpy(t);
  ASSERT_TRUE(enc.ok());
  EXPECT_NE(enc->find("'descr': '<U5'"), std::string::npos);
  EXPECT_EQ(enc->size(), 188u);  // the size numpy writes for np.array(["a","héllo",""])
  auto back = Parse(*enc);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->strings(), t.strings());

  auto s =
      Parse(MakeNpy(1, "{'descr': '|S3', 'fortran_order': False, 'shape': (2,), }", Bytes("ab\0xyz", 6)));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->strings(), (std::vector<std::string>{"ab", "xyz"}));
}

TEST(Npy, HeaderVariants) {
  // Key order, double quotes, no trailing comma, Python 2 longs.
  auto t = Parse(
      MakeNpy(1, "{\"shape\": (2L,), \"fortran_order\": False, \"descr\": \"<f4\"}", std::string(8, '\0')));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->dims(), (std::vector<int64_t>{2}));
  // Fortran order is fine when it is the same layout as C order.
  t = Parse(MakeNpy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 3), }", std::string(12, '\0')));
  EXPECT_TRUE(t.ok()) << t.status().ToString();
}

void ExpectError(const std::string& bytes, const std::string& needle) {
  auto t = Parse(bytes);
  ASSERT_FALSE(t.ok()) << "expected an error containing '" << needle << "'";
  EXPECT_NE(t.status().message().find("x.npy"), std::string::npos) << t.status().message();
  EXPECT_NE(t.status().message().find(needle), std::string::npos) << t.status().message();
}

TEST(Npy, Errors) {
  ExpectError("", "bad magic");
  ExpectError("PK\x03\x04 not npy at all", "bad magic");
  ExpectError(std::string("\x93NUMPY\x01\x00\xff\x00{'descr'", 17), "truncated");
  ExpectError(MakeNpy(4, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", ""), "version 4");
  ExpectError(
      MakeNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", std::string(20, '\0')),
      "truncated data");
  ExpectError(MakeNpy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", std::string(24, '\0')),
              "Fortran");
  ExpectError(MakeNpy(1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", std::string(16, '\0')),
              "object");
  ExpectError(MakeNpy(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", ""),
              "structured");
  ExpectError(MakeNpy(1, "{'descr': '<f4', 'shape': (2,), }", ""), "fortran_order");
  ExpectError(MakeNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1), }", ""), "dimension");
  ExpectError(MakeNpy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,", ""), "header");
  ExpectError(MakeNpy(1, "{'descr': '<m8', 'fortran_order': False, 'shape': (2,), }", std::string(16, '\0')),
              "unsupported dtype");
  ExpectError(MakeNpy(1,
                      "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, "
                      "4611686018427387904), }",
                      ""),
              "too large");
}

TEST(Npy, WriteUnsupportedDtype) {
  Tensor t(DataType::kBFloat16, {2});
  auto enc = EncodeNpy(t);
  ASSERT_FALSE(enc.ok());
  EXPECT_NE(enc.status().message().find("bfloat16"), std::string::npos);
  EXPECT_FALSE(NpyCompatible(DataType::kFloat8E4M3FN));
  EXPECT_TRUE(NpyCompatible(DataType::kFloat16));
}

TEST(Npy, FileRoundTripAndMissingFile) {
  std::string path = std::string(KILN_BINARY_DIR) + "/npy_test_roundtrip.npy";
  Tensor t = Tensor::FromVector<float>(DataType::kFloat, {2, 2}, {1, 2, 3, 4});
  ASSERT_TRUE(WriteNpy(path, t).ok());
  auto back = ReadNpy(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->ScalarAt(3), 4.0);
  std::remove(path.c_str());

  auto missing = ReadNpy("/nonexistent/dir/file.npy");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/dir/file.npy"), std::string::npos);
  Status w = WriteNpy("/nonexistent/dir/out.npy", t);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.message().find("/nonexistent/dir/out.npy"), std::string::npos);
}

}  // namespace
}  // namespace kiln
