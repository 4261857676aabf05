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
  using M = ManifestOptions;
  Settings<M> m;
  m.add("manifest", &M::manifest,
        "TSV file: header 'path<TAB>col...', one clip per line; columns other than path and split are labels")
      .required()
      .path();
  m.add("split", &M::split, "train, test, or all").choices({"train", "test", "all"});
  m.add("test_fraction", &M::test_fraction,
        "share of each label class held out for test (manifests without a split column)")
      .min(0)
      .max(1);
  m.add("split_seed", &M::split_seed, "seed of the held-out selection (manifests without a split column)").min(0);
  m.add("label", &M::label, "manifest column that becomes \"label\" (e.g. speaker, word; empty: none)");
  m.add("sample_rate", &M::sample_rate, "resample every clip to this rate (libswresample)").min(1000);
  m.add("seconds", &M::seconds, "crop clips to at most this many seconds (0: whole clips)").min(0);
  m.add("crop", &M::crop, "where the fixed crop is taken: start or center").choices({"start", "center"});
  m.add("resample_cache", &M::resample_cache,
        "folder for the clips resampled to sample_rate, each stored on its first read and read back whole after "
        "(float32 with a checksum; a changed source file gets a new entry; \"\": resample on every read)")
      .path();
  r.dataset("audio.manifest",
            "clips listed in a TSV manifest (WAV/FLAC/Ogg via libsndfile), mono, resampled: audio.wave [S], "
            "label, label.<column>",
            m.schema(), [m](const Config& c, BuildContext&) {
              try {
                return std::make_shared<ManifestDataset>(m.read(c));
              } catch (const DataError&) {
                throw;
              } catch (const UserError& e) {
                throw UserError(str(c.locate("manifest"), ": ", e.what()));
              }
            });

  using V = SyntheticVoicesOptions;
  Settings<V> s;
  s.add("size", &V::size, "number of clips").min(1);
  s.add("voices", &V::voices, "number of voices (classes)").min(1);
  s.add("sample_rate", &V::sample_rate, "sample rate").min(1000);
  s.add("seconds", &V::seconds, "clip duration").greater_than(0);
  s.add("noise", &V::noise, "standard deviation of the added white noise").min(0);
  s.add("seed", &V::seed, "clip seed: use different seeds for train and test").min(0);
  r.dataset("audio.synthetic_voices",
            "deterministic synthetic voices (harmonic tones with per-voice pitch and formants): audio.wave, label",
            s.schema(), [s](const Config& c, BuildContext&) { return std::make_shared<SyntheticVoices>(s.read(c)); });
}

void register_transforms(Registrar& r) {
  Settings<RandomCropOptions> crop;
  crop.add("seconds", &RandomCropOptions::seconds, "crop length; shorter clips pass whole").greater_than(0);
  crop.add("sample_rate", &RandomCropOptions::sample_rate, "rate of the wave").min(1000);
  r.transform("audio.random_crop", "a crop of fixed duration at a random offset", crop.schema(),
              [crop](const Config& c, BuildContext&) {
                auto o = crop.read(c);
                return std::make_shared<RandomCrop>(samples_of(o.seconds, o.sample_rate));
              });

  Settings<GainOptions> gain;
  gain.add("db", &GainOptions::db, "range of the gain in decibels").length(2);
  gain.add("p", &GainOptions::p, "probability of applying it").min(0).max(1);
  r.transform("audio.gain", "random gain in decibels", gain.schema(), [gain](const Config& c, BuildContext&) {
    check_range(c, "db");
    auto o = gain.read(c);
    return std::make_shared<Gain>(o.db[0], o.db[1], o.p);
  });

  Settings<AddNoiseOptions> noise;
  noise.add("snr_db", &AddNoiseOptions::snr_db, "range of the signal-to-noise ratio in decibels").length(2);
  noise.add("p", &AddNoiseOptions::p, "probability of applying it").min(0).max(1);
  r.transform("audio.noise", "additive white noise at a random SNR", noise.schema(),
              [noise](const Config& c, BuildContext&) {
                check_range(c, "snr_db");
                auto o = noise.read(c);
                return std::make_shared<AddNoise>(o.snr_db[0], o.snr_db[1], o.p);
              });

  Settings<TimeShiftOptions> shift;
  shift.add("max_seconds", &TimeShiftOptions::max_seconds, "largest shift either way").min(0);
  shift.add("sample_rate", &TimeShiftOptions::sample_rate, "rate of the wave").min(1000);
  shift.add("circular", &TimeShiftOptions::circular, "roll around the end instead of zero-filling");
  r.transform("audio.time_shift", "shift in time by a random amount", shift.schema(),
              [shift](const Config& c, BuildContext&) {
                auto o = shift.read(c);
                return std::make_shared<TimeShift>(samples_of(o.max_seconds, o.sample_rate), o.circular);
              });

  Settings<TimeMaskOptions> mask;
  mask.add("count", &TimeMaskOptions::count, "spans zeroed").min(0);
  mask.add("max_seconds", &TimeMaskOptions::max_seconds, "widest span").min(0);
  mask.add("sample_rate", &TimeMaskOptions::sample_rate, "rate of the wave").min(1000);
  mask.add("p", &TimeMaskOptions::p, "probability of applying it").min(0).max(1);
  r.transform("audio.time_mask", "zero random spans of time", mask.schema(), [mask](const Config& c, BuildContext&) {
    auto o = mask.read(c);
    return std::make_shared<TimeMask>(o.count, samples_of(o.max_seconds, o.sample_rate), o.p);
  });

  Settings<LogMelOptions> mel;
  mel.add("sample_rate", &LogMelOptions::sample_rate, "rate of the wave").min(1000);
  mel.add("n_fft", &LogMelOptions::n_fft, "FFT size and Hann window length (samples)").min(8);
  mel.add("hop", &LogMelOptions::hop, "frame step (samples)").min(1);
  mel.add("n_mels", &LogMelOptions::n_mels, "mel bands").min(1);
  mel.add("f_min", &LogMelOptions::f_min, "lowest band edge (Hz)").min(0);
  mel.add("f_max", &LogMelOptions::f_max, "highest band edge (Hz; 0: sample_rate / 2)").min(0);
  r.transform("audio.logmel", "log mel spectrogram [T, n_mels] (STFT via LibTorch FFT, HTK mel filterbank)",
              mel.schema(), [mel](const Config& c, BuildContext&) {
                LogMelOptions o = mel.read(c);
                SSLAB_CHECK(o.f_max == 0 || o.f_max <= o.sample_rate / 2.0, c.locate("f_max"),
                            " must be at most sample_rate / 2 (", o.sample_rate / 2.0, ")");
                return std::make_shared<LogMel>(o);
              });
}

