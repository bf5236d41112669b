// The kiln CLI's subcommands. Each lives in its own file (tools/kiln/<name>.cc)
// and has one entry point here: Add<Name>Command registers the subcommand and
// its flags on the top-level app and returns a Command whose `run` main.cc
// calls when that subcommand was given on the command line.
//
// Conventions every subcommand follows (see cli_util.h for helpers):
//   - errors: one line "kiln <cmd>: error: <message>" on stderr, exit code 1;
//   - never crash or throw on bad input (missing files, bad flags, bad models).
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace kiln::cli {

struct Command {
  CLI::App* app = nullptr;    // the CLI11 subcommand (options bound to it)
  std::function<int()> run;   // runs the parsed command; returns the exit code
};

// kiln inspect MODEL [--json] [--ir] [--shapes NAME:1x3x224x224,...]
Command AddInspectCommand(CLI::App& app);
// kiln run MODEL --backend cpu [--input NAME=FILE.npy]... [--random --seed N] [--shapes ...] --output-dir DIR
Command AddRunCommand(CLI::App& app);
// kiln conformance DIR [--filter SUBSTR] [--json FILE] [--markdown FILE] [--jobs N] [--min-pass-rate X]
Command AddConformanceCommand(CLI::App& app);

}  // namespace kiln::cli
