#include "model/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "checkpoint_writer.h"
#include "common/status.h"
#include "model/weight_store.h"

namespace llmserve {
namespace {

using testing::TestTensor;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

std::map<std::string, TestTensor> two_tensors() {
  return {{"a", {"F32", {2, 3}, {1, 2, 3, 4, 5, 6}}}, {"b", {"BF16", {2}, {0.5f, -2.0f}}}};
}

TEST(Safetensors, ReadsDtypesShapesAndValues) {
  auto dir = testing::fresh_dir("st_ok");
  auto tensors = two_tensors();
  tensors["c"] = {"F16", {1, 2}, {0.25f, 65504.0f}};
  testing::write_file(dir / "model.safetensors", testing::safetensors_bytes(tensors));
  auto store = WeightStore::open(dir);
  EXPECT_EQ(store.info("a").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(store.load_f32("a", {2, 3}), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(store.load_f32("b", {2}), (std::vector<float>{0.5f, -2.0f}));
  EXPECT_EQ(store.load_f32("c", {1, 2}), (std::vector<float>{0.25f, 65504.0f}));
}

TEST(Safetensors, ShapeMismatchNamesTensorAndFile) {
  auto dir = testing::fresh_dir("st_shape");
  testing::write_file(dir / "model.safetensors", testing::safetensors_bytes(two_tensors()));
  auto store = WeightStore::open(dir);
  auto msg = error_of([&] { store.load_f32("a", {3, 2}); });
  EXPECT_NE(msg.find("tensor 'a'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[2, 3]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[3, 2]"), std::string::npos) << msg;
}

TEST(Safetensors, MissingTensorIsNamed) {
  auto dir = testing::fresh_dir("st_missing_tensor");
  testing::write_file(dir / "model.safetensors", testing::safetensors_bytes(two_tensors()));
  auto store = WeightStore::open(dir);
  auto msg = error_of([&] { store.load_f32("zzz", {1}); });
  EXPECT_NE(msg.find("no tensor 'zzz'"), std::string::npos) << msg;
}

TEST(Safetensors, TruncatedFileIsDetected) {
  auto dir = testing::fresh_dir("st_trunc");
  auto bytes = testing::safetensors_bytes(two_tensors());
  testing::write_file(dir / "model.safetensors", bytes.substr(0, bytes.size() - 3));
  auto msg = error_of([&] { WeightStore::open(dir); });
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tensor '"), std::string::npos) << msg;
  testing::write_file(dir / "model.safetensors", bytes.substr(0, 20));
  msg = error_of([&] { WeightStore::open(dir); });
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  testing::write_file(dir / "model.safetensors", bytes.substr(0, 5));
  msg = error_of([&] { WeightStore::open(dir); });
  EXPECT_NE(msg.find("shorter than 8 bytes"), std::string::npos) << msg;
}

TEST(Safetensors, CorruptHeadersAreRejected) {
  struct Case {
    std::string header;
    std::string expect;
  };
  std::vector<Case> cases = {
      {"not json", "not a JSON object"},
      {"[1,2]", "not a JSON object"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "holds 4 bytes"},
      {R"({"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}})", "unknown dtype"},
      {R"({"a":{"shape":[1],"data_offsets":[0,4]}})", "no dtype"},
      {R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "bad dimension"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", "end < begin"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", "data_offsets"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
       "overlap"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4000]}})", "holds 4000 bytes"},
      {R"({"a":{"dtype":"F32","shape":[1000],"data_offsets":[0,4000]}})", "truncated"},
      {R"({"__metadata__":"x"})", "__metadata__"},
  };
  auto dir = testing::fresh_dir("st_corrupt");
  for (const auto& c : cases) {
    std::string file(8, '\0');
    uint64_t n = c.header.size();
    std::memcpy(file.data(), &n, 8);
    file += c.header + std::string(8, '\0');
    testing::write_file(dir / "model.safetensors", file);
    auto msg = error_of([&] { SafetensorsFile f(dir / "model.safetensors"); });
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.header << " -> " << msg;
    EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
  }
}

TEST(Safetensors, HugeHeaderLengthIsRejected) {
  auto dir = testing::fresh_dir("st_huge");
  std::string file(8, '\xff');
  testing::write_file(dir / "model.safetensors", file + "{}");
  auto msg = error_of([&] { SafetensorsFile f(dir / "model.safetensors"); });
  EXPECT_NE(msg.find("too large"), std::string::npos) << msg;
}

TEST(WeightStore, ShardedIndex) {
  auto dir = testing::fresh_dir("st_sharded");
  testing::write_file(dir / "model-00001-of-00002.safetensors",
                      testing::safetensors_bytes({{"x", {"F32", {1}, {1}}}}));
  testing::write_file(dir / "model-00002-of-00002.safetensors",
                      testing::safetensors_bytes({{"y", {"F32", {1}, {2}}}}));
  nlohmann::json index = {
      {"metadata", {{"total_size", 8}}},
      {"weight_map",
       {{"x", "model-00001-of-00002.safetensors"}, {"y", "model-00002-of-00002.safetensors"}}}};
  testing::write_file(dir / "model.safetensors.index.json", index.dump());
  auto store = WeightStore::open(dir);
  EXPECT_EQ(store.load_f32("y", {1})[0], 2.0f);
  EXPECT_NE(store.file_of("y").string().find("00002"), std::string::npos);

  std::filesystem::remove(dir / "model-00002-of-00002.safetensors");
  auto msg = error_of([&] { WeightStore::open(dir); });
  EXPECT_NE(msg.find("model-00002-of-00002.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
}

TEST(WeightStore, NoWeightsAtAll) {
  auto dir = testing::fresh_dir("st_none");
  auto msg = error_of([&] { WeightStore::open(dir); });
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
  auto missing = error_of([&] { SafetensorsFile f(dir / "nope.safetensors"); });
  EXPECT_NE(missing.find("nope.safetensors"), std::string::npos) << missing;
}

TEST(Half, RoundTripsAndRounds) {
  for (float v :
       {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.333251953125f}) {
    EXPECT_EQ(fp16_to_float(float_to_fp16(v)), v) << v;
  }
  EXPECT_EQ(fp16_to_float(float_to_fp16(1e6f)), INFINITY);
  EXPECT_EQ(fp16_to_float(float_to_fp16(1.0f + 1.0f / 4096)), 1.0f);  // ties to even
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 1.0f / 256)), 1.0f);   // ties to even
  EXPECT_EQ(bf16_to_float(float_to_bf16(3.0f)), 3.0f);
  EXPECT_TRUE(std::isnan(fp16_to_float(float_to_fp16(NAN))));
  // Every fp16 bit pattern survives fp16 -> fp32 -> fp16.
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = fp16_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_fp16(f), h) << h;
  }
}

}  // namespace
}  // namespace llmserve
