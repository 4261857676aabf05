// The loader: determinism across runs and worker counts, rank sharding,
// drop-last, collation with padding, and the skip/fail policy for bad files.
#include <gtest/gtest.h>

#include <set>

#include "sslab/host/experiment.h"
#include "sslab/host/loader.h"
#include "test_util.h"

namespace {

using sslab::Batch;
using sslab::Loader;
using sslab::LoaderOptions;
using sslab::Sample;

// Sample i holds "x" = [i] and a variable-length "seq" of length 1 + i % 4.
class Counting : public sslab::Dataset {
 public:
  explicit Counting(int64_t n, std::set<int64_t> bad = {}) : n_(n), bad_(std::move(bad)) {}
  int64_t size() const override { return n_; }
  Sample get(int64_t i) const override {
    if (bad_.count(i)) throw sslab::DataError("sample-" + std::to_string(i) + ".bin", "corrupt");
    return {{"x", torch::tensor({static_cast<float>(i)})},
            {"seq", torch::full({1 + i % 4}, static_cast<float>(i))}};
  }

 private:
  int64_t n_;
  std::set<int64_t> bad_;
};

// Adds uniform noise drawn from the transform's rng.
class Jitter : public sslab::Transform {
 public:
  torch::Tensor apply(const torch::Tensor& x, sslab::Rng& rng) const override {
    return x + static_cast<float>(rng() % 1000) / 1000.0f;
  }
};

std::vector<torch::Tensor> epoch_of(int workers, int64_t batches, uint64_t seed = 3) {
  LoaderOptions o;
  o.batch_size = 8;
  o.workers = workers;
  o.prefetch = 3;
  o.seed = seed;
  Loader loader(std::make_shared<Counting>(100), o, {{"x", {std::make_shared<Jitter>()}}});
  std::vector<torch::Tensor> out;
  for (int64_t b = 0; b < batches; ++b) out.push_back(loader.next().tensors.at("x").clone());
  return out;
}

TEST(Loader, SameBatchesAcrossRunsAndWorkerCounts) {
  auto a = epoch_of(0, 30), b = epoch_of(1, 30), c = epoch_of(3, 30), d = epoch_of(3, 30);
  ASSERT_EQ(a.size(), 30u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i], b[i])) << "batch " << i;
    EXPECT_TRUE(torch::equal(a[i], c[i])) << "batch " << i;
    EXPECT_TRUE(torch::equal(c[i], d[i])) << "batch " << i;
  }
  // A different seed gives a different order.
  auto e = epoch_of(2, 1, 4);
  EXPECT_FALSE(torch::equal(a[0], e[0]));
}

TEST(Loader, EpochsAreShuffledDifferentlyAndDropLast) {
  LoaderOptions o;
  o.batch_size = 8;
  o.workers = 2;
  Loader loader(std::make_shared<Counting>(100), o);
  EXPECT_EQ(loader.batches_per_epoch(), 12);  // 100 / 8, last 4 dropped
  std::set<int64_t> seen;
  std::vector<int64_t> first_epoch;
  for (int b = 0; b < 12; ++b)
    for (int64_t i : loader.indices(0, b)) {
      EXPECT_TRUE(seen.insert(i).second) << "index " << i << " twice in one epoch";
      first_epoch.push_back(i);
    }
  EXPECT_EQ(seen.size(), 96u);
  EXPECT_NE(loader.indices(0, 0), loader.indices(1, 0));
  // next() crosses the epoch boundary.
  for (int b = 0; b < 12; ++b) loader.next();
  EXPECT_EQ(loader.epoch(), 1);
  EXPECT_EQ(loader.batch_in_epoch(), 0);
}

TEST(Loader, RanksShareOneGlobalShuffleWithoutOverlap) {
  LoaderOptions o;
  o.batch_size = 5;
  o.world_size = 2;
  auto data = std::make_shared<Counting>(40);
  o.rank = 0;
  Loader r0(data, o);
  o.rank = 1;
  Loader r1(data, o);
  o.rank = 0;
  o.world_size = 1;
  o.batch_size = 10;
  Loader single(data, o);
  EXPECT_EQ(r0.batches_per_epoch(), 4);
  for (int b = 0; b < 4; ++b) {
    std::vector<int64_t> both = r0.indices(0, b);
    auto second = r1.indices(0, b);
    both.insert(both.end(), second.begin(), second.end());
    EXPECT_EQ(both, single.indices(0, b)) << "global batch " << b;
  }
}

TEST(Loader, SeekResumesAtTheSameBatch) {
  LoaderOptions o;
  o.batch_size = 8;
  o.workers = 2;
  Loader a(std::make_shared<Counting>(100), o), b(std::make_shared<Counting>(100), o);
  for (int i = 0; i < 17; ++i) a.next();
  b.seek(a.epoch(), a.batch_in_epoch());
  EXPECT_TRUE(torch::equal(a.next().tensors.at("x"), b.next().tensors.at("x")));
}

