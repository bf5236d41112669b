// Where the unit tests find their fixtures: the exported model zoo, onnx's
// backend node tests, the kiln CLI and the project's Python. tests/CMakeLists.txt
// compiles the configured paths in (the environment variables KILN_ZOO_DIR,
// KILN_NODE_TESTS_DIR, KILN_BIN and KILN_PYTHON override them) and ctest runs
// the fixture writers first (FIXTURES_SETUP zoo /
// nodetests). A missing fixture is a test failure, never a skip: the only
// skip in the suite is "no CUDA device".
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <regex>
#include <string>

namespace kiln {
namespace fixtures {

inline std::string FromEnv(const char* var, const std::string& fallback) {
  const char* v = std::getenv(var);
  return v && *v ? std::string(v) : fallback;
}

// tests/models/export_zoo.py --calibrate-bn output (fixture "zoo").
inline std::string ZooDir() { return FromEnv("KILN_ZOO_DIR", KILN_ZOO_DIR_DEFAULT); }

// tools/write_node_tests.py output (fixture "nodetests").
inline std::string NodeTestsDir() {
  return FromEnv("KILN_NODE_TESTS_DIR", KILN_NODE_TESTS_DIR_DEFAULT);
}

// Checked-in model files (tests/fixtures/).
inline std::string SourceFixture(const std::string& name) {
  return std::string(KILN_SOURCE_DIR) + "/tests/fixtures/" + name;
}

inline std::string KilnBinary() { return FromEnv("KILN_BIN", KILN_BIN_DEFAULT); }

// The project's Python (tools/install-deps.sh makes .venv with onnx and torch).
inline std::string Python() { return FromEnv("KILN_PYTHON", KILN_PYTHON_DEFAULT); }

// `path` when it exists; otherwise records a failure that says how to make it
// and returns "".
inline std::string Require(const std::string& path, const char* how) {
  if (std::filesystem::exists(path)) return path;
  ADD_FAILURE() << "missing test fixture " << path << " (" << how << ")";
  return "";
}

inline std::string ZooModel(const std::string& name) {
  return Require(ZooDir() + "/" + name + ".onnx",
                 "run the tests through ctest, whose fixture_zoo test writes it, or "
                 "tests/models/export_zoo.py DIR --calibrate-bn with KILN_ZOO_DIR=DIR");
}

inline std::string NodeTests() {
  return Require(NodeTestsDir(),
                 "run the tests through ctest, whose fixture_nodetests test writes it, or "
                 "tools/write_node_tests.py DIR with KILN_NODE_TESTS_DIR=DIR");
}

// A fresh directory for the running test, TEMP/<prefix>_<seed>_<test name>;
// the test removes it in TearDown.
inline std::filesystem::path TestDir(const std::string& prefix) {
  const auto* unit = ::testing::UnitTest::GetInstance();
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              (prefix + "_" + std::to_string(unit->random_seed()) + "_" +
                               unit->current_test_info()->name());
  std::filesystem::create_directories(dir);
  return dir;
}

struct CliResult {
  int rc = -1;
  std::string out;  // stdout and stderr
};

// Runs `kiln ARGS` (the binary under test) with its output captured in DIR.
inline CliResult RunKiln(const std::string& args, const std::string& dir) {
  std::string out_path = dir + "/kiln_out.txt";
  std::string cmd = "'" + KilnBinary() + "' " + args + " > '" + out_path + "' 2>&1";
  int status = std::system(cmd.c_str());
  CliResult r;
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream f(out_path);
  std::stringstream ss;
  ss << f.rdbuf();
  r.out = ss.str();
  return r;
}

// The rel L2 `kiln compare` printed for output `name` ("  NAME TYPE: ... rel L2 X ..."); -1 when absent.
inline double CompareRelL2(const std::string& out, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex("  " + name + " [^\\n]*?rel L2 ([0-9.e+-]+)"))) return -1;
  return std::stod(m[1]);
}

}  // namespace fixtures
}  // namespace kiln
