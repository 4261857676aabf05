#include "audio_io.h"

#include <sndfile.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <thread>
#include <cerrno>
#include <cstring>
#include <vector>
#include <fstream>
#include <map>
#include <memory>

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libavutil/samplefmt.h>
#include <libswresample/swresample.h>
}

#include <sslab/error.h>

namespace sslab::audio {
namespace {

struct SndFileCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndFilePtr = std::unique_ptr<SNDFILE, SndFileCloser>;

SndFilePtr open_sound(const std::string& path, SF_INFO& info) {
  std::memset(&info, 0, sizeof(info));
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  if (!f) {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) throw DataError(path, "cannot open the file");
    probe.seekg(0, std::ios::end);
    if (probe.tellg() == 0) throw DataError(path, "the file is empty");
    throw DataError(path, str("not a readable audio file (libsndfile: ", sf_strerror(nullptr), ")"));
  }
  SndFilePtr out(f);
  if (info.channels < 1 || info.samplerate < 1) throw DataError(path, "the audio header has no channels or rate");
  // A header that lies must not drive allocations: resampling a claimed 1 Hz
  // to 16 kHz multiplies the samples 16,000-fold. Real audio lies in these
  // bounds (docs/audio.md).
  if (info.samplerate < kMinSampleRate || info.samplerate > kMaxSampleRate)
    throw DataError(path, str("implausible sample rate ", info.samplerate, " Hz in the header (accepted: ", kMinSampleRate,
                              " to ", kMaxSampleRate, " Hz)"));
  if (info.channels > kMaxChannels)
    throw DataError(path, str("implausible channel count ", info.channels, " in the header (accepted: 1 to ",
                              kMaxChannels, ")"));
  return out;
}

uint32_t le32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

// For a RIFF/WAVE file: the data chunk's declared size must fit in the file,
// unless it is a streaming placeholder (0, >= 0x7fff0000). libsndfile clamps
// an oversized chunk silently, which would hide a truncated file.
void check_wav_data_size(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char head[12];
  if (!in.read(reinterpret_cast<char*>(head), 12)) return;
  if (std::memcmp(head, "RIFF", 4) != 0 || std::memcmp(head + 8, "WAVE", 4) != 0) return;
  in.seekg(0, std::ios::end);
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  uint64_t pos = 12;
  while (pos + 8 <= file_size) {
    in.seekg(static_cast<std::streamoff>(pos));
    unsigned char chunk[8];
    if (!in.read(reinterpret_cast<char*>(chunk), 8)) return;
    const uint32_t size = le32(chunk + 4);
    if (std::memcmp(chunk, "data", 4) == 0) {
      const bool placeholder = size == 0 || size >= 0x7fff0000u;
      const uint64_t available = file_size - (pos + 8);
      if (!placeholder && size > available)
        throw DataError(path,
                        str("truncated WAV: the data chunk declares ", size, " bytes but the file holds ", available));
      return;
    }
    pos += 8 + uint64_t{size} + (size & 1);  // 64-bit: a size near 4 GiB must not wrap (found by fuzzing)
  }
}

// The Ogg CRC-32 (polynomial 0x04c11db7, not reflected, initial value 0).
uint32_t ogg_crc(const unsigned char* data, size_t n, uint32_t crc) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t r = i << 24;
      for (int k = 0; k < 8; ++k) r = (r & 0x80000000u) ? (r << 1) ^ 0x04c11db7u : r << 1;
      t[i] = r;
    }
    return t;
  }();
  for (size_t i = 0; i < n; ++i) crc = (crc << 8) ^ table[((crc >> 24) ^ data[i]) & 0xff];
  return crc;
}