void register_encoders(Registrar& r) {
  using E = CpcEncoderOptions;
  Settings<E> e;
  e.add("kernels", SSLAB_ARG(E, kernels), "kernel of each strided convolution").min(1);
  e.add("strides", SSLAB_ARG(E, strides), "stride of each convolution (product: samples per frame)").min(1);
  e.add("paddings", SSLAB_ARG(E, paddings), "zero padding of each convolution").min(0);
  e.add("channels", SSLAB_ARG(E, channels), "latent width (convolution channels)").min(1);
  e.add("features", SSLAB_ARG(E, features),
        "input features: the raw wave, or log-mel frames the encoder computes from it (hop = total stride)")
      .choices({"wave", "logmel"});
  e.add("n_mels", SSLAB_ARG(E, n_mels), "mel bands of a log-mel input").min(1);
  e.add("context", SSLAB_ARG(E, context), "autoregressive context network: gru or (causal) transformer")
      .choices({"gru", "transformer"});
  e.add("context_dim", SSLAB_ARG(E, context_dim), "context width").min(1);
  e.add("context_layers", SSLAB_ARG(E, context_layers), "GRU or transformer layers").min(1);
  e.add("heads", SSLAB_ARG(E, heads), "attention heads of the transformer context").min(1);
  e.add("normalize_wave", SSLAB_ARG(E, normalize_wave),
        "standardise each wave over its real samples before the convolutions");
  e.add("pool", SSLAB_ARG(E, pool), "utterance embedding: mean over real frames of the context, latent, or both")
      .choices({"context", "latent", "both"});
  r.encoder("audio.cpc_encoder",
            "CPC encoder: strided 1-D convolutions (10 ms frames) + GRU/causal-transformer context", e.schema(),
            [e](const Config& c, BuildContext&) {
              CpcEncoderOptions o = e.read(c);
              SSLAB_CHECK(o.kernels().size() == o.strides().size() && o.kernels().size() == o.paddings().size() &&
                              !o.kernels().empty(),
                          c.locate("strides"), ": kernels, strides and paddings must have the same (non-zero) length");
              SSLAB_CHECK(o.context() != "transformer" || o.context_dim() % o.heads() == 0, c.locate("heads"), " (",
                          o.heads(), ") must divide context_dim (", o.context_dim(), ")");
              auto enc = std::make_shared<CpcEncoder>(o);
              enc->set_input("audio.wave");
              return enc;
            });
}

void register_objectives(Registrar& r) {
  using O = CpcOptions;
  Settings<O> o;
  o.schema().string("encoder", "audio", "the audio.cpc_encoder (name under [encoders])");
  o.add("prediction_steps", SSLAB_ARG(O, prediction_steps), "K: frames ahead to predict, one linear predictor each")
      .min(1);
  o.add("negatives", SSLAB_ARG(O, negatives), "negatives per prediction").min(1);
  o.add("negatives_from", SSLAB_ARG(O, negatives_from),
        "batch: frames of any utterance in the batch; utterance: other frames of the same one; speaker: "
        "utterances with the same speaker label")
      .choices({"batch", "utterance", "speaker"});
  o.add("speaker_key", SSLAB_ARG(O, speaker_key), "batch key of speaker labels (negatives_from = \"speaker\")");
  r.objective(
      "audio.cpc", "contrastive predictive coding: InfoNCE of future latents from the context (Oord et al. 2018)",
      o.schema(), [o](const Config& c, BuildContext& ctx) {
        auto enc = std::dynamic_pointer_cast<CpcEncoder>(ctx.encoder(c.get_string("encoder"), c.locate("encoder")));
        SSLAB_CHECK(enc, c.locate("encoder"), ": encoder '", c.get_string("encoder"), "' is not an audio.cpc_encoder");
        return std::make_shared<Cpc>(enc, o.read(c));
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
