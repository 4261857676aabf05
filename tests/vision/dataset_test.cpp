// Fashion-MNIST IDX reading (real files, and broken copies of them) and the
// image-folder dataset, built through the loaded plugin.
#include <zlib.h>

#include <stb/stb_image_write.h>

#include "image_folder.h"
#include "vision_test_util.h"

namespace fs = std::filesystem;
using vision_test::Env;
using vision_test::TempDir;
using vision_test::user_error;

namespace {

const std::string kFmnist = "/usr/share/datasets/fashion-mnist";

// The whole decompressed content of a .gz file, read with zlib directly.
std::vector<unsigned char> gunzip(const std::string& file) {
  std::vector<unsigned char> out;
  gzFile f = gzopen(file.c_str(), "rb");
  if (!f) return out;
  unsigned char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  gzclose(f);
  return out;
}

void gzip_to(const std::string& file, const std::vector<unsigned char>& data, size_t n) {
  gzFile f = gzopen(file.c_str(), "wb");
  ASSERT_TRUE(f);
  gzwrite(f, data.data(), static_cast<unsigned>(n));
  gzclose(f);
}

std::string fmnist_recipe(const std::string& root, const std::string& split = "train") {
  return "[data.train]\ntype = \"vision.fashion_mnist\"\nroot = \"" + root + "\"\nsplit = \"" + split + "\"\n";
}

// The error of building Fashion-MNIST from `root`.
std::string fmnist_error(const std::string& root) {
  Env env(fmnist_recipe(root));
  return user_error([&] { env.dataset("train"); });
}

}  // namespace

TEST(FashionMnist, TrainAndTestSplitsMatchTheFiles) {
  Env env(fmnist_recipe(kFmnist) + "\n[data.test]\ntype = \"vision.fashion_mnist\"\nsplit = \"test\"\n");
  auto train = env.dataset("train");
  EXPECT_EQ(train->size(), 60000);
  EXPECT_EQ(train->num_classes(), 10);
  EXPECT_EQ(env.dataset("test")->size(), 10000);

  // Sample 0 against the raw bytes: label at offset 8, pixels from offset 16.
  auto labels = gunzip(kFmnist + "/train-labels-idx1-ubyte.gz");
  auto images = gunzip(kFmnist + "/train-images-idx3-ubyte.gz");
  ASSERT_EQ(labels.size(), 60008u);
  ASSERT_EQ(images.size(), 47040016u);
  for (int64_t i : {int64_t{0}, int64_t{1}, int64_t{59999}}) {
    sslab::Sample s = train->get(i);
    torch::Tensor label = s.at("label");
    EXPECT_EQ(label.dim(), 0);
    EXPECT_EQ(label.scalar_type(), torch::kInt64);
    EXPECT_EQ(label.item<int64_t>(), labels[8 + i]);
    torch::Tensor image = s.at("image");
    ASSERT_EQ(image.sizes(), (std::vector<int64_t>{1, 28, 28}));
    EXPECT_EQ(image.scalar_type(), torch::kFloat32);
    torch::Tensor raw = torch::from_blob(images.data() + 16 + i * 784, {1, 28, 28}, torch::kUInt8);
    EXPECT_TRUE(torch::allclose(image, raw.to(torch::kFloat32) / 255.0));
  }
  EXPECT_EQ(train->get(0).at("label").item<int64_t>(), 9);  // the first training image is an ankle boot
}

TEST(FashionMnist, MissingFileIsAClearError) {
  TempDir dir;
  std::string msg = fmnist_error(dir.str());
  EXPECT_NE(msg.find("missing IDX file: neither " + dir.str() + "/train-images-idx3-ubyte nor " + dir.str() +
                     "/train-images-idx3-ubyte.gz exists"),
            std::string::npos)
      << msg;
  EXPECT_NE(fmnist_error(dir.str() + "/nope").find("root folder '" + dir.str() + "/nope' does not exist"),
            std::string::npos);
}

TEST(FashionMnist, TruncatedPlainFileIsAClearError) {
  TempDir dir;
  auto images = gunzip(kFmnist + "/train-images-idx3-ubyte.gz");
  vision_test::write_bytes(dir.str() + "/train-images-idx3-ubyte", images.data(), 1000);
  fs::copy_file(kFmnist + "/train-labels-idx1-ubyte.gz", dir.path() / "train-labels-idx1-ubyte.gz");
  std::string msg = fmnist_error(dir.str());
  EXPECT_NE(msg.find(dir.str() + "/train-images-idx3-ubyte: truncated: expected 47040016 bytes (16-byte header + "
                                 "60000 x 28 x 28 bytes of data), got 1000"),
            std::string::npos)
      << msg;
}

