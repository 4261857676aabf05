// The audio plugin: manifest and synthetic-voice datasets (libsndfile
// decoding, libswresample resampling), crops, augmentations and log-mel
// features, the CPC encoder and objective, and the speaker/word probes with
// the log-mel and random-encoder baselines.
#include <sslab/components.h>
#include <sslab/plugin.h>
#include <sslab/settings.h>

#include <cmath>

#include "cpc.h"
#include "datasets.h"
#include "probes.h"
#include "transforms.h"

namespace sslab::audio {
namespace {

int64_t samples_of(double seconds, int64_t rate) { return static_cast<int64_t>(std::llround(seconds * rate)); }

void check_range(const Config& c, const std::string& key) {
  auto v = c.get_floats(key);
  SSLAB_CHECK(v[0] <= v[1], c.locate(key), " must be [lo, hi] with lo <= hi, got [", v[0], ", ", v[1], "]");
}

void register_datasets(Registrar& r) {
  Schema m;
  m.string("manifest", required,
           "TSV file: header 'path<TAB>col...', one clip per line; columns other than path and split are labels");
  m.string("split", std::string("train"), "train, test, or all").choices({"train", "test", "all"});
  m.number("test_fraction", 0.2, "share of each label class held out for test (manifests without a split column)")
      .min(0)
      .max(1);
  m.integer("split_seed", int64_t{0}, "seed of the held-out selection (manifests without a split column)").min(0);
  m.string("label", std::string(""), "manifest column that becomes \"label\" (e.g. speaker, word; empty: none)");
  m.integer("sample_rate", int64_t{16000}, "resample every clip to this rate (libswresample)").min(1000);
  m.number("seconds", 0.0, "crop clips to at most this many seconds (0: whole clips)").min(0);
  m.string("crop", std::string("start"), "where the fixed crop is taken: start or center").choices({"start", "center"});
  r.dataset("audio.manifest",
            "clips listed in a TSV manifest (WAV/FLAC/Ogg via libsndfile), mono, resampled: audio.wave [S], "
            "label, label.<column>",
            m, [](const Config& c, BuildContext&) {
              ManifestOptions o;
              o.manifest = c.get_path("manifest");
              o.split = c.get_string("split");
              o.test_fraction = c.get_float("test_fraction");
              o.split_seed = static_cast<uint64_t>(c.get_int("split_seed"));
              o.label = c.get_string("label");
              o.sample_rate = c.get_int("sample_rate");
              o.seconds = c.get_float("seconds");
              o.crop = c.get_string("crop");
              try {
                return std::make_shared<ManifestDataset>(o);
              } catch (const DataError&) {
                throw;
              } catch (const UserError& e) {
                throw UserError(str(c.locate("manifest"), ": ", e.what()));
              }
            });

  Schema s;
  s.integer("size", int64_t{512}, "number of clips").min(1);
  s.integer("voices", int64_t{4}, "number of voices (classes)").min(1);
  s.integer("sample_rate", int64_t{16000}, "sample rate").min(1000);
  s.number("seconds", 0.5, "clip duration").greater_than(0);
  s.number("noise", 0.02, "standard deviation of the added white noise").min(0);
  s.integer("seed", int64_t{0}, "clip seed: use different seeds for train and test").min(0);
  r.dataset("audio.synthetic_voices",
            "deterministic synthetic voices (harmonic tones with per-voice pitch and formants): audio.wave, label", s,
            [](const Config& c, BuildContext&) {
              SyntheticVoicesOptions o;
              o.size = c.get_int("size");
              o.voices = c.get_int("voices");
              o.sample_rate = c.get_int("sample_rate");
              o.seconds = c.get_float("seconds");
              o.noise = c.get_float("noise");
              o.seed = static_cast<uint64_t>(c.get_int("seed"));
              return std::make_shared<SyntheticVoices>(o);
            });
}

void register_transforms(Registrar& r) {
  Schema crop;
  crop.number("seconds", 1.0, "crop length; shorter clips pass whole").greater_than(0);
  crop.integer("sample_rate", int64_t{16000}, "rate of the wave").min(1000);
  r.transform("audio.random_crop", "a crop of fixed duration at a random offset", crop,
              [](const Config& c, BuildContext&) {
                return std::make_shared<RandomCrop>(samples_of(c.get_float("seconds"), c.get_int("sample_rate")));
              });

  Schema gain;
  gain.numbers("db", std::vector<double>{-6.0, 6.0}, "range of the gain in decibels").length(2);
  gain.number("p", 1.0, "probability of applying it").min(0).max(1);
  r.transform("audio.gain", "random gain in decibels", gain, [](const Config& c, BuildContext&) {
    check_range(c, "db");
    return std::make_shared<Gain>(c.get_floats("db")[0], c.get_floats("db")[1], c.get_float("p"));
  });

  Schema noise;
  noise.numbers("snr_db", std::vector<double>{10.0, 30.0}, "range of the signal-to-noise ratio in decibels").length(2);
  noise.number("p", 0.5, "probability of applying it").min(0).max(1);
  r.transform("audio.noise", "additive white noise at a random SNR", noise, [](const Config& c, BuildContext&) {
    check_range(c, "snr_db");
    return std::make_shared<AddNoise>(c.get_floats("snr_db")[0], c.get_floats("snr_db")[1], c.get_float("p"));
  });

  Schema shift;
  shift.number("max_seconds", 0.1, "largest shift either way").min(0);
  shift.integer("sample_rate", int64_t{16000}, "rate of the wave").min(1000);
  shift.boolean("circular", false, "roll around the end instead of zero-filling");
  r.transform("audio.time_shift", "shift in time by a random amount", shift, [](const Config& c, BuildContext&) {
    return std::make_shared<TimeShift>(samples_of(c.get_float("max_seconds"), c.get_int("sample_rate")),
                                       c.get_bool("circular"));
  });

  Schema mask;
  mask.integer("count", int64_t{2}, "spans zeroed").min(0);
  mask.number("max_seconds", 0.05, "widest span").min(0);
  mask.integer("sample_rate", int64_t{16000}, "rate of the wave").min(1000);
  mask.number("p", 0.5, "probability of applying it").min(0).max(1);
  r.transform("audio.time_mask", "zero random spans of time", mask, [](const Config& c, BuildContext&) {
    return std::make_shared<TimeMask>(
        c.get_int("count"), samples_of(c.get_float("max_seconds"), c.get_int("sample_rate")), c.get_float("p"));
  });

  Schema mel;
  mel.integer("sample_rate", int64_t{16000}, "rate of the wave").min(1000);
  mel.integer("n_fft", int64_t{400}, "FFT size and Hann window length (samples)").min(8);
  mel.integer("hop", int64_t{160}, "frame step (samples)").min(1);
  mel.integer("n_mels", int64_t{40}, "mel bands").min(1);
  mel.number("f_min", 0.0, "lowest band edge (Hz)").min(0);
  mel.number("f_max", 0.0, "highest band edge (Hz; 0: sample_rate / 2)").min(0);
  r.transform("audio.logmel", "log mel spectrogram [T, n_mels] (STFT via LibTorch FFT, HTK mel filterbank)", mel,
              [](const Config& c, BuildContext&) {
                LogMelOptions o;
                o.sample_rate = c.get_int("sample_rate");
                o.n_fft = c.get_int("n_fft");
                o.hop = c.get_int("hop");
                o.n_mels = c.get_int("n_mels");
                o.f_min = c.get_float("f_min");
                o.f_max = c.get_float("f_max");
                SSLAB_CHECK(o.f_max == 0 || o.f_max <= o.sample_rate / 2.0, c.locate("f_max"),
                            " must be at most sample_rate / 2 (", o.sample_rate / 2.0, ")");
                return std::make_shared<LogMel>(o);
              });
}

void register_encoders(Registrar& r) {
  Schema e;
  e.integers("kernels", std::vector<int64_t>{10, 8, 4, 4, 4}, "kernel of each strided convolution").min(1);
  e.integers("strides", std::vector<int64_t>{5, 4, 2, 2, 2}, "stride of each convolution (product: samples per frame)")
      .min(1);
  e.integers("paddings", std::vector<int64_t>{3, 2, 1, 1, 1}, "zero padding of each convolution").min(0);
  e.integer("channels", int64_t{256}, "latent width (convolution channels)").min(1);
  e.string("features", std::string("wave"),
           "input features: the raw wave, or log-mel frames the encoder computes from it (hop = total stride)")
      .choices({"wave", "logmel"});
  e.integer("n_mels", int64_t{40}, "mel bands of a log-mel input").min(1);
  e.string("context", std::string("gru"), "autoregressive context network: gru or (causal) transformer")
      .choices({"gru", "transformer"});
  e.integer("context_dim", int64_t{256}, "context width").min(1);
  e.integer("context_layers", int64_t{1}, "GRU or transformer layers").min(1);
  e.integer("heads", int64_t{4}, "attention heads of the transformer context").min(1);
  e.boolean("normalize_wave", true, "standardise each wave over its real samples before the convolutions");
  e.string("pool", std::string("context"), "utterance embedding: mean over real frames of the context, latent, or both")
      .choices({"context", "latent", "both"});
  r.encoder("audio.cpc_encoder",
            "CPC encoder: strided 1-D convolutions (10 ms frames) + GRU/causal-transformer context", e,
            [](const Config& c, BuildContext&) {
              CpcEncoderOptions o;
              o.kernels(c.get_ints("kernels")).strides(c.get_ints("strides")).paddings(c.get_ints("paddings"));
              SSLAB_CHECK(o.kernels().size() == o.strides().size() && o.kernels().size() == o.paddings().size() &&
                              !o.kernels().empty(),
                          c.locate("strides"), ": kernels, strides and paddings must have the same (non-zero) length");
              o.channels(c.get_int("channels")).features(c.get_string("features")).n_mels(c.get_int("n_mels"));
              o.context(c.get_string("context")).context_dim(c.get_int("context_dim"));
              o.context_layers(c.get_int("context_layers")).heads(c.get_int("heads"));
              o.normalize_wave(c.get_bool("normalize_wave")).pool(c.get_string("pool"));
              SSLAB_CHECK(o.context() != "transformer" || o.context_dim() % o.heads() == 0, c.locate("heads"), " (",
                          o.heads(), ") must divide context_dim (", o.context_dim(), ")");
              auto enc = std::make_shared<CpcEncoder>(o);
              enc->set_input("audio.wave");
              return enc;
            });
}

void register_objectives(Registrar& r) {
  Schema o;
  o.string("encoder", std::string("audio"), "the audio.cpc_encoder (name under [encoders])");
  o.integer("prediction_steps", int64_t{12}, "K: frames ahead to predict, one linear predictor each").min(1);
  o.integer("negatives", int64_t{16}, "negatives per prediction").min(1);
  o.string("negatives_from", std::string("batch"),
           "batch: frames of any utterance in the batch; utterance: other frames of the same one; speaker: "
           "utterances with the same speaker label")
      .choices({"batch", "utterance", "speaker"});
  o.string("speaker_key", std::string("label.speaker"), "batch key of speaker labels (negatives_from = \"speaker\")");
  r.objective(
      "audio.cpc", "contrastive predictive coding: InfoNCE of future latents from the context (Oord et al. 2018)", o,
      [](const Config& c, BuildContext& ctx) {
        auto enc = std::dynamic_pointer_cast<CpcEncoder>(ctx.encoder(c.get_string("encoder"), c.locate("encoder")));
        SSLAB_CHECK(enc, c.locate("encoder"), ": encoder '", c.get_string("encoder"), "' is not an audio.cpc_encoder");
        CpcOptions opt;
        opt.prediction_steps(c.get_int("prediction_steps")).negatives(c.get_int("negatives"));
        opt.negatives_from(c.get_string("negatives_from")).speaker_key(c.get_string("speaker_key"));
        return std::make_shared<Cpc>(enc, opt);
      });
}

void register_evaluators(Registrar& r) {
  using O = LabelProbesOptions;
  Settings<O> e;
  e.add("encoder", &O::encoder, "encoder to evaluate (empty: the only one)");
  e.add("labels", &O::labels, "label keys to probe, e.g. [\"label.speaker\", \"label.word\"]");
  e.add("logmel_baseline", &O::logmel_baseline, "log-mel (mean + std over frames) + logistic regression baseline");
  e.add("sample_rate", [](O& o) -> int64_t& { return o.logmel.sample_rate; }, "rate of the waves (log-mel baseline)")
      .min(1000);
  e.add("n_mels", [](O& o) -> int64_t& { return o.logmel.n_mels; }, "mel bands of the baseline").min(1);
  e.add("n_fft", [](O& o) -> int64_t& { return o.logmel.n_fft; }, "FFT size of the baseline").min(8);
  e.add("hop", [](O& o) -> int64_t& { return o.logmel.hop; }, "frame step of the baseline").min(1);
  add_probe_settings(e, [](O& o) -> ProbeSettings& { return o.settings; }, kProbeKeysAll);
  r.evaluator("audio.label_probes",
              "linear probe + kNN per label key (speaker, word) beside log-mel and random-encoder baselines", e.schema(),
              [e](const Config& c, BuildContext&) { return std::make_shared<LabelProbes>(e.read(c)); });
}

void register_components(Registrar& r) {
  register_datasets(r);
  register_transforms(r);
  register_encoders(r);
  register_objectives(r);
  register_evaluators(r);
}

}  // namespace
}  // namespace sslab::audio

SSLAB_PLUGIN("audio", "0.1.0",
             "Audio: manifest datasets (libsndfile, libswresample), augmentations, log-mel, CPC encoder and objective",
             sslab::audio::register_components)
