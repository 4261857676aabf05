// Pictures and the report: TensorBoard image summaries (framing, CRCs, PNG
// payloads), the projector files of `sslab eval --projector`, and
// `sslab report` rendered by headless Chromium.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "sslab/host/run_log.h"
#include "test_util.h"

#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

namespace {

namespace fs = std::filesystem;
using sslab_test::run;
using sslab_test::TempDir;

std::string read_bytes(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Width, height and channels of a PNG, decoded; {0,0,0} when it does not decode.
std::array<int, 3> decode_png(const std::string& bytes) {
  int w = 0, h = 0, c = 0;
  unsigned char* pixels = stbi_load_from_memory(reinterpret_cast<const unsigned char*>(bytes.data()),
                                                static_cast<int>(bytes.size()), &w, &h, &c, 0);
  if (!pixels) return {0, 0, 0};
  stbi_image_free(pixels);
  return {w, h, c};
}

// A minimal protobuf reader: the fields of a message, by number (varints as
// their value in text, length-delimited as their bytes).
struct Field {
  int number;
  uint64_t varint = 0;
  std::string bytes;
};
std::vector<Field> fields(const std::string& msg) {
  std::vector<Field> out;
  size_t i = 0;
  auto varint = [&]() {
    uint64_t v = 0;
    for (int shift = 0; i < msg.size() && shift < 64; shift += 7) {
      const auto b = static_cast<unsigned char>(msg[i++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) break;
    }
    return v;
  };
  while (i < msg.size()) {
    const uint64_t key = varint();
    Field f{static_cast<int>(key >> 3)};
    switch (key & 7) {
      case 0: f.varint = varint(); break;
      case 1: i += 8; break;
      case 5: i += 4; break;
      case 2: {
        const uint64_t n = varint();
        if (i + n > msg.size()) throw std::runtime_error("protobuf field runs past the message");
        f.bytes = msg.substr(i, n);
        i += n;
        break;
      }
      default: throw std::runtime_error("unexpected protobuf wire type");
    }
    out.push_back(f);
  }
  return out;
}

struct ImageSummary {
  std::string tag, png;
  uint64_t height = 0, width = 0, channels = 0, step = 0;
};

// Every record of a TensorBoard event file, its framing and both masked
// CRC-32Cs checked; the image summaries found in it.
std::vector<ImageSummary> read_event_images(const std::string& file, int& records) {
  const std::string data = read_bytes(file);
  std::vector<ImageSummary> out;
  size_t at = 0;
  records = 0;
  auto u32 = [&](size_t p) {
    uint32_t v = 0;
    for (int b = 3; b >= 0; --b) v = (v << 8) | static_cast<unsigned char>(data[p + static_cast<size_t>(b)]);
    return v;
  };
  while (at < data.size()) {
    EXPECT_LE(at + 12, data.size()) << "a record header is cut";
    if (at + 12 > data.size()) break;
    uint64_t len = 0;
    for (int b = 7; b >= 0; --b) len = (len << 8) | static_cast<unsigned char>(data[at + static_cast<size_t>(b)]);
    EXPECT_EQ(u32(at + 8), sslab::masked_crc32c(data.data() + at, 8)) << "length CRC of record " << records;
    EXPECT_LE(at + 12 + len + 4, data.size()) << "record " << records << " is cut";
    if (at + 12 + len + 4 > data.size()) break;
    const std::string event = data.substr(at + 12, len);
    EXPECT_EQ(u32(at + 12 + len), sslab::masked_crc32c(event.data(), event.size())) << "data CRC of record " << records;
    at += 12 + len + 4;
    ++records;
    uint64_t step = 0;
    for (const Field& e : fields(event)) {
      if (e.number == 2) step = e.varint;
      if (e.number != 5) continue;
      for (const Field& v : fields(e.bytes)) {
        if (v.number != 1) continue;
        ImageSummary s;
        s.step = step;
        bool image = false;
        for (const Field& f : fields(v.bytes)) {
          if (f.number == 1) s.tag = f.bytes;
          if (f.number != 4) continue;
          image = true;
          for (const Field& g : fields(f.bytes)) {
            if (g.number == 1) s.height = g.varint;
            if (g.number == 2) s.width = g.varint;
            if (g.number == 3) s.channels = g.varint;
            if (g.number == 4) s.png = g.bytes;
          }
        }
        if (image) out.push_back(s);
      }
    }
  }
  return out;
}

std::string train_mae(const TempDir& dir) {
  const std::string out = dir / "mae";
  auto r = run(sslab_test::sslab_cli() + " train " + std::string(SSLAB_SOURCE_DIR) +
               "/recipes/smoke/vision_mae.toml --set train.steps=10 --set log.images_every_steps=5 --set log.every_steps=5 --out " + out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return out;
}

// The MAE objective draws its reconstructions every log.images_every_steps
// and at the end: PNG files in RUN/images/ and image summaries in the event
// file whose framing and CRCs are right and whose payloads decode as PNGs of
// the size the summary states.
TEST(Pictures, TensorBoardImagesAndProjectorFiles) {
  TempDir dir;
  const std::string mae = train_mae(dir);
  for (const char* step : {"000000005", "000000010"}) {
    const std::string png = read_bytes(mae + "/images/vision.mae-reconstruction-step-" + step + ".png");
    auto [w, h, c] = decode_png(png);
    // 8 images of 28 x 28 in 3 rows (image, what the encoder saw, reconstruction) with 2-pixel gaps.
    EXPECT_EQ(w, 8 * 30 + 2) << step;
    EXPECT_EQ(h, 3 * 30 + 2) << step;
    EXPECT_EQ(c, 1) << step;
  }
  std::vector<fs::path> events;
  for (const auto& e : fs::directory_iterator(mae + "/tensorboard"))
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) events.push_back(e.path());
  ASSERT_EQ(events.size(), 1u);
  int records = 0;
  std::vector<ImageSummary> images = read_event_images(events[0].string(), records);
  EXPECT_GT(records, 4);
  ASSERT_EQ(images.size(), 2u);
  EXPECT_EQ(images[0].step, 5u);
  EXPECT_EQ(images[1].step, 10u);
  for (const auto& s : images) {
    EXPECT_EQ(s.tag, "vision.mae/reconstruction");
    auto [w, h, c] = decode_png(s.png);
    EXPECT_EQ(static_cast<uint64_t>(w), s.width);
    EXPECT_EQ(static_cast<uint64_t>(h), s.height);
    EXPECT_EQ(static_cast<uint64_t>(c), s.channels);
    EXPECT_GT(w, 0);
  }

  // Projector files of the first 64 test images.
  auto r = run(sslab_test::sslab_cli() + " eval " + mae + " --projector 64");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string config = sslab_test::read_text(mae + "/tensorboard/projector_config.pbtxt");
  EXPECT_NE(config.find("tensor_name: \"image\""), std::string::npos) << config;
  EXPECT_NE(config.find("tensor_path: \"projector/image/tensors.tsv\""), std::string::npos) << config;
  EXPECT_NE(config.find("metadata_path: \"projector/image/metadata.tsv\""), std::string::npos) << config;
  EXPECT_NE(config.find("single_image_dim: 28"), std::string::npos) << config;
  std::istringstream tensors(sslab_test::read_text(mae + "/tensorboard/projector/image/tensors.tsv"));
  std::string line;
  int rows = 0;
  while (std::getline(tensors, line)) {
    ++rows;
    EXPECT_EQ(std::count(line.begin(), line.end(), '\t'), 63) << "row " << rows;  // dim 64
  }
  EXPECT_EQ(rows, 64);
  std::istringstream metadata(sslab_test::read_text(mae + "/tensorboard/projector/image/metadata.tsv"));
  std::getline(metadata, line);
  EXPECT_EQ(line, "index\tlabel");
  rows = 0;
  while (std::getline(metadata, line)) ++rows;
  EXPECT_EQ(rows, 64);
  auto [w, h, c] = decode_png(read_bytes(mae + "/tensorboard/projector/image/sprite.png"));
  EXPECT_EQ(w, 8 * 28);
  EXPECT_EQ(h, 8 * 28);
}

// `sslab report` of a run: one HTML file with no external resource, which
// headless Chromium loads with no console error, its charts, tables,
// pictures and embedding map present, and renders to a screenshot.
TEST(Report, RendersInChromiumWithoutErrors) {
  const char* chromium = "/usr/bin/chromium";
  if (!fs::exists(chromium)) GTEST_SKIP() << "chromium is not installed (tools/setup.sh installs it)";
  TempDir dir;
  const std::string mae = train_mae(dir);
  const std::string page = dir / "report.html";
  auto r = run(sslab_test::sslab_cli() + " report " + mae + " --embeddings 200 --out " + page);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string text = sslab_test::read_text(page);
  for (const char* external : {"src=\"http", "href=\"http", "src=\"//", "<link ", "@import", "url(http"})
    EXPECT_EQ(text.find(external), std::string::npos) << "the page loads something from outside: " << external;
  const std::string flags = std::string(chromium) +
                            " --headless --no-sandbox --disable-gpu --no-first-run --disable-extensions "
                            "--enable-logging=stderr --v=0 --virtual-time-budget=3000 ";
  auto dom = run(flags + "--dump-dom file://" + page + " 2>" + dir / "dom.err");
  ASSERT_EQ(dom.exit_code, 0) << sslab_test::read_text(dir / "dom.err");
  const std::string log = sslab_test::read_text(dir / "dom.err");
  EXPECT_EQ(log.find(":CONSOLE("), std::string::npos) << "console messages:\n" << log;
  EXPECT_NE(dom.out.find("data-ready=\"1\""), std::string::npos) << "the page's script did not run";
  EXPECT_EQ(dom.out.find("data-errors=\""), std::string::npos) << "script errors in the page";
  auto attribute = [&](const std::string& name) {
    const std::string key = name + "=\"";
    auto at = dom.out.find(key);
    return at == std::string::npos ? -1 : std::stoi(dom.out.substr(at + key.size()));
  };
  EXPECT_GE(attribute("data-charts"), 5);  // loss, mse_masked, ..., monitors, the map
  EXPECT_GE(attribute("data-tables"), 1);
  EXPECT_GE(attribute("data-images"), 1);
  EXPECT_NE(dom.out.find("<table id=\"results\">"), std::string::npos);
  EXPECT_NE(dom.out.find("monitor/image/std_ratio"), std::string::npos);
  EXPECT_NE(dom.out.find("class=\"chart map\""), std::string::npos);
  const std::string shot = dir / "report.png";
  auto s = run(flags + "--window-size=1280,2400 --screenshot=" + shot + " file://" + page + " 2>/dev/null");
  ASSERT_EQ(s.exit_code, 0);
  auto [w, h, c] = decode_png(read_bytes(shot));
  EXPECT_EQ(w, 1280);
  EXPECT_EQ(h, 2400);
  if (const char* keep = std::getenv("SSLAB_REPORT_SCREENSHOT")) fs::copy_file(shot, keep, fs::copy_options::overwrite_existing);
}

// A cross-modal run's report shows retrieval examples: spoken sentences as
// players beside the sentences retrieved for them, decoded from their tokens.
TEST(Report, CrossModalRunsShowRetrievalExamples) {
  const char* chromium = "/usr/bin/chromium";
  if (!fs::exists(chromium)) GTEST_SKIP() << "chromium is not installed (tools/setup.sh installs it)";
  TempDir dir;
  auto r = run(sslab_test::sslab_cli() + " train " + std::string(SSLAB_SOURCE_DIR) +
               "/recipes/smoke/clip_audio_text.toml --set train.steps=10 --out " + dir / "clip");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string page = dir / "clip.html";
  r = run(sslab_test::sslab_cli() + " report " + dir / "clip" + " --out " + page);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string text = sslab_test::read_text(page);
  EXPECT_NE(text.find("<h2>Retrieval examples</h2>"), std::string::npos);
  size_t players = 0;
  for (size_t at = text.find("<audio"); at != std::string::npos; at = text.find("<audio", at + 1)) ++players;
  EXPECT_EQ(players, 4u);  // four queries
  EXPECT_NE(text.find("<span class=\"text\">"), std::string::npos);
  EXPECT_NE(text.find("data:audio/wav;base64,UklGR"), std::string::npos);  // "RIFF"
  auto dom = run(std::string(chromium) + " --headless --no-sandbox --disable-gpu --enable-logging=stderr --v=0 "
                 "--virtual-time-budget=3000 --dump-dom file://" + page + " 2>" + dir / "dom.err");
  ASSERT_EQ(dom.exit_code, 0);
  EXPECT_EQ(sslab_test::read_text(dir / "dom.err").find(":CONSOLE("), std::string::npos);
  EXPECT_NE(dom.out.find("data-ready=\"1\""), std::string::npos);
}

}  // namespace