TEST(FashionMnist, TruncatedGzipFilesAreClearErrors) {
  auto images = gunzip(kFmnist + "/train-images-idx3-ubyte.gz");
  {  // a complete gzip stream of a truncated IDX file
    TempDir dir;
    gzip_to(dir.str() + "/train-images-idx3-ubyte.gz", images, 1000);
    fs::copy_file(kFmnist + "/train-labels-idx1-ubyte.gz", dir.path() / "train-labels-idx1-ubyte.gz");
    std::string msg = fmnist_error(dir.str());
    EXPECT_NE(msg.find("train-images-idx3-ubyte.gz: truncated: expected 47040016 bytes"), std::string::npos) << msg;
    EXPECT_NE(msg.find("got 1000"), std::string::npos) << msg;
  }
  {  // a gzip stream cut in the middle
    TempDir dir;
    auto gz = vision_test::read_bytes(kFmnist + "/train-images-idx3-ubyte.gz");
    vision_test::write_bytes(dir.str() + "/train-images-idx3-ubyte.gz", gz.data(), gz.size() / 2);
    fs::copy_file(kFmnist + "/train-labels-idx1-ubyte.gz", dir.path() / "train-labels-idx1-ubyte.gz");
    std::string msg = fmnist_error(dir.str());
    EXPECT_NE(msg.find(dir.str() + "/train-images-idx3-ubyte.gz: truncated or corrupt gzip data"), std::string::npos)
        << msg;
  }
}

TEST(FashionMnist, AHeaderClaimingMoreThanTheFileHoldsAllocatesOnlyWhatIsThere) {
  // 2^31 - 1 images of 28 x 28 (1.7 TB) over 1,000 bytes of data: the reader
  // must not allocate what the header claims (torch::empty of 1.7 TB would
  // fail with an out-of-memory error instead of this DataError).
  auto header = [](uint32_t n, uint32_t h, uint32_t w) {
    std::vector<unsigned char> b = {0, 0, 8, 3};
    for (uint32_t v : {n, h, w})
      for (int shift : {24, 16, 8, 0}) b.push_back(static_cast<unsigned char>(v >> shift));
    return b;
  };
  for (bool huge_dims : {false, true}) {
    TempDir dir;
    std::vector<unsigned char> file =
        huge_dims ? header(0x7fffffff, 0x7fffffff, 0x7fffffff) : header(0x7fffffff, 28, 28);
    file.resize(file.size() + 1000, 7);
    vision_test::write_bytes(dir.str() + "/train-images-idx3-ubyte", file.data(), file.size());
    fs::copy_file(kFmnist + "/train-labels-idx1-ubyte.gz", dir.path() / "train-labels-idx1-ubyte.gz");
    std::string msg = fmnist_error(dir.str());
    if (huge_dims) {
      EXPECT_NE(msg.find("train-images-idx3-ubyte: the header's dimensions"), std::string::npos) << msg;
      EXPECT_NE(msg.find("exceed the 1 PiB"), std::string::npos) << msg;
    } else {
      EXPECT_NE(msg.find("train-images-idx3-ubyte: truncated: expected 1683627179264 bytes"), std::string::npos)
          << msg;
      EXPECT_NE(msg.find("got 1016"), std::string::npos) << msg;
    }
  }
}

TEST(FashionMnist, WrongMagicAndMismatchedCounts) {
  TempDir dir;
  // A label file where the image file should be.
  fs::copy_file(kFmnist + "/train-labels-idx1-ubyte.gz", dir.path() / "train-images-idx3-ubyte.gz");
  fs::copy_file(kFmnist + "/train-labels-idx1-ubyte.gz", dir.path() / "train-labels-idx1-ubyte.gz");
  std::string msg = fmnist_error(dir.str());
  EXPECT_NE(msg.find("train-images-idx3-ubyte.gz: wrong magic number 0x00000801: expected 0x00000803"),
            std::string::npos)
      << msg;
  // Test-split labels (10000) with training images (60000).
  TempDir mixed;
  fs::copy_file(kFmnist + "/train-images-idx3-ubyte.gz", mixed.path() / "train-images-idx3-ubyte.gz");
  fs::copy_file(kFmnist + "/t10k-labels-idx1-ubyte.gz", mixed.path() / "train-labels-idx1-ubyte.gz");
  msg = fmnist_error(mixed.str());
  EXPECT_NE(msg.find("holds 10000 labels but"), std::string::npos) << msg;
}

// ---- image folder

