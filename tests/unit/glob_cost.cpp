// zctls_glob_cost PATTERN SEGMENTS LENGTH: compiles PATTERN and matches it
// once against a path of SEGMENTS segments of LENGTH 'a's each; with the
// pattern "-", only builds the path (the baseline to subtract).  Run under
// callgrind by tests/integration/glob-linear, which checks that the
// instruction count grows linearly with the path for hostile patterns.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "zctls/glob.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s PATTERN SEGMENTS LENGTH\n", argv[0]);
    return 2;
  }
  const long segments = std::atol(argv[2]), length = std::atol(argv[3]);
  std::string path;
  for (long i = 0; i < segments; ++i)
    path += "/" + std::string(static_cast<std::size_t>(length), 'a');
  if (std::string(argv[1]) == "-") return path.empty() ? 0 : path[0] != '/';
  zctls::Glob glob;
  std::string error;
  int column = 0;
  if (!zctls::Glob::compile(argv[1], &glob, &error, &column)) {
    std::fprintf(stderr, "bad pattern: %s at column %d\n", error.c_str(), column);
    return 2;
  }
  std::printf("%s\n", glob.matches(path) ? "match" : "no match");
  return 0;
}
