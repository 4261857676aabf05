#include "video_io.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <vector>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avstring.h>
#include <libavutil/error.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

namespace sslab::video {
namespace {

struct FormatInputCloser {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct CodecFreer {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameFreer {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsFreer {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
// An output context: closes its file (when it opened one) and frees it.
struct FormatOutputCloser {
  void operator()(AVFormatContext* f) const {
    if (f->pb && !(f->oformat->flags & AVFMT_NOFILE)) avio_closep(&f->pb);
    avformat_free_context(f);
  }
};

using FramePtr = std::unique_ptr<AVFrame, FrameFreer>;
using PacketPtr = std::unique_ptr<AVPacket, PacketFreer>;
using SwsPtr = std::unique_ptr<SwsContext, SwsFreer>;

// Frames this close ahead of the current position are reached by decoding
// forward instead of seeking (a seek lands on a key frame and decodes from
// there anyway).
constexpr int64_t kForwardWindow = 12;

// The demuxers a data file may be opened with: self-contained containers and
// elementary streams. Playlists and scripts that name other files or URLs
// (concat, hls, dash, image2 patterns, tee, ...) are refused, so a file in a
// data set can neither pull in another file nor reach the network.
// SSLAB_FFMPEG_DEMUXERS replaces the list (comma-separated FFmpeg names).
constexpr const char* kDemuxers =
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,mpeg,mpegvideo,m4v,h264,hevc,flv,ogg,nut,asf,ivf,gif,"
    "yuv4mpegpipe";

std::string allowed_demuxers() {
  const char* env = std::getenv("SSLAB_FFMPEG_DEMUXERS");
  return env && *env ? env : kDemuxers;
}

// FFmpeg's guess at a file's container from its first bytes and name ("" when
// it has none), to say which demuxer was refused.
std::string probe_demuxer(const std::string& path) {
  std::vector<unsigned char> head(4096 + AVPROBE_PADDING_SIZE, 0);
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return "";
  const size_t n = std::fread(head.data(), 1, 4096, f);
  std::fclose(f);
  AVProbeData pd{};
  pd.filename = path.c_str();
  pd.buf = head.data();
  pd.buf_size = static_cast<int>(n);
  const AVInputFormat* fmt = av_probe_input_format(&pd, 1);
  return fmt ? fmt->name : "";
}

AVPixelFormat output_format(const std::string& name) {
  if (name == "gray") return AV_PIX_FMT_GRAY8;
  if (name == "rgb") return AV_PIX_FMT_RGB24;
  throw UserError(str("video: pixel_format must be gray or rgb, got '", name, "'"));
}

// Points swscale at a scaler for the given conversion, reusing `sws` when it fits.
SwsContext* cached_scaler(SwsPtr& sws, int sw, int sh, AVPixelFormat sf, int dw, int dh, AVPixelFormat df) {
  const int flags = (dw < sw || dh < sh) ? SWS_AREA : SWS_BILINEAR;
  SwsContext* c = sws_getCachedContext(sws.release(), sw, sh, sf, dw, dh, df, flags, nullptr, nullptr, nullptr);
  sws.reset(c);
  return c;
}

// FFmpeg logs every encoder's statistics and every concealed decoding error
// to stderr; sslab reports failures as DataErrors instead. SSLAB_FFMPEG_LOG
// (quiet, error, warning, info, verbose, debug) restores FFmpeg's own log.
void quiet_ffmpeg_log() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = std::getenv("SSLAB_FFMPEG_LOG");
    const std::string level = env ? env : "fatal";
    int l = AV_LOG_FATAL;
    if (level == "quiet")
      l = AV_LOG_QUIET;
    else if (level == "error")
      l = AV_LOG_ERROR;
    else if (level == "warning")
      l = AV_LOG_WARNING;
    else if (level == "info")
      l = AV_LOG_INFO;
    else if (level == "verbose")
      l = AV_LOG_VERBOSE;
    else if (level == "debug")
      l = AV_LOG_DEBUG;
    av_log_set_level(l);
  });
}

// Whether the container's header alone describes a video stream well
// enough to decode it: codec, frame size and frame rate known (the decoder
// finds the pixel format itself).
bool header_describes_video(const AVFormatContext* fmt) {
  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    const AVStream* st = fmt->streams[i];
    const AVCodecParameters* p = st->codecpar;
    if (p->codec_type != AVMEDIA_TYPE_VIDEO) continue;
    const bool rate = (st->avg_frame_rate.num > 0 && st->avg_frame_rate.den > 0) ||
                      (st->r_frame_rate.num > 0 && st->r_frame_rate.den > 0);
    if (p->codec_id == AV_CODEC_ID_NONE || p->width <= 0 || p->height <= 0 || !rate) return false;
  }
  return fmt->nb_streams > 0;
}

}  // namespace

std::string av_error_text(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof(buf));
  return buf;
}