namespace {

// Writes a w x h RGB PNG whose pixel (x, y) is (10 x + v, 20 y, v).
void write_png(const std::string& file, int w, int h, int v) {
  std::vector<unsigned char> px;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      px.push_back(static_cast<unsigned char>(10 * x + v));
      px.push_back(static_cast<unsigned char>(20 * y));
      px.push_back(static_cast<unsigned char>(v));
    }
  fs::create_directories(fs::path(file).parent_path());
  ASSERT_TRUE(stbi_write_png(file.c_str(), w, h, 3, px.data(), w * 3));
}

std::string folder_recipe(const std::string& root, int channels, int size) {
  return "[data.train]\ntype = \"vision.image_folder\"\nroot = \"" + root +
         "\"\nchannels = " + std::to_string(channels) + "\nsize = " + std::to_string(size) + "\n";
}

}  // namespace

TEST(ImageFolder, LabelsFromSortedFoldersAndPixels) {
  TempDir dir;
  write_png(dir.str() + "/dog/b.png", 6, 4, 7);
  write_png(dir.str() + "/cat/a.png", 6, 4, 3);
  write_png(dir.str() + "/cat/c.PNG", 6, 4, 5);
  vision_test::write_bytes(dir.str() + "/cat/notes.txt", reinterpret_cast<const unsigned char*>("x"), 1);

  Env env(folder_recipe(dir.str(), 3, 0));
  auto ds = env.dataset("train");
  ASSERT_EQ(ds->size(), 3);
  EXPECT_EQ(ds->num_classes(), 2);
  EXPECT_EQ(ds->get(0).at("label").item<int64_t>(), 0);  // cat/a.png
  EXPECT_EQ(ds->get(1).at("label").item<int64_t>(), 0);  // cat/c.PNG
  EXPECT_EQ(ds->get(2).at("label").item<int64_t>(), 1);  // dog/b.png
  torch::Tensor img = ds->get(2).at("image");
  ASSERT_EQ(img.sizes(), (std::vector<int64_t>{3, 4, 6}));
  EXPECT_FLOAT_EQ(img[0][1][2].item<float>(), (10 * 2 + 7) / 255.0f);
  EXPECT_FLOAT_EQ(img[1][3][0].item<float>(), 60 / 255.0f);
  EXPECT_FLOAT_EQ(img[2][0][0].item<float>(), 7 / 255.0f);

  Env grey(folder_recipe(dir.str(), 1, 8));
  torch::Tensor g = grey.dataset("train")->get(0).at("image");
  ASSERT_EQ(g.sizes(), (std::vector<int64_t>{1, 8, 8}));
  EXPECT_GE(g.min().item<float>(), 0.0f);
  EXPECT_LE(g.max().item<float>(), 1.0f);
}

TEST(ImageFolder, CorruptImageNamesTheFile) {
  TempDir dir;
  write_png(dir.str() + "/a/good.png", 4, 4, 1);
  const std::string bad = dir.str() + "/b/bad.png";
  vision_test::write_bytes(bad, reinterpret_cast<const unsigned char*>("\x89PNG not really"), 15);
  Env env(folder_recipe(dir.str(), 3, 0));
  auto ds = env.dataset("train");
  ASSERT_EQ(ds->size(), 2);
  std::string msg = user_error([&] { ds->get(1); });
  EXPECT_NE(msg.find(bad + ": cannot decode image"), std::string::npos) << msg;
  try {
    ds->get(1);
    FAIL() << "no DataError";
  } catch (const sslab::DataError& e) {
    EXPECT_EQ(e.path(), bad);
  }
  TempDir empty;
  EXPECT_NE(user_error([&] {
              Env e(folder_recipe(empty.str(), 3, 0));
              e.dataset("train");
            }).find("no class sub-folders"),
            std::string::npos);
  EXPECT_NE(user_error([&] {
              Env e(folder_recipe(dir.str(), 2, 0));
              e.dataset("train");
            }).find("channels must be 1 or 3"),
            std::string::npos);
}