// For an Ogg file: every page must be whole, pass its checksum, and the last
// page must end the stream. libogg skips a damaged page and libsndfile takes
// the length from the last whole page, so a file cut short would otherwise
// decode as a shorter, valid clip.
void check_ogg_pages(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char magic[4];
  if (!in.read(reinterpret_cast<char*>(magic), 4) || std::memcmp(magic, "OggS", 4) != 0) return;
  in.seekg(0, std::ios::end);
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  uint64_t pos = 0;
  int64_t page = 0;
  bool ended = false;
  std::vector<unsigned char> buf;
  while (pos < file_size) {
    unsigned char head[27 + 255];
    in.seekg(static_cast<std::streamoff>(pos));
    const uint64_t left = file_size - pos;
    if (left < 27)
      throw DataError(path, str("truncated Ogg stream: ", left, " stray bytes after page ", page, " at byte ", pos));
    in.read(reinterpret_cast<char*>(head), 27);
    if (std::memcmp(head, "OggS", 4) != 0)
      throw DataError(path, str("damaged Ogg stream: no page starts at byte ", pos, " (after page ", page, ")"));
    const unsigned segments = head[26];
    if (left < 27u + segments)
      throw DataError(path, str("truncated Ogg stream: page ", page + 1, " at byte ", pos, " is cut short"));
    in.read(reinterpret_cast<char*>(head + 27), segments);
    uint64_t body = 0;
    for (unsigned i = 0; i < segments; ++i) body += head[27 + i];
    const uint64_t header = 27u + segments;
    if (left < header + body)
      throw DataError(path, str("truncated Ogg stream: page ", page + 1, " at byte ", pos, " needs ", header + body,
                                " bytes but the file ends after ", left));
    buf.resize(static_cast<size_t>(body));
    in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(body));
    const uint32_t stored = le32(head + 22);
    std::memset(head + 22, 0, 4);
    const uint32_t crc = ogg_crc(buf.data(), buf.size(), ogg_crc(head, header, 0));
    if (crc != stored)
      throw DataError(path, str("damaged Ogg stream: page ", page + 1, " at byte ", pos, " fails its checksum"));
    ended = (head[5] & 0x04) != 0;  // end of stream
    pos += header + body;
    ++page;
  }
  if (!ended) throw DataError(path, str("truncated Ogg stream: the last of its ", page, " pages does not end the stream"));
}

}  // namespace

DecodedAudio decode_audio(const std::string& path) {
  check_wav_data_size(path);
  check_ogg_pages(path);
  SF_INFO info;
  SndFilePtr file = open_sound(path, info);
  const int channels = info.channels;
  DecodedAudio out;
  out.sample_rate = info.samplerate;
  out.channels = channels;
  // Read in blocks until the decoder stops: the header's frame count is not
  // trusted (placeholder sizes), but a short read of a known length is.
  const sf_count_t block = 16384;
  std::vector<float> buf(static_cast<size_t>(block * channels));
  // The header's frame count only sizes a first reservation, capped (16 M
  // samples, 64 MB): what is stored grows with what is actually decoded.
  if (info.frames > 0) out.samples.reserve(static_cast<size_t>(std::min<sf_count_t>(info.frames, sf_count_t{1} << 24)));
  sf_count_t total = 0;
  for (;;) {
    sf_count_t n = sf_readf_float(file.get(), buf.data(), block);
    if (n <= 0) break;
    total += n;
    if (channels == 1) {
      out.samples.insert(out.samples.end(), buf.begin(), buf.begin() + n);
    } else {
      const float scale = 1.0f / static_cast<float>(channels);
      for (sf_count_t i = 0; i < n; ++i) {
        float s = 0;
        for (int c = 0; c < channels; ++c) s += buf[static_cast<size_t>(i * channels + c)];
        out.samples.push_back(s * scale);
      }
    }
  }
  int err = sf_error(file.get());
  if (err != SF_ERR_NO_ERROR) throw DataError(path, str("decoding failed (libsndfile: ", sf_error_number(err), ")"));
  const bool is_wav = (info.format & SF_FORMAT_TYPEMASK) == SF_FORMAT_WAV;
  if (!is_wav && info.frames > 0 && info.frames != SF_COUNT_MAX && total < info.frames)
    throw DataError(path, str("truncated stream: decoded ", total, " of the ", info.frames, " frames it declares"));
  if (total == 0) throw DataError(path, "the file holds no audio frames");
  return out;
}