TEST(Loader, CollatePadsVariableLengthsWithLengthsAndMask) {
  Counting data(10);
  Batch b = sslab::collate({data.get(0), data.get(3), data.get(1)});
  EXPECT_EQ(b.size, 3);
  EXPECT_EQ(b.tensors.at("x").sizes(), (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(b.tensors.at("seq").sizes(), (std::vector<int64_t>{3, 4}));
  EXPECT_TRUE(torch::equal(b.tensors.at("seq.length"), torch::tensor({1, 4, 2}, torch::kInt64)));
  EXPECT_EQ(b.tensors.at("seq.mask").sum().item<int64_t>(), 7);
  EXPECT_EQ(b.tensors.at("seq")[0][1].item<float>(), 0.0f);  // padding
  EXPECT_EQ(b.tensors.at("seq")[1][3].item<float>(), 3.0f);
}

TEST(Loader, CollateRejectsMismatchedShapesClearly) {
  Sample a{{"img", torch::zeros({1, 4, 4})}}, b{{"img", torch::zeros({1, 5, 5})}};
  std::string msg = sslab_test::user_error([&] { sslab::collate({a, b}); });
  EXPECT_NE(msg.find("cannot collate 'img'"), std::string::npos) << msg;
}

TEST(Loader, BadFileFailsByDefaultAndIsSkippedAndCountedOnRequest) {
  LoaderOptions o;
  o.batch_size = 10;
  o.shuffle = false;
  o.workers = 1;
  auto data = std::make_shared<Counting>(20, std::set<int64_t>{3, 12});
  {
    Loader fail(data, o);
    std::string msg = sslab_test::user_error([&] { fail.next(); });
    EXPECT_NE(msg.find("sample-3.bin: corrupt"), std::string::npos) << msg;
  }
  o.skip_bad_samples = true;
  Loader skip(data, o);
  EXPECT_EQ(skip.next().size, 9);
  EXPECT_EQ(skip.next().size, 9);
  EXPECT_EQ(skip.skipped(), 2);
}

// The skip policy as the Experiment applies it to a split: a bad sample's
// place is taken by the next readable one, each bad file recorded once and
// not read again; a run of bad samples longer than the limit is an error.
TEST(SkipUnreadable, ReplacesBadSamplesAndRecordsEachOnce) {
  auto log = std::make_shared<sslab::SkipLog>();
  auto data = sslab::skip_unreadable(std::make_shared<Counting>(10, std::set<int64_t>{3, 4, 9}), "train", log, 5);
  EXPECT_EQ(data->size(), 10);
  EXPECT_EQ(data->get(2).at("x").item<float>(), 2);
  EXPECT_EQ(data->get(3).at("x").item<float>(), 5);
  EXPECT_EQ(data->get(4).at("x").item<float>(), 5);
  EXPECT_EQ(data->get(9).at("x").item<float>(), 0);  // wraps around
  EXPECT_EQ(data->get(3).at("x").item<float>(), 5);
  auto entries = log->entries();
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].index, 3);
  EXPECT_EQ(entries[0].path, "sample-3.bin");
  EXPECT_EQ(entries[2].index, 9);
  std::string summary = log->summary("run/skipped.tsv");
  EXPECT_NE(summary.find("skipped 3 unreadable samples (on_error = \"skip\"; train: 3)"), std::string::npos) << summary;
  EXPECT_NE(summary.find("sample-9.bin: corrupt"), std::string::npos) << summary;
  EXPECT_NE(summary.find("all listed in run/skipped.tsv"), std::string::npos) << summary;

  // Through the loader: batches keep their size.
  LoaderOptions o;
  o.batch_size = 5;
  Loader loader(data, o);
  EXPECT_EQ(loader.next().size, 5);
  EXPECT_EQ(loader.next().size, 5);

  auto broken = sslab::skip_unreadable(std::make_shared<Counting>(10, std::set<int64_t>{1, 2, 3, 4, 5, 6, 7}), "test",
                                       std::make_shared<sslab::SkipLog>(), 3);
  std::string msg = sslab_test::user_error([&] { broken->get(2); });
  EXPECT_NE(msg.find("sample-2.bin: sample 2 of split 'test' and the 3 after it are all unreadable"), std::string::npos)
      << msg;
}

TEST(Loader, TooSmallDatasetIsAClearError) {
  LoaderOptions o;
  o.batch_size = 64;
  std::string msg = sslab_test::user_error([&] { Loader l(std::make_shared<Counting>(10), o); });
  EXPECT_NE(msg.find("too few for one batch of 64"), std::string::npos) << msg;
}


// ---- length bucketing

// Sample i holds "x" = [i] and "seq" of a pseudo-random length 1..64.
class Ragged : public sslab::Dataset {
 public:
  explicit Ragged(int64_t n) : n_(n) {}
  int64_t size() const override { return n_; }
  static int64_t length(int64_t i) { return 1 + static_cast<int64_t>(sslab::mix_seed(7, static_cast<uint64_t>(i)) % 64); }
  Sample get(int64_t i) const override {
    return {{"x", torch::tensor({static_cast<float>(i)})}, {"seq", torch::full({length(i)}, static_cast<float>(i))}};
  }