// Found by fuzz/image_fuzz.cpp: stb_image 2.27 (Debian's) builds a JPEG
// Huffman table without checking that it declares at most 256 codes, and
// writes past its arrays. load_image refuses such a table before decoding.
TEST(ImageFolder, AJpegHuffmanTableDeclaringTooManyCodesIsCorrupt) {
  std::vector<unsigned char> jpeg;
  std::vector<unsigned char> pixels(8 * 8 * 3, 128);
  ASSERT_TRUE(stbi_write_jpg_to_func(
      [](void* out, void* data, int n) {
        auto* bytes = static_cast<unsigned char*>(data);
        static_cast<std::vector<unsigned char>*>(out)->insert(static_cast<std::vector<unsigned char>*>(out)->end(),
                                                              bytes, bytes + n);
      },
      &jpeg, 8, 8, 3, pixels.data(), 90));
  TempDir dir;
  const std::string good = dir.str() + "/good.jpg";
  vision_test::write_bytes(good, jpeg.data(), jpeg.size());
  EXPECT_EQ(sslab::vision::load_image(good, 3).sizes(), (std::vector<int64_t>{3, 8, 8}));
  size_t dht = 0;
  for (size_t i = 2; i + 1 < jpeg.size() && !dht; ++i)
    if (jpeg[i] == 0xff && jpeg[i + 1] == 0xc4) dht = i;
  ASSERT_GT(dht, 0u);
  for (size_t k = 0; k < 16; ++k) jpeg[dht + 5 + k] = 255;  // 16 x 255 codes
  const std::string bad = dir.str() + "/bad.jpg";
  vision_test::write_bytes(bad, jpeg.data(), jpeg.size());
  EXPECT_EQ(user_error([&] { sslab::vision::load_image(bad, 3); }),
            bad + ": cannot decode image: corrupt JPEG (a Huffman table declaring 4080 codes (at most 256))");
}

// The formats stb_image reads beyond those an image folder lists (TGA, PSD,
// GIF, HDR, PIC, PNM) are not decoded: less of a decoder that is not
// hardened against hostile files.
TEST(ImageFolder, OnlyPngJpegAndBmpAreDecoded) {
  TempDir dir;
  std::vector<unsigned char> pixels(4 * 4 * 3, 200);
  const std::string tga = dir.str() + "/image.png";
  ASSERT_TRUE(stbi_write_tga(tga.c_str(), 4, 4, 3, pixels.data()));
  EXPECT_EQ(user_error([&] { sslab::vision::load_image(tga, 3); }),
            tga + ": cannot decode image: not a PNG, JPEG or BMP file");
  const std::string bmp = dir.str() + "/image.bmp";
  ASSERT_TRUE(stbi_write_bmp(bmp.c_str(), 4, 4, 3, pixels.data()));
  EXPECT_EQ(sslab::vision::load_image(bmp, 1).sizes(), (std::vector<int64_t>{1, 4, 4}));
}

// Found by fuzz/image_fuzz.cpp: a 268-byte BMP whose header claims 17160 x
// 12032 pixels made stb_image allocate 619 MB before reading any pixel.
TEST(ImageFolder, AHeaderClaimingTooManyPixelsIsRefusedBeforeDecoding) {
  TempDir dir;
  std::vector<unsigned char> pixels(4 * 4 * 3, 50);
  const std::string bmp = dir.str() + "/huge.bmp";
  ASSERT_TRUE(stbi_write_bmp(bmp.c_str(), 4, 4, 3, pixels.data()));
  std::vector<unsigned char> bytes = vision_test::read_bytes(bmp);
  const uint32_t side = 20000;  // BITMAPINFOHEADER: width at byte 18, height at 22 (little-endian)
  for (size_t at : {18, 22})
    for (size_t k = 0; k < 4; ++k) bytes[at + k] = static_cast<unsigned char>(side >> (8 * k));
  vision_test::write_bytes(bmp, bytes.data(), bytes.size());
  EXPECT_EQ(user_error([&] { sslab::vision::load_image(bmp, 3); }),
            bmp + ": cannot decode image: 20000x20000 pixels, more than the 33554432 an image may have");
}

// Found by fuzz/image_fuzz.cpp: stb_image grows its buffer to a PNG IDAT
// chunk's declared length before reading it (654 MB for a 100-byte file).
TEST(ImageFolder, APngChunkLongerThanTheFileIsCorrupt) {
  TempDir dir;
  const std::string png = dir.str() + "/a.png";
  write_png(png, 4, 4, 1);
  std::vector<unsigned char> bytes = vision_test::read_bytes(png);
  size_t idat = 0;
  for (size_t i = 8; i + 4 <= bytes.size() && !idat; ++i)
    if (std::equal(bytes.begin() + i, bytes.begin() + i + 4, "IDAT")) idat = i - 4;  // its length field
  ASSERT_GT(idat, 0u);
  const size_t room = bytes.size() - idat - 8;
  bytes[idat] = 0x27;  // 0x27xxxxxx: about 650 MB
  vision_test::write_bytes(png, bytes.data(), bytes.size());
  const uint64_t length = (uint64_t{bytes[idat]} << 24) | (uint64_t{bytes[idat + 1]} << 16) |
                          (uint64_t{bytes[idat + 2]} << 8) | bytes[idat + 3];
  EXPECT_EQ(user_error([&] { sslab::vision::load_image(png, 3); }),
            png + ": cannot decode image: corrupt PNG (a chunk declaring " + std::to_string(length) +
                " bytes where the file holds " + std::to_string(room) + ")");
}