std::vector<float> resample(const std::vector<float>& samples, int64_t from_rate, int64_t to_rate,
                            const std::string& what) {
  SSLAB_CHECK(from_rate > 0 && to_rate > 0, what, ": sample rates must be positive (", from_rate, " -> ", to_rate, ")");
  if (from_rate == to_rate || samples.empty()) return samples;
  // One context per thread and rate pair, re-initialised per clip: swr_init
  // keeps the polyphase filter bank when the rates are unchanged, and
  // building it dominates the cost of short clips.
  struct Contexts {
    std::map<std::pair<int64_t, int64_t>, SwrContext*> by_rates;
    ~Contexts() {
      for (auto& kv : by_rates) swr_free(&kv.second);
    }
  };
  thread_local Contexts contexts;
  // Bounded: a data set whose files claim many different rates must not
  // grow the cache without end (found by fuzzing).
  constexpr size_t kMaxCachedRatePairs = 8;
  if (contexts.by_rates.size() >= kMaxCachedRatePairs && !contexts.by_rates.count({from_rate, to_rate})) {
    for (auto& kv : contexts.by_rates) swr_free(&kv.second);
    contexts.by_rates.clear();
  }
  SwrContext*& swr = contexts.by_rates[{from_rate, to_rate}];
  if (!swr) {
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    int rc = swr_alloc_set_opts2(&swr, &mono, AV_SAMPLE_FMT_FLT, static_cast<int>(to_rate), &mono, AV_SAMPLE_FMT_FLT,
                                 static_cast<int>(from_rate), 0, nullptr);
    SSLAB_CHECK(rc >= 0 && swr, what, ": libswresample cannot convert ", from_rate, " Hz to ", to_rate, " Hz");
  }
  SSLAB_CHECK(swr_init(swr) >= 0, what, ": libswresample cannot convert ", from_rate, " Hz to ", to_rate, " Hz");
  const int64_t in_count = static_cast<int64_t>(samples.size());
  const int64_t expected = av_rescale_rnd(in_count, to_rate, from_rate, AV_ROUND_UP);
  std::vector<float> out(static_cast<size_t>(expected + 256));
  const uint8_t* in_planes[1] = {reinterpret_cast<const uint8_t*>(samples.data())};
  uint8_t* out_planes[1] = {reinterpret_cast<uint8_t*>(out.data())};
  int got = swr_convert(swr, out_planes, static_cast<int>(out.size()), in_planes, static_cast<int>(in_count));
  SSLAB_CHECK(got >= 0, what, ": libswresample failed");
  int64_t produced = got;
  // Flush the filter's delay line.
  for (;;) {
    if (produced >= static_cast<int64_t>(out.size())) out.resize(out.size() + 1024);
    uint8_t* tail[1] = {reinterpret_cast<uint8_t*>(out.data() + produced)};
    int more = swr_convert(swr, tail, static_cast<int>(out.size() - produced), nullptr, 0);
    SSLAB_CHECK(more >= 0, what, ": libswresample failed while flushing");
    if (more == 0) break;
    produced += more;
  }
  // The exact length for the duration: round(n * to / from).
  const int64_t want = (in_count * to_rate + from_rate / 2) / from_rate;
  out.resize(static_cast<size_t>(std::min(produced, want)));
  if (static_cast<int64_t>(out.size()) < want) out.resize(static_cast<size_t>(want), 0.0f);
  return out;
}

torch::Tensor load_wave(const std::string& path, int64_t sample_rate) {
  DecodedAudio clip = decode_audio(path);
  std::vector<float> mono = resample(clip.samples, clip.sample_rate, sample_rate, path);
  return torch::from_blob(mono.data(), {static_cast<int64_t>(mono.size())}, torch::kFloat32).clone();
}

namespace {

constexpr char kCacheMagic[8] = {'S', 'S', 'L', 'W', 'A', 'V', 'E', '1'};
constexpr size_t kCacheHeader = 32;  // magic, rate, count, checksum

uint64_t fnv1a(const void* data, size_t n, uint64_t h = 0xcbf29ce484222325ULL) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

// The cache files' checksum: FNV-1a over 8-byte words (8x the byte-wise
// speed: the check must cost little beside the read), then the tail bytes.
uint64_t checksum(const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = 0xcbf29ce484222325ULL;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 0x100000001b3ULL;
    h ^= h >> 29;
  }
  return fnv1a(p + i, n - i, h);
}

