// The video plugin: FFmpeg-decoded clip datasets and in-memory Moving
// Fashion-MNIST, the conv + ConvGRU encoder, the frame decoder head, the
// frame-prediction objective, and the next-frame MSE and item-probe
// evaluators. Every component and the recipe keys it reads are registered here.
#include <sslab/components.h>
#include <sslab/plugin.h>
#include <sslab/settings.h>

#include "datasets.h"
#include "evaluators.h"
#include "model.h"

namespace sslab::video {
namespace {

void register_datasets(Registrar& r) {
  using C = ClipsOptions;
  Settings<C> c;
  c.add("manifest", &C::manifest,
        "TSV with a header: path, optional split (train/test), optional frames, optional classes (\"3,7\"); paths "
        "relative to the manifest")
      .required()
      .path();
  c.add("split", &C::split, "rows of this split: train, test, or all").choices({"train", "test", "all"});
  c.add("frames", &C::frames, "frames per clip (T)").min(1);
  c.add("stride", &C::stride, "step between sampled frames").min(1);
  c.add("start", &C::start,
        "clip start: first frame, center, or random (seeded by seed and sample index; seeks in the file)")
      .choices({"first", "center", "random"});
  c.add("clips_per_video", &C::clips_per_video, "samples per file (each with its own random start)").min(1);
  c.add("seed", &C::seed, "seed of random starts").min(0);
  c.add("classes", &C::classes, "width of label.items (0: 1 + the largest class in the manifest)").min(0);
  c.add("width", [](C& o) -> int64_t& { return o.read.width; }, "resize frames to this width with swscale (0: keep)")
      .min(0);
  c.add("height", [](C& o) -> int64_t& { return o.read.height; },
        "resize frames to this height with swscale (0: keep)")
      .min(0);
  c.add("pixel_format", [](C& o) -> std::string& { return o.read.pixel_format; }, "gray (C=1) or rgb (C=3)")
      .choices({"gray", "rgb"});
  c.add("decoder_threads", [](C& o) -> int& { return o.read.threads; },
        "FFmpeg decoder threads per file (0: FFmpeg's choice)")
      .min(0);
  r.dataset("video.clips",
            "video files in a TSV manifest decoded with FFmpeg (any container/codec it reads): video.frames "
            "[T,C,H,W] in [0,1], label.items (multi-hot), label (single-item clips)",
            c.schema(), [c](const Config& cfg, BuildContext&) {
              try {
                return std::make_shared<ClipsDataset>(c.read(cfg));
              } catch (const DataError&) {
                throw;
              } catch (const UserError& e) {
                throw UserError(str(cfg.locate("manifest"), ": ", e.what()));
              }
            });

  using M = MovingDatasetOptions;
  Settings<M> m;
  m.add("root", &M::root, "folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]").path();
  m.add("split", &M::split, "source images: train or test").choices({"train", "test"});
  m.add("size", &M::size, "number of clips").min(1);
  m.add("seed", &M::seed, "clip seed").min(0);
  m.add("frames", [](M& o) -> int64_t& { return o.clip.frames; }, "frames per clip").min(1);
  m.add("items", [](M& o) -> int64_t& { return o.clip.items; },
        "items per clip (1: single-item clips with a \"label\")")
      .min(1);
  m.add("canvas", [](M& o) -> int64_t& { return o.clip.canvas; }, "canvas side in pixels").min(29);
  r.dataset("video.moving_fmnist",
            "Moving Fashion-MNIST made in memory (no files): video.frames [T,1,64,64], label.items, label (items = 1)",
            m.schema(),
            [m](const Config& cfg, BuildContext&) { return std::make_shared<MovingFashionMnist>(m.read(cfg)); });
}

void register_models(Registrar& r) {
  using E = VideoEncoderOptions;
  Settings<E> e;
  e.add("channels", SSLAB_ARG(E, in_channels), "input channels: 1 (gray) or 3 (rgb)").min(1).max(3);
  e.add("width", SSLAB_ARG(E, channels), "frame features c (last conv level)").min(1);
  e.add("hidden", SSLAB_ARG(E, hidden), "ConvGRU state channels (= embedding size)").min(1);
  e.add("downsample", SSLAB_ARG(E, downsample), "stride-2 convolutions per frame (64x64 -> 16x16 grid at 2)")
      .min(1)
      .max(5);
  e.add("layers", SSLAB_ARG(E, layers), "stacked ConvGRU cells").min(1);
  e.add("kernel", SSLAB_ARG(E, kernel), "ConvGRU kernel size (odd)").min(1);
  e.add("pool", SSLAB_ARG(E, pool),
        "clip embedding: mean of the GRU state over time and space, the last frame's state, or both (the mean "
        "state next to the mean frame features)")
      .choices({"mean", "last", "both"});
  r.encoder("video.encoder", "per-frame conv net + ConvGRU; clip embedding = pooled GRU state", e.schema(),
            [e](const Config& c, BuildContext&) {
              E o = e.read(c);
              SSLAB_CHECK(o.kernel() % 2 == 1, c.locate("kernel"), " must be odd");
              return std::make_shared<VideoEncoder>(o);
            });

  using D = FrameDecoderOptions;
  Settings<D> d;
  d.schema().string("encoder", "video", "the video.encoder it decodes (name under [encoders])");
  d.add("width", &D::width, "channels of the first decoder level (halved at each upsampling)").min(1);
  d.add("output", &D::output,
        "linear (pixels = the output clamped to [0,1]; pixel MSE on the raw output) or sigmoid (for loss = bce)")
      .choices({"linear", "sigmoid"});
  r.head("video.frame_decoder", "ConvGRU readout -> next frame (nearest upsampling + convs; linear or sigmoid output)",
         d.schema(), [d](const Config& c, BuildContext& ctx) {
           auto enc =
               std::dynamic_pointer_cast<VideoEncoder>(ctx.encoder(c.get_string("encoder"), c.locate("encoder")));
           SSLAB_CHECK(enc, c.locate("encoder"), ": encoder '", c.get_string("encoder"), "' is not a video.encoder");
           const auto& e = enc->options();
           D o = d.read(c);
           return std::make_shared<FrameDecoder>(enc->readout_dim(), o.width, e.downsample(), e.in_channels(),
                                                 o.output == "sigmoid");
         });

  using P = FramePredictionOptions;
  Settings<P> p;
  p.schema().string("encoder", "video", "the video.encoder (name under [encoders])");
  p.schema().string("decoder", "decoder", "the video.frame_decoder (name under [heads])");
  p.add("context_frames", SSLAB_ARG(P, context_frames), "k: frames observed").min(1);
  p.add("predict_frames", SSLAB_ARG(P, predict_frames), "n: frames predicted after them").min(1);
  p.add("loss", SSLAB_ARG(P, loss), "pixel loss: mse, or bce (binary cross-entropy; decoder output = sigmoid)")
      .choices({"mse", "bce"});
  p.add("target", SSLAB_ARG(P, target),
        "pixels, or latent: predict the frame features of an EMA copy of the encoder (the pixel decoder then "
        "trains on detached states, for the MSE metric)")
      .choices({"pixels", "latent"});
  p.schema().number("ema_momentum", 0.99, "EMA momentum of the latent target").min(0).max(1);
  p.add("feedback", SSLAB_ARG(P, feedback),
        "input while predicting: the model's previous prediction (as at test time) or the true frame")
      .choices({"prediction", "truth"});
  r.objective(
      "video.frame_prediction",
      "predict the next n frames from the first k (pixel or latent target); logs MSE per frame beside "
      "copy-last-frame",
      p.schema(), [p](const Config& c, BuildContext& ctx) {
        auto enc = std::dynamic_pointer_cast<VideoEncoder>(ctx.encoder(c.get_string("encoder"), c.locate("encoder")));
        SSLAB_CHECK(enc, c.locate("encoder"), ": encoder '", c.get_string("encoder"), "' is not a video.encoder");
        auto dec = std::dynamic_pointer_cast<FrameDecoder>(ctx.head(c.get_string("decoder"), c.locate("decoder")));
        SSLAB_CHECK(dec, c.locate("decoder"), ": head '", c.get_string("decoder"), "' is not a video.frame_decoder");
        P o = p.read(c);
        std::shared_ptr<VideoEncoder> target;
        if (o.target() == "latent") {
          target = std::dynamic_pointer_cast<VideoEncoder>(
              ctx.ema_target(c.get_string("encoder"), EmaOptions{c.get_float("ema_momentum")}, c.locate("target")));
          SSLAB_ASSERT(target, "the EMA target of a video.encoder is not a video.encoder");
        }
        return std::make_shared<FramePrediction>(enc, dec, o, target);
      });
}

void register_evaluators(Registrar& r) {
  using N = NextFrameOptions;
  Settings<N> n;
  n.add("encoder", &N::encoder, "the video.encoder");
  n.add("decoder", &N::decoder, "the video.frame_decoder head");
  n.add("context_frames", &N::context_frames, "k: frames observed").min(1);
  n.add("predict_frames", &N::predict_frames, "n: frames predicted (rolled out on the model's own predictions)")
      .min(1);
  n.add("test_limit", &N::test_limit, "use at most this many test clips (0: all)").min(0);
  n.add("batch_size", &N::batch_size, "clips per batch").min(1);
  r.evaluator("video.next_frame_mse",
              "next-frame MSE per frame on the test split (Moving MNIST convention) beside copy-last-frame",
              n.schema(), [n](const Config& c, BuildContext&) { return std::make_shared<NextFrameEval>(n.read(c)); });

  using P = ItemProbeOptions;
  Settings<P> p;
  p.add("encoder", &P::encoder, "encoder to evaluate (empty: the only one)");
  p.add("labels", &P::labels, "multi-hot batch key to probe");
  p.add("raw_baseline", &P::raw_baseline, "probe the clip's mean frame (raw pixels)");
  add_probe_settings(p, [](P& o) -> ProbeSettings& { return o.settings; });
  r.evaluator("video.item_probe",
              "multi-label linear probe of the clip embedding on the items' classes (mAP, recall@m) beside "
              "random-encoder and mean-frame baselines",
              p.schema(), [p](const Config& c, BuildContext&) { return std::make_shared<ItemProbe>(p.read(c)); });
}

void register_components(Registrar& r) {
  register_datasets(r);
  register_models(r);
  register_evaluators(r);
}

}  // namespace
}  // namespace sslab::video

SSLAB_PLUGIN("video", "0.1.0",
             "Video: FFmpeg clip datasets, Moving Fashion-MNIST, conv + ConvGRU encoder, frame prediction",
             sslab::video::register_components)
