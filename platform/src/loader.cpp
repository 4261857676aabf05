#include "sslab/host/loader.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <numeric>
#include <thread>

namespace sslab {

uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c) {
  auto splitmix = [](uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  };
  return splitmix(splitmix(splitmix(a) ^ b) ^ c);
}

Batch collate(const std::vector<Sample>& samples) {
  Batch batch;
  batch.size = static_cast<int64_t>(samples.size());
  if (samples.empty()) return batch;
  for (const auto& [key, first] : samples.front()) {
    std::vector<torch::Tensor> items;
    items.reserve(samples.size());
    bool same = true;
    for (const auto& s : samples) {
      auto it = s.find(key);
      SSLAB_CHECK(it != s.end(), "cannot collate: a sample lacks key '", key, "' that another sample has");
      items.push_back(it->second);
      same = same && it->second.sizes() == first.sizes();
    }
    if (same) {
      batch.tensors[key] = torch::stack(items);
      continue;
    }
    SSLAB_CHECK(first.dim() >= 1, "cannot collate '", key, "': scalars of different shapes");
    int64_t max_len = 0;
    for (const auto& t : items) {
      SSLAB_CHECK(t.dim() == first.dim() && t.sizes().slice(1) == first.sizes().slice(1), "cannot collate '", key,
                  "': samples differ in more than their first dimension (", first.sizes(), " vs ", t.sizes(), ")");
      max_len = std::max(max_len, t.size(0));
    }
    std::vector<int64_t> shape = first.sizes().vec();
    shape.insert(shape.begin(), batch.size);
    shape[1] = max_len;
    torch::Tensor out = torch::zeros(shape, first.options());
    torch::Tensor lengths = torch::empty({batch.size}, torch::kInt64);
    torch::Tensor mask = torch::zeros({batch.size, max_len}, torch::kBool);
    for (int64_t i = 0; i < batch.size; ++i) {
      int64_t n = items[i].size(0);
      out[i].narrow(0, 0, n).copy_(items[i]);
      lengths[i] = n;
      mask[i].narrow(0, 0, n).fill_(true);
    }
    batch.tensors[key] = out;
    batch.tensors[key + ".length"] = lengths;
    batch.tensors[key + ".mask"] = mask;
  }
  return batch;
}

std::vector<int64_t> sample_lengths(const Dataset& dataset, const std::string& key, int threads,
                                    const std::string& where) {
  const int64_t n = dataset.size();
  std::vector<int64_t> out(static_cast<size_t>(n));
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mu;
  auto work = [&] {
    for (int64_t i = next++; i < n; i = next++) {
      try {
        Sample s = dataset.get(i);
        auto it = s.find(key);
        SSLAB_CHECK(it != s.end(), where, ": sample ", i, " has no key '", key, "' to bucket by");
        SSLAB_CHECK(it->second.dim() >= 1, where, ": '", key, "' of sample ", i, " is a scalar: nothing to bucket");
        out[i] = it->second.size(0);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (!error) error = std::current_exception();
        next = n;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(1, threads); ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  return out;
}

// A fixed set of worker threads running loading jobs in FIFO order.
struct Loader::Pool {
  explicit Pool(int n) {
    for (int i = 0; i < n; ++i) threads.emplace_back([this] { work(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    cv.notify_all();
    for (auto& t : threads) t.join();
  }
  void submit(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mu);
      jobs.push_back(std::move(job));
    }
    cv.notify_one();
  }
  void work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return stop || !jobs.empty(); });
        if (stop && jobs.empty()) return;
        job = std::move(jobs.front());
        jobs.pop_front();
      }
      job();
    }
  }
  std::vector<std::thread> threads;
  std::deque<std::function<void()>> jobs;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  // Batches in flight, in the order next() returns them.
  std::deque<std::tuple<int64_t, int64_t, std::shared_future<Loaded>>> inflight;
  std::atomic<int64_t> skipped{0};
  // The shuffled order of the most recent epoch asked for.
  std::mutex order_mu;
  int64_t order_epoch = -1;
  std::shared_ptr<const std::vector<int64_t>> order;
  int64_t buckets_epoch = -1;
  std::shared_ptr<const std::vector<std::vector<int64_t>>> buckets;
};

