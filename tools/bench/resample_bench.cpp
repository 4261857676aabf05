// Resampler benchmark behind the #22 note (not part of the build): 22,050 ->
// 16,000 Hz on one core, libswresample at filter sizes 32/16/8 (speed, a
// 3 kHz tone's level, a 9 kHz tone's alias at 7 kHz) and libsoxr's quality
// presets (speed).
//   apt-get install libsoxr-dev
//   g++ -O2 tools/bench/resample_bench.cpp -o /tmp/resample_bench -lsoxr -lswresample -lavutil && /tmp/resample_bench
#include <soxr.h>
extern "C" {
#include <libswresample/swresample.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
}
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>
static std::vector<float> run(SwrContext* swr, const std::vector<float>& in, int to) {
  swr_init(swr);
  std::vector<float> out(in.size() * to / 22050 + 1024);
  const uint8_t* ip[1] = {(const uint8_t*)in.data()}; uint8_t* op[1] = {(uint8_t*)out.data()};
  int got = swr_convert(swr, op, out.size(), ip, in.size());
  while (true) { uint8_t* tp[1] = {(uint8_t*)(out.data() + got)}; int m = swr_convert(swr, tp, out.size() - got, nullptr, 0); if (m <= 0) break; got += m; }
  out.resize(got);
  return out;
}
static double level_db(const std::vector<float>& x, double f, int rate) {  // amplitude of frequency f, middle half
  size_t a = x.size() / 4, b = 3 * x.size() / 4;
  double re = 0, im = 0;
  for (size_t i = a; i < b; ++i) { double w = 0.5 - 0.5 * std::cos(2 * M_PI * (i - a) / (b - a)); re += w * x[i] * std::cos(2 * M_PI * f * i / rate); im += w * x[i] * std::sin(2 * M_PI * f * i / rate); }
  double amp = 2 * std::sqrt(re * re + im * im) / ((b - a) * 0.5);
  return 20 * std::log10(amp + 1e-20);
}
static void swr_filter_tradeoff() {
  const int from = 22050, to = 16000, secs = 2, reps = 300;
  std::vector<float> noise(from * secs), tone3(from * secs), tone9(from * secs);
  unsigned s = 1;
  for (int i = 0; i < from * secs; ++i) { s = s * 1103515245 + 12345; noise[i] = ((s >> 8) & 0xffff) / 65536.0f - 0.5f;
    tone3[i] = 0.5f * std::sin(2 * M_PI * 3000.0 * i / from); tone9[i] = 0.5f * std::sin(2 * M_PI * 9000.0 * i / from); }
  for (int fs : {32, 16, 8}) {
    SwrContext* swr = nullptr;
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    swr_alloc_set_opts2(&swr, &mono, AV_SAMPLE_FMT_FLT, to, &mono, AV_SAMPLE_FMT_FLT, from, 0, nullptr);
    av_opt_set_int(swr, "filter_size", fs, 0);
    run(swr, noise, to);
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) run(swr, noise, to);
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto a = run(swr, tone3, to), b = run(swr, tone9, to);
    printf("filter_size %2d: %6.0f audio-s/s | 3 kHz tone %+.3f dB (in: %+.3f) | 9 kHz alias at 7 kHz %+.1f dB\n", fs,
           reps * secs / sec, level_db(a, 3000, to), 20 * std::log10(0.5), level_db(b, 7000, to));
    swr_free(&swr);
  }
}

#include <random>
int main() {
  swr_filter_tradeoff();
  const int from = 22050, to = 16000, secs = 2, reps = 200;
  std::vector<float> in(from * secs);
  std::mt19937 g(1); std::normal_distribution<float> n(0, 0.1f);
  for (auto& x : in) x = n(g);
  std::vector<float> out(to * secs + 1024);
  // swr
  SwrContext* swr = nullptr;
  AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
  swr_alloc_set_opts2(&swr, &mono, AV_SAMPLE_FMT_FLT, to, &mono, AV_SAMPLE_FMT_FLT, from, 0, nullptr);
  auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) {
    swr_init(swr);
    const uint8_t* ip[1] = {(const uint8_t*)in.data()}; uint8_t* op[1] = {(uint8_t*)out.data()};
    int got = swr_convert(swr, op, out.size(), ip, in.size());
    while (true) { uint8_t* tp[1] = {(uint8_t*)(out.data() + got)}; int m = swr_convert(swr, tp, out.size() - got, nullptr, 0); if (m <= 0) break; got += m; }
  }
  double swr_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  printf("swr: %.0f audio-s/s\n", reps * secs / swr_s);
  for (unsigned long q : {SOXR_QQ, SOXR_LQ, SOXR_MQ, SOXR_HQ, SOXR_VHQ}) {
    soxr_quality_spec_t qs = soxr_quality_spec(q, 0);
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_runtime_spec_t rt = soxr_runtime_spec(1);
    auto t1 = std::chrono::steady_clock::now();
    size_t odone = 0;
    for (int r = 0; r < reps; ++r) {
      size_t idone = 0;
      soxr_error_t e = soxr_oneshot(from, to, 1, in.data(), in.size(), &idone, out.data(), out.size(), &odone, &io, &qs, &rt);
      if (e) { printf("err %s\n", e); return 1; }
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    printf("soxr q=%lu: %.0f audio-s/s (%zu out)\n", q, reps * secs / s, odone);
  }
  // soxr with a reused resampler (clear between clips)
  {
    soxr_quality_spec_t qs = soxr_quality_spec(SOXR_HQ, 0);
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_runtime_spec_t rt = soxr_runtime_spec(1);
    soxr_error_t e; soxr_t s = soxr_create(from, to, 1, &e, &io, &qs, &rt);
    auto t1 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) {
      soxr_clear(s);
      size_t idone = 0, odone = 0, o2 = 0;
      soxr_process(s, in.data(), in.size(), &idone, out.data(), out.size(), &odone);
      soxr_process(s, nullptr, 0, nullptr, out.data() + odone, out.size() - odone, &o2);
    }
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    printf("soxr HQ reused: %.0f audio-s/s\n", reps * secs / sec);
    soxr_delete(s);
  }
}