// ---------------------------------------------------------------- reader

struct VideoReader::State {
  std::unique_ptr<AVFormatContext, FormatInputCloser> fmt;
  std::unique_ptr<AVCodecContext, CodecFreer> dec;
  FramePtr frame{av_frame_alloc()};
  PacketPtr packet{av_packet_alloc()};
  SwsPtr sws;
  int stream = -1;
  AVRational time_base{0, 1};
  int64_t start_pts = 0;
  bool eof_sent = false;
  bool at_start = true;      // nothing read and no seek since open
  bool start_known = false;  // start_pts is the stream's first presentation time
  bool seeked = false;       // a seek happened since open
};

void VideoReader::fail(const std::string& what, int err) const {
  throw DataError(path_, err ? str(what, " (", av_error_text(err), ")") : what);
}

VideoReader::VideoReader(const std::string& path, ReadOptions options)
    : path_(path), options_(std::move(options)), s_(std::make_unique<State>()) {
  quiet_ffmpeg_log();
  output_format(options_.pixel_format);  // validate early
  SSLAB_CHECK(options_.width >= 0 && options_.height >= 0, "video: width and height must be >= 0");
  if (!s_->frame || !s_->packet) fail("out of memory");
  AVFormatContext* raw = nullptr;
  const std::string demuxers = allowed_demuxers();
  AVDictionary* open_options = nullptr;
  av_dict_set(&open_options, "format_whitelist", demuxers.c_str(), 0);
  av_dict_set(&open_options, "protocol_whitelist", "file", 0);
  int err = avformat_open_input(&raw, path.c_str(), nullptr, &open_options);  // frees raw itself on failure
  av_dict_free(&open_options);
  if (err < 0) {
    const std::string demuxer = probe_demuxer(path);
    if (!demuxer.empty() && av_match_list(demuxer.c_str(), demuxers.c_str(), ',') <= 0)
      fail(str("cannot open as a video file: it is read by FFmpeg's '", demuxer,
               "' demuxer, which is not allowed (playlists and scripts that name other files are refused; "
               "SSLAB_FFMPEG_DEMUXERS sets the allowed list, docs/video.md)"));
    fail("cannot open as a video file", err);
  }
  s_->fmt.reset(raw);
  // Containers with a full header (MP4, WebM, AVI) already give the video
  // stream's codec, size and rate; probing the stream (which decodes its
  // first frames) is only needed when they do not, e.g. for raw streams.
  if (!header_describes_video(raw)) {
    err = avformat_find_stream_info(raw, nullptr);
    if (err < 0) fail("cannot read stream information", err);
  }
  const AVCodec* codec = nullptr;
  err = av_find_best_stream(raw, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
  if (err == AVERROR_DECODER_NOT_FOUND) fail("no decoder for its video stream", err);
  if (err < 0) fail("has no video stream", err);
  s_->stream = err;
  AVStream* st = raw->streams[s_->stream];
  if (st->codecpar->width <= 0 || st->codecpar->height <= 0) fail("the video stream has no frame size");
  s_->dec.reset(avcodec_alloc_context3(codec));
  if (!s_->dec) fail("out of memory");
  err = avcodec_parameters_to_context(s_->dec.get(), st->codecpar);
  if (err < 0) fail("cannot set up the decoder", err);
  s_->dec->thread_count = options_.threads;
  s_->dec->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
  err = avcodec_open2(s_->dec.get(), codec, nullptr);
  if (err < 0) fail(str("cannot open the ", codec->name, " decoder"), err);

  s_->time_base = st->time_base;
  // Without probing, a container may leave the start time unset: the first
  // decoded frame's timestamp then defines it.
  s_->start_known = st->start_time != AV_NOPTS_VALUE;
  s_->start_pts = s_->start_known ? st->start_time : 0;
  AVRational rate = av_guess_frame_rate(raw, st, nullptr);
  if (rate.num <= 0 || rate.den <= 0) rate = st->avg_frame_rate;
  if (rate.num <= 0 || rate.den <= 0) fail("has no frame rate");
  fps_ = av_q2d(rate);
  if (st->nb_frames > 0) {
    frame_count_ = st->nb_frames;
  } else if (st->duration != AV_NOPTS_VALUE && st->duration > 0) {
    frame_count_ = static_cast<int64_t>(std::floor(st->duration * av_q2d(st->time_base) * fps_ + 0.5));
  } else if (raw->duration != AV_NOPTS_VALUE && raw->duration > 0) {
    frame_count_ = static_cast<int64_t>(std::floor(raw->duration / static_cast<double>(AV_TIME_BASE) * fps_ + 0.5));
  }
  if (frame_count_ <= 0) fail("has no frames (or no duration to count them from)");
}

VideoReader::~VideoReader() = default;

int64_t VideoReader::source_width() const { return s_->dec->width; }
int64_t VideoReader::source_height() const { return s_->dec->height; }
std::string VideoReader::codec_name() const { return s_->dec->codec ? s_->dec->codec->name : "?"; }

bool VideoReader::next_frame() {
  AVCodecContext* dec = s_->dec.get();
  for (;;) {
    int err = avcodec_receive_frame(dec, s_->frame.get());
    if (err == 0) {
      ++frames_decoded_;
      const int64_t pts = s_->frame->best_effort_timestamp;
      if (!s_->start_known && !s_->seeked && pts != AV_NOPTS_VALUE) {
        s_->start_pts = pts;
        s_->start_known = true;
      }
      if (pts == AV_NOPTS_VALUE) {
        ++position_;
      } else {
        position_ = std::llround(static_cast<double>(pts - s_->start_pts) * av_q2d(s_->time_base) * fps_);
      }
      return true;
    }
    if (err == AVERROR_EOF) return false;
    if (err != AVERROR(EAGAIN)) fail("cannot decode a frame", err);
    if (s_->eof_sent) return false;
    // The decoder wants input: the next packet of our stream, or the flush.
    for (;;) {
      err = av_read_frame(s_->fmt.get(), s_->packet.get());
      if (err == AVERROR_EOF) {
        avcodec_send_packet(dec, nullptr);
        s_->eof_sent = true;
        break;
      }
      if (err < 0) fail("cannot read a packet", err);
      if (s_->packet->stream_index != s_->stream) {
        av_packet_unref(s_->packet.get());
        continue;
      }
      err = avcodec_send_packet(dec, s_->packet.get());
      av_packet_unref(s_->packet.get());
      if (err < 0 && err != AVERROR(EAGAIN)) fail("cannot decode a packet", err);
      break;
    }
  }
}

void VideoReader::seek_to(int64_t frame) {
  if (!s_->start_known && !s_->seeked) next_frame();  // the first frame gives the start time
  s_->seeked = true;
  AVRational frame_tb = av_inv_q(av_d2q(fps_, 1 << 20));
  int64_t ts = s_->start_pts + av_rescale_q(frame, frame_tb, s_->time_base);
  int err = av_seek_frame(s_->fmt.get(), s_->stream, ts, AVSEEK_FLAG_BACKWARD);
  if (err < 0) err = av_seek_frame(s_->fmt.get(), s_->stream, s_->start_pts, AVSEEK_FLAG_BACKWARD);
  if (err < 0) err = avformat_seek_file(s_->fmt.get(), -1, INT64_MIN, 0, 0, AVSEEK_FLAG_BYTE);
  if (err < 0) fail(str("cannot seek to frame ", frame), err);
  avcodec_flush_buffers(s_->dec.get());
  s_->eof_sent = false;
  s_->at_start = false;
  position_ = -1;
}

torch::Tensor VideoReader::convert() {
  AVFrame* f = s_->frame.get();
  const AVPixelFormat dst = output_format(options_.pixel_format);
  const int c = dst == AV_PIX_FMT_GRAY8 ? 1 : 3;
  const int w = options_.width > 0 ? static_cast<int>(options_.width) : f->width;
  const int h = options_.height > 0 ? static_cast<int>(options_.height) : f->height;
  SwsContext* sws = cached_scaler(s_->sws, f->width, f->height, static_cast<AVPixelFormat>(f->format), w, h, dst);
  if (!sws)
    fail(str("cannot convert ", av_get_pix_fmt_name(static_cast<AVPixelFormat>(f->format)), " ", f->width, "x",
             f->height, " frames to ", options_.pixel_format, " ", w, "x", h));
  torch::Tensor out = torch::empty({h, w, c}, torch::kUInt8);
  uint8_t* dst_data[4] = {out.data_ptr<uint8_t>(), nullptr, nullptr, nullptr};
  int dst_stride[4] = {w * c, 0, 0, 0};
  sws_scale(sws, f->data, f->linesize, 0, f->height, dst_data, dst_stride);
  return c == 1 ? out.view({1, h, w}) : out.permute({2, 0, 1}).contiguous();
}

torch::Tensor VideoReader::read_clip(int64_t start, int64_t count, int64_t stride) {
  SSLAB_CHECK(start >= 0 && count > 0 && stride > 0, "video: bad clip request start=", start, " count=", count,
              " stride=", stride);
  const bool forward = (s_->at_start && position_ < 0 && start < kForwardWindow) ||
                       (position_ >= 0 && position_ < start && start - position_ <= kForwardWindow);
  if (!forward) seek_to(start);
  s_->at_start = false;
  std::vector<torch::Tensor> frames;
  frames.reserve(static_cast<size_t>(count));
  int64_t target = start;
  const int64_t last = start + (count - 1) * stride;
  while (static_cast<int64_t>(frames.size()) < count) {
    if (!next_frame())
      fail(str("ends after frame ", position_, "; the clip needs frames ", start, "..", last, " (", count,
               " at stride ", stride, ")"));
    if (position_ < target) continue;
    torch::Tensor img = convert();
    // A frame past the target (timestamps with gaps) stands for the targets it covers.
    while (static_cast<int64_t>(frames.size()) < count && position_ >= target) {
      frames.push_back(img);
      target += stride;
    }
  }
  return torch::stack(frames);
}

torch::Tensor VideoReader::read_all() {
  if (!(s_->at_start && position_ < 0)) seek_to(0);
  s_->at_start = false;
  std::vector<torch::Tensor> frames;
  while (next_frame()) frames.push_back(convert());
  if (frames.empty()) fail("holds no decodable frame");
  return torch::stack(frames);
}

// ---------------------------------------------------------------- writer

struct VideoWriter::State {
  std::unique_ptr<AVFormatContext, FormatOutputCloser> oc;
  std::unique_ptr<AVCodecContext, CodecFreer> enc;
  FramePtr frame{av_frame_alloc()};
  PacketPtr packet{av_packet_alloc()};
  SwsPtr sws;
  AVStream* stream = nullptr;  // owned by oc
  int64_t channels = 0, height = 0, width = 0;
  bool header_written = false;
};

void VideoWriter::fail(const std::string& what, int err) const {
  throw DataError(path_, err ? str(what, " (", av_error_text(err), ")") : what);
}

VideoWriter::VideoWriter(const std::string& path, WriteOptions options)
    : path_(path), options_(std::move(options)), s_(std::make_unique<State>()) {
  quiet_ffmpeg_log();
  SSLAB_CHECK(options_.fps > 0, "video writer: fps must be > 0");
  if (!s_->frame || !s_->packet) fail("out of memory");
}

VideoWriter::~VideoWriter() {
  if (s_->header_written && !closed_) {
    try {
      close();
    } catch (...) {
    }
  }
}

void VideoWriter::open(int64_t channels, int64_t height, int64_t width) {
  AVFormatContext* raw = nullptr;
  int err = avformat_alloc_output_context2(&raw, nullptr, nullptr, path_.c_str());
  if (err < 0 || !raw) fail("no container format for this file name", err);
  s_->oc.reset(raw);
  raw->flags |= AVFMT_FLAG_BITEXACT;
  const AVCodec* codec = avcodec_find_encoder_by_name(options_.codec.c_str());
  if (!codec) fail(str("FFmpeg has no encoder '", options_.codec, "'"));
  s_->stream = avformat_new_stream(raw, nullptr);
  if (!s_->stream) fail("cannot add a stream");
  s_->enc.reset(avcodec_alloc_context3(codec));
  AVCodecContext* enc = s_->enc.get();
  if (!enc) fail("out of memory");
  enc->width = static_cast<int>(width);
  enc->height = static_cast<int>(height);
  enc->time_base = AVRational{1, static_cast<int>(options_.fps)};
  enc->framerate = AVRational{static_cast<int>(options_.fps), 1};
  enc->pix_fmt = AV_PIX_FMT_YUV420P;
  enc->gop_size = static_cast<int>(options_.gop);
  enc->thread_count = 1;  // deterministic output
  enc->flags |= AV_CODEC_FLAG_BITEXACT;
  if (raw->oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  const std::string name = codec->name;
  if (name == "libx264") {
    av_opt_set(enc->priv_data, "preset", options_.preset.c_str(), 0);
    av_opt_set_int(enc->priv_data, "crf", options_.crf, 0);
  } else if (name == "libvpx-vp9") {
    enc->bit_rate = 0;
    av_opt_set_int(enc->priv_data, "crf", options_.crf, 0);
    av_opt_set(enc->priv_data, "deadline", "realtime", 0);
    av_opt_set_int(enc->priv_data, "cpu-used", 8, 0);
  } else {
    enc->bit_rate = options_.bitrate > 0 ? options_.bitrate : 2000000;
  }
  err = avcodec_open2(enc, codec, nullptr);
  if (err < 0) fail(str("cannot open the ", name, " encoder"), err);
  err = avcodec_parameters_from_context(s_->stream->codecpar, enc);
  if (err < 0) fail("cannot set the stream parameters", err);
  s_->stream->time_base = enc->time_base;
  if (!(raw->oformat->flags & AVFMT_NOFILE)) {
    err = avio_open(&raw->pb, path_.c_str(), AVIO_FLAG_WRITE);
    if (err < 0) fail("cannot create the file", err);
  }
  err = avformat_write_header(raw, nullptr);
  if (err < 0) fail("cannot write the header", err);
  s_->header_written = true;
  s_->frame->format = enc->pix_fmt;
  s_->frame->width = enc->width;
  s_->frame->height = enc->height;
  err = av_frame_get_buffer(s_->frame.get(), 0);
  if (err < 0) fail("cannot allocate a frame", err);
  s_->channels = channels;
  s_->height = height;
  s_->width = width;
}

void VideoWriter::write(const torch::Tensor& input) {
  SSLAB_CHECK(!closed_, "video writer: ", path_, " is already closed");
  SSLAB_CHECK(input.dim() == 3 && (input.size(0) == 1 || input.size(0) == 3) && input.scalar_type() == torch::kUInt8,
              "video writer: frames must be uint8 [C,H,W] with C = 1 or 3, got ", input.sizes(), " ",
              input.scalar_type());
  if (!s_->enc) open(input.size(0), input.size(1), input.size(2));
  SSLAB_CHECK(input.size(0) == s_->channels && input.size(1) == s_->height && input.size(2) == s_->width,
              "video writer: every frame must be ", s_->channels, "x", s_->height, "x", s_->width, ", got ",
              input.sizes());
  torch::Tensor hwc = input.size(0) == 1 ? input.contiguous() : input.permute({1, 2, 0}).contiguous();
  const int w = static_cast<int>(s_->width), h = static_cast<int>(s_->height);
  const AVPixelFormat src = s_->channels == 1 ? AV_PIX_FMT_GRAY8 : AV_PIX_FMT_RGB24;
  SwsContext* sws = cached_scaler(s_->sws, w, h, src, w, h, AV_PIX_FMT_YUV420P);
  if (!sws) fail("cannot convert frames to yuv420p");
  int err = av_frame_make_writable(s_->frame.get());
  if (err < 0) fail("cannot write into the frame", err);
  const uint8_t* src_data[4] = {hwc.data_ptr<uint8_t>(), nullptr, nullptr, nullptr};
  int src_stride[4] = {w * static_cast<int>(s_->channels), 0, 0, 0};
  sws_scale(sws, src_data, src_stride, 0, h, s_->frame->data, s_->frame->linesize);
  s_->frame->pts = next_pts_++;
  err = avcodec_send_frame(s_->enc.get(), s_->frame.get());
  if (err < 0) fail("cannot encode a frame", err);
  drain(false);
}

void VideoWriter::drain(bool flush) {
  for (;;) {
    int err = avcodec_receive_packet(s_->enc.get(), s_->packet.get());
    if (err == AVERROR(EAGAIN) && !flush) return;
    if (err == AVERROR_EOF) return;
    if (err < 0) fail("cannot encode", err);
    // Every packet lasts one frame: without a duration the MP4 muxer ends
    // its edit list at the last frame's start and that frame is discarded.
    if (s_->packet->duration <= 0) s_->packet->duration = 1;
    av_packet_rescale_ts(s_->packet.get(), s_->enc->time_base, s_->stream->time_base);
    s_->packet->stream_index = s_->stream->index;
    err = av_interleaved_write_frame(s_->oc.get(), s_->packet.get());  // takes the packet's reference
    if (err < 0) fail("cannot write a packet", err);
  }
}

void VideoWriter::close() {
  if (closed_) return;
  closed_ = true;
  SSLAB_CHECK(s_->enc, "video writer: ", path_, ": no frame was written");
  int err = avcodec_send_frame(s_->enc.get(), nullptr);
  if (err < 0) fail("cannot flush the encoder", err);
  drain(true);
  err = av_write_trailer(s_->oc.get());
  if (err < 0) fail("cannot write the trailer", err);
  s_->oc.reset();  // closes the file
}

void write_video(const std::string& path, const torch::Tensor& frames, const WriteOptions& options) {
  SSLAB_CHECK(frames.dim() == 4, "write_video: frames must be [T,C,H,W], got ", frames.sizes());
  VideoWriter w(path, options);
  for (int64_t t = 0; t < frames.size(0); ++t) w.write(frames[t]);
  w.close();
}

}  // namespace sslab::video
