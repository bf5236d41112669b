// kiln CLI entry point. Each subcommand lives in its own file.
#include <cstdio>

int main() {
  std::puts("kiln: CLI under construction");
  return 0;
}