Loader::Loader(std::shared_ptr<Dataset> dataset, LoaderOptions options, std::vector<Pipeline> pipelines)
    : dataset_(std::move(dataset)), options_(options), pipelines_(std::move(pipelines)) {
  SSLAB_ASSERT(dataset_, "loader without dataset");
  SSLAB_CHECK(options_.batch_size >= 1, "batch size must be >= 1");
  SSLAB_CHECK(options_.world_size >= 1 && options_.rank >= 0 && options_.rank < options_.world_size,
              "bad rank ", options_.rank, " of world size ", options_.world_size);
  pool_ = std::make_unique<Pool>(std::max(0, options_.workers));
  if (bucketing()) {
    SSLAB_CHECK(static_cast<int64_t>(options_.lengths.size()) == dataset_->size(), "bucketing: ",
                options_.lengths.size(), " lengths for a dataset of ", dataset_->size(), " samples");
    SSLAB_CHECK(options_.bucket_width >= 1, "bucketing: bucket width must be >= 1");
    global_batches_ = static_cast<int64_t>(buckets(0)->size());  // the same every epoch
  }
  SSLAB_CHECK(batches_per_epoch() > 0, "the dataset has ", dataset_->size(), " samples: too few for one batch of ",
              options_.batch_size, " on each of ", options_.world_size, " rank(s)");
}

Loader::~Loader() {
  // Wait for in-flight jobs before the pool (and this object) goes away.
  if (pool_) {
    for (auto& f : pool_->inflight) std::get<2>(f).wait();
  }
}

int64_t Loader::batches_per_epoch() const {
  if (bucketing()) return global_batches_ / options_.world_size;
  int64_t global = options_.batch_size * options_.world_size;
  int64_t n = dataset_->size();
  return options_.drop_last ? n / global : (n + global - 1) / global;
}

std::shared_ptr<const std::vector<int64_t>> Loader::order(int64_t e) const {
  // Every batch of an epoch reads the same permutation: build it once per epoch.
  std::lock_guard<std::mutex> lock(pool_->order_mu);
  if (pool_->order_epoch == e) return pool_->order;
  auto idx = std::make_shared<std::vector<int64_t>>(static_cast<size_t>(dataset_->size()));
  std::iota(idx->begin(), idx->end(), 0);
  if (options_.shuffle) {
    // Fisher-Yates with our own draw so the order does not depend on the
    // standard library's shuffle algorithm.
    std::mt19937_64 rng(mix_seed(options_.seed, 0x5eed0000ULL + static_cast<uint64_t>(e)));
    for (size_t i = idx->size(); i > 1; --i) {
      size_t j = static_cast<size_t>(rng() % i);
      std::swap((*idx)[i - 1], (*idx)[j]);
    }
  }
  pool_->order_epoch = e;
  pool_->order = idx;
  return idx;
}

std::shared_ptr<const std::vector<std::vector<int64_t>>> Loader::buckets(int64_t e) const {
  std::lock_guard<std::mutex> lock(pool_->order_mu);
  if (pool_->buckets_epoch == e) return pool_->buckets;
  const auto n = static_cast<int64_t>(options_.lengths.size());
  const int64_t width = options_.bucket_width;
  std::vector<int64_t> rounded(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) rounded[i] = (std::max<int64_t>(options_.lengths[i], 1) + width - 1) / width * width;
  std::mt19937_64 rng(mix_seed(options_.seed, 0xb0c4e7000ULL + static_cast<uint64_t>(e)));
  std::vector<uint64_t> tie(static_cast<size_t>(n));
  for (auto& t : tie) t = rng();
  std::vector<int64_t> sorted(static_cast<size_t>(n));
  std::iota(sorted.begin(), sorted.end(), 0);
  std::sort(sorted.begin(), sorted.end(), [&](int64_t a, int64_t b) {
    return rounded[a] != rounded[b] ? rounded[a] < rounded[b] : (tie[a] != tie[b] ? tie[a] < tie[b] : a < b);
  });
  auto out = std::make_shared<std::vector<std::vector<int64_t>>>();
  std::vector<int64_t> current;
  for (int64_t i : sorted) {
    // Sorted ascending: the new sample is the batch's longest.
    const bool full = static_cast<int64_t>(current.size()) >= options_.batch_size ||
                      (options_.max_tokens > 0 && !current.empty() &&
                       (static_cast<int64_t>(current.size()) + 1) * rounded[i] > options_.max_tokens);
    if (full) {
      out->push_back(std::move(current));
      current.clear();
    }
    current.push_back(i);
  }
  if (!current.empty()) out->push_back(std::move(current));
  if (options_.shuffle) {
    for (size_t i = out->size(); i > 1; --i) std::swap((*out)[i - 1], (*out)[static_cast<size_t>(rng() % i)]);
  }
  pool_->buckets_epoch = e;
  pool_->buckets = out;
  return out;
}

