// A plain main() for a libFuzzer target, so the normal (g++, ASan/UBSan) test build replays the
// committed corpus: every file under each argument (a file or a directory, not recursive) is fed
// once to the same LLVMFuzzerTestOneInput the fuzzer calls. A crash, sanitizer report or leak
// fails the test; so does finding no input at all (a mistyped corpus path must not pass).
//
// usage: <target>_regression PATH...
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<std::filesystem::path> inputs_under(const std::filesystem::path& path) {
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_directory(path)) {
    for (const auto& entry : std::filesystem::directory_iterator(path)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
  } else if (std::filesystem::is_regular_file(path)) {
    files.push_back(path);
  }
  return files;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  size_t num_inputs = 0;
  for (int i = 1; i < argc; ++i) {
    const auto files = inputs_under(argv[i]);
    if (files.empty()) {
      std::fprintf(stderr, "%s: no inputs under '%s'\n", argv[0], argv[i]);
      return 1;
    }
    for (const auto& file : files) {
      std::ifstream in(file, std::ios::binary);
      const std::vector<char> bytes{std::istreambuf_iterator<char>(in),
                                    std::istreambuf_iterator<char>()};
      std::printf("%s (%zu bytes)\n", file.c_str(), bytes.size());
      std::fflush(stdout);  // the last name printed is the input that crashed
      // A copy of exactly `size` bytes, as libFuzzer passes, so ASan sees reads past the end.
      std::vector<uint8_t> data(bytes.begin(), bytes.end());
      LLVMFuzzerTestOneInput(data.empty() ? nullptr : data.data(), data.size());
      ++num_inputs;
    }
  }
  std::printf("%zu inputs replayed without a crash\n", num_inputs);
  return 0;
}
