// metrics.jsonl (writing, truncating on resume) and TensorBoard event files:
// framing, CRCs and the scalar Event protos.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

#include "sslab/host/run_folder.h"
#include "sslab/host/run_log.h"
#include "test_util.h"

namespace {

TEST(RunLog, MetricsLinesAreJsonEvenForKeysWithQuotesAndBackslashes) {
  sslab_test::TempDir dir;
  std::string file = dir / "metrics.jsonl";
  {
    sslab::MetricsWriter w(file);
    w.write(3, {{"loss", 0.125}, {"a\"b\\c", 1.5}, {"bad", NAN}});
    w.write(4, {{"loss", 1.0 / 3.0}});
  }
  std::ifstream in(file);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line.rfind("{\"step\":3,", 0), 0u) << line;  // step first
  nlohmann::json j = nlohmann::json::parse(line);
  EXPECT_EQ(j.at("step").get<int64_t>(), 3);
  EXPECT_EQ(j.at("loss").get<double>(), 0.125);
  EXPECT_EQ(j.at("a\"b\\c").get<double>(), 1.5);
  EXPECT_TRUE(j.at("bad").is_null());
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(nlohmann::json::parse(line).at("loss").get<double>(), 0.333333333);  // 9 significant digits
  EXPECT_FALSE(std::getline(in, line));
  EXPECT_EQ(sslab_test::metric(dir.str(), "a\"b\\c"), std::vector<double>{1.5});
}

// A full disk (/dev/full: every write fails with ENOSPC) is one clear error
// naming the file, for the metrics log and for whole files written atomically.
TEST(RunLog, FailedWritesNameTheFileAndTheReason) {
  sslab::MetricsWriter w("/dev/full");
  std::string msg = sslab_test::user_error([&] { w.write(1, {{"loss", 0.5}}); });
  EXPECT_NE(msg.find("/dev/full: cannot write (No space left on device)"), std::string::npos) << msg;
  sslab_test::TempDir dir;
  msg = sslab_test::user_error([&] { sslab::write_file_atomic(dir / "no/such/folder/eval.json", "{}"); });
  EXPECT_NE(msg.find(dir / "no/such/folder/eval.json: cannot write ("), std::string::npos) << msg;
  EXPECT_FALSE(sslab_test::fs::exists(dir / "no/such/folder/eval.json.tmp"));
}

// On resume, lines after the checkpoint's step go; so do lines that are not
// JSON objects with an integer step (a line half written when the run died).
TEST(RunLog, TruncateMetricsKeepsLinesUpToTheStepAndDropsBrokenOnes) {
  sslab_test::TempDir dir;
  std::string file = dir.write("metrics.jsonl",
                               "{\"step\":5,\"loss\":1}\n"
                               "{\"loss\":2,\"step\":10}\n"
                               "{\"step\":15,\"loss\":3}\n"
                               "{\"step\":10.5}\n"
                               "[1,2]\n"
                               "{\"step\":20,\"lo\n");
  sslab::truncate_metrics(file, 10);
  EXPECT_EQ(sslab_test::read_text(file), "{\"step\":5,\"loss\":1}\n{\"loss\":2,\"step\":10}\n");
  sslab::truncate_metrics(file, 4);
  EXPECT_EQ(sslab_test::read_text(file), "");
}

TEST(Crc32c, KnownValues) {
  // RFC 3720 test vector: 32 bytes of zeros.
  std::string zeros(32, '\0');
  EXPECT_EQ(sslab::crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  EXPECT_EQ(sslab::crc32c("123456789", 9), 0xE3069283u);
}

uint64_t read_varint(const std::string& s, size_t& pos) {
  uint64_t v = 0;
  int shift = 0;
  while (true) {
    auto b = static_cast<unsigned char>(s.at(pos++));
    v |= static_cast<uint64_t>(b & 0x7F) << shift;
    if (!(b & 0x80)) return v;
    shift += 7;
  }
}

TEST(TensorBoard, RecordsHaveValidCrcsAndCarryTheScalars) {
  sslab_test::TempDir dir;
  std::string path;
  {
    sslab::TensorBoardWriter tb(dir.path().string());
    tb.add_scalar("loss", 0.25, 7);
    tb.flush();
    path = tb.path();
  }
  EXPECT_NE(path.find("events.out.tfevents."), std::string::npos);
  std::ifstream in(path, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t pos = 0;
  std::vector<std::string> records;
  while (pos < data.size()) {
    uint64_t len;
    std::memcpy(&len, data.data() + pos, 8);
    uint32_t len_crc, data_crc;
    std::memcpy(&len_crc, data.data() + pos + 8, 4);
    EXPECT_EQ(len_crc, sslab::masked_crc32c(data.data() + pos, 8));
    std::string rec = data.substr(pos + 12, len);
    std::memcpy(&data_crc, data.data() + pos + 12 + len, 4);
    EXPECT_EQ(data_crc, sslab::masked_crc32c(rec.data(), rec.size()));
    records.push_back(rec);
    pos += 12 + len + 4;
  }
  ASSERT_EQ(records.size(), 2u);
  EXPECT_NE(records[0].find("brain.Event:2"), std::string::npos);
  // Second record: wall_time (field 1, fixed64), step (field 2, varint) = 7,
  // summary (field 5) holding tag "loss" and simple_value 0.25f.
  const std::string& ev = records[1];
  size_t p = 0;
  EXPECT_EQ(static_cast<unsigned char>(ev[p]), (1 << 3) | 1);
  p += 9;
  EXPECT_EQ(static_cast<unsigned char>(ev[p++]), (2 << 3) | 0);
  EXPECT_EQ(read_varint(ev, p), 7u);
  EXPECT_EQ(static_cast<unsigned char>(ev[p++]), (5 << 3) | 2);
  EXPECT_NE(ev.find("loss"), std::string::npos);
  float value = 0.25f;
  EXPECT_NE(ev.find(std::string(reinterpret_cast<const char*>(&value), 4)), std::string::npos);
}

}  // namespace