 private:
  int64_t n_;
};

LoaderOptions bucketed(const sslab::Dataset& data, int64_t batch, int64_t max_tokens = 0, int workers = 2) {
  LoaderOptions o;
  o.batch_size = batch;
  o.workers = workers;
  o.seed = 11;
  o.max_tokens = max_tokens;
  o.lengths = sslab::sample_lengths(data, "seq", 2, "train.bucket_key");
  return o;
}

// The padded share of "seq" over one epoch's batches.
double padding(Loader& loader) {
  double real = 0, padded = 0;
  for (int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
    Batch batch = loader.next();
    // One length in the whole batch: collated without "seq.length".
    real += batch.has("seq.length") ? static_cast<double>(batch.tensors.at("seq.length").sum().item<int64_t>())
                                    : static_cast<double>(batch.tensors.at("seq").numel());
    padded += static_cast<double>(batch.tensors.at("seq").numel());
  }
  return 1.0 - real / padded;
}

TEST(Bucketing, EverySampleOncePerEpochWithLessPadding) {
  auto data = std::make_shared<Ragged>(1000);
  auto o = bucketed(*data, 32);
  Loader loader(data, o);
  EXPECT_EQ(loader.batches_per_epoch(), 32);  // 31 of 32 and the last 8: nothing dropped
  for (int64_t e = 0; e < 2; ++e) {
    std::vector<int> seen(1000, 0);
    for (int64_t b = 0; b < loader.batches_per_epoch(); ++b)
      for (int64_t i : loader.indices(e, b)) ++seen[i];
    for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(seen[i], 1) << "epoch " << e << ", sample " << i;
  }
  EXPECT_NE(loader.indices(0, 0), loader.indices(1, 0));  // another order each epoch
  LoaderOptions plain;
  plain.batch_size = 32;
  plain.seed = 11;
  Loader unbucketed(data, plain);
  const double before = padding(unbucketed), after = padding(loader);
  EXPECT_GT(before, 0.3);
  EXPECT_LT(after, 0.05) << "before " << before;
}

TEST(Bucketing, SameBatchesAcrossWorkerCountsAndExactResume) {
  auto data = std::make_shared<Ragged>(500);
  std::vector<std::vector<torch::Tensor>> runs;
  for (int workers : {0, 1, 3}) {
    Loader loader(data, bucketed(*data, 16, 0, workers), {{"seq", {std::make_shared<Jitter>()}}});
    std::vector<torch::Tensor> out;
    for (int b = 0; b < 70; ++b) out.push_back(loader.next().tensors.at("seq").clone());  // crosses an epoch
    runs.push_back(out);
  }
  for (size_t r = 1; r < runs.size(); ++r)
    for (size_t b = 0; b < runs[0].size(); ++b) ASSERT_TRUE(torch::equal(runs[0][b], runs[r][b])) << "batch " << b;
  Loader a(data, bucketed(*data, 16)), b(data, bucketed(*data, 16));
  for (int i = 0; i < 41; ++i) a.next();
  b.seek(a.epoch(), a.batch_in_epoch());
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(torch::equal(a.next().tensors.at("x"), b.next().tensors.at("x")));
}

TEST(Bucketing, TokenCapBoundsEveryBatch) {
  auto data = std::make_shared<Ragged>(1000);
  auto o = bucketed(*data, 1000, 512);
  o.bucket_width = 8;
  Loader loader(data, o);
  int64_t samples = 0, sizes_differ = 0, first = -1;
  for (int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
    Batch batch = loader.load(0, b);
    const int64_t longest = batch.tensors.at("seq").size(1);
    const int64_t rounded = (longest + 7) / 8 * 8;
    EXPECT_LE(batch.size * rounded, 512) << "batch " << b << ": " << batch.size << " x " << longest;
    samples += batch.size;
    if (first < 0) first = batch.size;
    sizes_differ += batch.size != first;
  }
  EXPECT_EQ(samples, 1000);
  EXPECT_GT(sizes_differ, 0);  // short sequences travel in larger batches
}

TEST(Bucketing, RanksGetDisjointBatches) {
  auto data = std::make_shared<Ragged>(300);
  auto o = bucketed(*data, 10);
  o.world_size = 2;
  Loader r0(data, o);
  o.rank = 1;
  Loader r1(data, o);
  EXPECT_EQ(r0.batches_per_epoch(), 15);
  std::set<int64_t> seen;
  for (int64_t b = 0; b < 15; ++b)
    for (const Loader* l : {&r0, &r1})
      for (int64_t i : l->indices(0, b)) EXPECT_TRUE(seen.insert(i).second) << i;
  EXPECT_EQ(seen.size(), 300u);
}

TEST(Bucketing, MissingKeyIsAClearError) {
  Ragged data(10);
  std::string e = sslab_test::user_error([&] { sslab::sample_lengths(data, "text.ids", 2, "r.toml:5:1: train.bucket_key"); });
  EXPECT_NE(e.find("r.toml:5:1: train.bucket_key: sample 0 has no key 'text.ids'"), std::string::npos) << e;
}

}  // namespace