std::vector<int64_t> Loader::indices(int64_t e, int64_t b) const {
  if (bucketing()) return buckets(e)->at(static_cast<size_t>(b * options_.world_size + options_.rank));
  auto all = order(e);
  int64_t global = options_.batch_size * options_.world_size;
  int64_t start = std::min<int64_t>(b * global + options_.rank * options_.batch_size, static_cast<int64_t>(all->size()));
  int64_t end = std::min<int64_t>(start + options_.batch_size, static_cast<int64_t>(all->size()));
  return std::vector<int64_t>(all->begin() + start, all->begin() + end);
}

Batch Loader::load(int64_t e, int64_t b) const {
  int64_t skipped = 0;
  return load(e, b, skipped);
}

Batch Loader::load(int64_t e, int64_t b, int64_t& skipped) const {
  std::vector<Sample> samples;
  for (int64_t index : indices(e, b)) {
    Sample s;
    try {
      s = dataset_->get(index);
    } catch (const DataError&) {
      if (!options_.skip_bad_samples) throw;
      ++skipped;
      continue;
    }
    for (const auto& [key, n] : options_.views) {
      auto it = s.find(key);
      SSLAB_CHECK(it != s.end(), "views.", key, ": samples have no key '", key, "'");
      torch::Tensor original = it->second;
      for (int v = 0; v < n; ++v) s[key + "@" + std::to_string(v)] = original;
    }
    if (!pipelines_.empty()) {
      Rng rng(mix_seed(options_.seed, static_cast<uint64_t>(e), static_cast<uint64_t>(index)));
      for (const auto& p : pipelines_) {
        auto it = s.find(p.key);
        SSLAB_CHECK(it != s.end(), "transforms.", p.key, ": samples have no key '", p.key, "'");
        for (const auto& t : p.transforms) it->second = t->apply(it->second, rng);
      }
    }
    samples.push_back(std::move(s));
  }
  SSLAB_CHECK(!samples.empty(), "batch ", b, " of epoch ", e, ": every sample was skipped as bad");
  Batch batch = collate(samples);
  if (options_.pin_memory)
    for (auto& kv : batch.tensors) kv.second = kv.second.pin_memory();
  return batch;
}

void Loader::seek(int64_t epoch, int64_t batch) {
  for (auto& f : pool_->inflight) std::get<2>(f).wait();
  pool_->inflight.clear();
  epoch_ = epoch;
  batch_ = batch;
  if (batch_ >= batches_per_epoch()) {
    epoch_ += batch_ / batches_per_epoch();
    batch_ %= batches_per_epoch();
  }
}

void Loader::fill() {
  if (options_.workers <= 0) return;
  int64_t e = epoch_, b = batch_;
  if (!pool_->inflight.empty()) {
    std::tie(e, b, std::ignore) = pool_->inflight.back();
    if (++b == batches_per_epoch()) {
      b = 0;
      ++e;
    }
  }
  while (static_cast<int>(pool_->inflight.size()) < options_.prefetch) {
    auto task = std::make_shared<std::packaged_task<Loaded()>>([this, e, b] {
      Loaded out;
      out.batch = load(e, b, out.skipped);
      return out;
    });
    pool_->inflight.emplace_back(e, b, task->get_future().share());
    pool_->submit([task] { (*task)(); });
    if (++b == batches_per_epoch()) {
      b = 0;
      ++e;
    }
  }
}

Batch Loader::next() {
  Batch out;
  if (options_.workers <= 0) {
    int64_t skipped = 0;
    out = load(epoch_, batch_, skipped);
    pool_->skipped += skipped;
  } else {
    fill();
    auto [e, b, fut] = pool_->inflight.front();
    SSLAB_ASSERT(e == epoch_ && b == batch_, "loader out of order");
    pool_->inflight.pop_front();
    Loaded loaded = fut.get();  // rethrows a worker's error here
    out = std::move(loaded.batch);
    pool_->skipped += loaded.skipped;  // counted when consumed, not when read ahead
    fill();
  }
  if (++batch_ == batches_per_epoch()) {
    batch_ = 0;
    ++epoch_;
  }
  return out;
}

int64_t Loader::skipped() const { return pool_ ? pool_->skipped.load() : 0; }

}  // namespace sslab