// The clip of a cache file, or an undefined tensor when it does not read back whole.
torch::Tensor read_cache(const std::string& file, int64_t sample_rate) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  auto read_all = [fd](void* dst, size_t n) {
    auto* p = static_cast<char*>(dst);
    while (n > 0) {
      const ssize_t got = ::read(fd, p, n);
      if (got <= 0) return false;
      p += got;
      n -= static_cast<size_t>(got);
    }
    return true;
  };
  char header[kCacheHeader];
  if (!read_all(header, kCacheHeader) || std::memcmp(header, kCacheMagic, 8) != 0) return {};
  int64_t rate = 0, count = 0;
  uint64_t sum = 0;
  std::memcpy(&rate, header + 8, 8);
  std::memcpy(&count, header + 16, 8);
  std::memcpy(&sum, header + 24, 8);
  if (rate != sample_rate || count < 0) return {};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != kCacheHeader + static_cast<uint64_t>(count) * 4)
    return {};  // also bounds the allocation
  torch::Tensor out = torch::empty({count}, torch::kFloat32);
  if (count > 0 && !read_all(out.data_ptr<float>(), static_cast<size_t>(count) * 4)) return {};
  if (checksum(out.data_ptr<float>(), static_cast<size_t>(count) * 4) != sum) return {};
  return out;
}

// Writes a cache file atomically (a unique temporary, then a rename); false on failure.
bool write_cache(const std::string& file, const torch::Tensor& wave, int64_t sample_rate) {
  static std::atomic<uint64_t> serial{0};
  std::ostringstream tmp_name;
  tmp_name << file << ".tmp" << ::getpid() << "." << std::hash<std::thread::id>()(std::this_thread::get_id()) << "."
           << serial++;
  const std::string tmp = tmp_name.str();
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return false;
  const int64_t count = wave.numel();
  const uint64_t sum = checksum(wave.data_ptr<float>(), static_cast<size_t>(count) * 4);
  char header[kCacheHeader];
  std::memcpy(header, kCacheMagic, 8);
  std::memcpy(header + 8, &sample_rate, 8);
  std::memcpy(header + 16, &count, 8);
  std::memcpy(header + 24, &sum, 8);
  bool ok = std::fwrite(header, 1, kCacheHeader, f) == kCacheHeader &&
            (count == 0 || std::fwrite(wave.data_ptr<float>(), 4, static_cast<size_t>(count), f) == static_cast<size_t>(count));
  ok = std::fclose(f) == 0 && ok;
  std::error_code ec;
  if (ok) std::filesystem::rename(tmp, file, ec);
  if (!ok || ec) {
    std::filesystem::remove(tmp, ec);
    return false;
  }
  return true;
}

}  // namespace

std::string wave_cache_file(const std::string& path, int64_t sample_rate, const std::string& cache_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path absolute = fs::absolute(path, ec);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw DataError(path, str("cannot open the file (", std::strerror(errno), ")"));
  std::ostringstream key;
  key << absolute.lexically_normal().string() << '\n' << st.st_size << '\n' << st.st_mtim.tv_sec << '.'
      << st.st_mtim.tv_nsec << '\n' << sample_rate;
  const std::string k = key.str();
  char name[40];
  std::snprintf(name, sizeof(name), "%016llx.f32", static_cast<unsigned long long>(fnv1a(k.data(), k.size())));
  return (fs::path(cache_dir) / name).string();
}

torch::Tensor load_wave_cached(const std::string& path, int64_t sample_rate, const std::string& cache_dir) {
  if (cache_dir.empty()) return load_wave(path, sample_rate);
  const std::string file = wave_cache_file(path, sample_rate, cache_dir);
  torch::Tensor cached = read_cache(file, sample_rate);
  if (cached.defined()) return cached;
  torch::Tensor wave = load_wave(path, sample_rate);  // a bad source file throws here, naming it
  std::error_code ec;
  std::filesystem::create_directories(cache_dir, ec);
  if (!write_cache(file, wave, sample_rate)) {
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true))
      std::cerr << "audio: cannot write the resample cache in " << cache_dir
                << " (full, read-only or missing?); clips are resampled on every read" << std::endl;
  }
  return wave;
}

int64_t raw_read_frames(const std::string& path, int64_t* sample_rate) {
  SF_INFO info;
  SndFilePtr file = open_sound(path, info);
  if (sample_rate) *sample_rate = info.samplerate;
  const sf_count_t block = 16384;
  std::vector<float> buf(static_cast<size_t>(block * info.channels));
  int64_t total = 0;
  for (;;) {
    sf_count_t n = sf_readf_float(file.get(), buf.data(), block);
    if (n <= 0) break;
    total += n;
  }
  return total;
}

}  // namespace sslab::audio
