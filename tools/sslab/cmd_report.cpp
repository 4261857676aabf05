// sslab report: one self-contained HTML page about runs and studies (no
// network, no external scripts or styles): the results table beside its
// baselines, training curves and the collapse monitors as SVG, the
// objectives' pictures, and 2-D maps of the test embeddings.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <set>
#include <sstream>

#include "args.h"
#include "commands.h"
#include "compare.h"
#include "loaded_run.h"
#include "projector.h"
#include "sslab/evaluation.h"
#include "sslab/host/json.h"
#include "sslab/images.h"
#include "sslab/registry.h"
#include "study.h"

namespace fs = std::filesystem;

namespace sslab::cli {

namespace {

std::string html(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8) | uint8_t(in[i + 2]);
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += t[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8);
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string num(double v, int digits = 4) {
  std::ostringstream s;
  s << std::setprecision(digits) << v;
  return s.str();
}

const std::vector<std::string>& palette() {
  static const std::vector<std::string> p = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                             "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};
  return p;
}

// One run's metrics.jsonl: metric -> (step, value) in order.
std::map<std::string, std::vector<std::pair<double, double>>> read_curves(const fs::path& file) {
  std::map<std::string, std::vector<std::pair<double, double>>> out;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("step") || !j["step"].is_number()) continue;
    const double step = j["step"].get<double>();
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "step" || !it.value().is_number()) continue;
      out[it.key()].emplace_back(step, it.value().get<double>());
    }
  }
  return out;
}

struct Series {
  std::string label, color;
  std::vector<std::pair<double, double>> points;
  bool faint = false;
};

// A line chart: x = step, one polyline per series.
std::string line_chart(const std::string& title, const std::vector<Series>& series) {
  const double W = 520, H = 230, L = 58, R = 12, T = 26, B = 34;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : series)
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(y)) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  std::ostringstream svg;
  svg << "<svg class=\"chart\" viewBox=\"0 0 " << W << " " << H << "\" width=\"" << W << "\" height=\"" << H
      << "\" role=\"img\"><title>" << html(title) << "</title>";
  svg << "<text x=\"" << L << "\" y=\"16\" class=\"ct\">" << html(title) << "</text>";
  if (!std::isfinite(x0)) return svg.str() + "<text x=\"60\" y=\"120\">no values</text></svg>";
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) {
    y1 += std::abs(y1) * 0.05 + 1e-6;
    y0 -= std::abs(y0) * 0.05 + 1e-6;
  }
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };
  svg << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\"" << H - T - B
      << "\" class=\"plot\"/>";
  for (int i = 0; i <= 4; ++i) {
    const double y = y0 + (y1 - y0) * i / 4.0, x = x0 + (x1 - x0) * i / 4.0;
    svg << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << py(y) << "\" y2=\"" << py(y)
        << "\" class=\"grid\"/><text x=\"" << L - 4 << "\" y=\"" << py(y) + 4 << "\" class=\"yl\">" << num(y, 3)
        << "</text>";
    svg << "<text x=\"" << px(x) << "\" y=\"" << H - B + 16 << "\" class=\"xl\">" << num(std::round(x), 6) << "</text>";
  }
  svg << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 4 << "\" class=\"xl\">step</text>";
  for (const auto& s : series) {
    std::string pts;
    auto flush = [&] {
      if (!pts.empty())
        svg << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"" << (s.faint ? 1 : 1.8)
            << "\" stroke-opacity=\"" << (s.faint ? 0.45 : 0.95) << "\" points=\"" << pts << "\"><title>"
            << html(s.label) << "</title></polyline>";
      pts.clear();
    };
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(y)) {
        flush();
        continue;
      }
      pts += num(px(x), 6) + "," + num(py(y), 6) + " ";
    }
    if (s.points.size() == 1 && std::isfinite(s.points[0].second))
      svg << "<circle cx=\"" << px(s.points[0].first) << "\" cy=\"" << py(s.points[0].second) << "\" r=\"3\" fill=\""
          << s.color << "\"/>";
    flush();
  }
  return svg.str() + "</svg>";
}

// A scatter of 2-D points coloured by label.
std::string scatter(const std::string& title, const torch::Tensor& xy, const torch::Tensor& labels) {
  const double W = 420, H = 420, M = 20;
  std::ostringstream svg;
  svg << "<svg class=\"chart map\" viewBox=\"0 0 " << W << " " << H << "\" width=\"" << W << "\" height=\"" << H
      << "\" role=\"img\"><title>" << html(title) << "</title><rect x=\"0\" y=\"0\" width=\"" << W << "\" height=\""
      << H << "\" class=\"plot\"/>";
  auto a = xy.accessor<float, 2>();
  float x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (int64_t i = 0; i < xy.size(0); ++i) {
    x0 = std::min(x0, a[i][0]), x1 = std::max(x1, a[i][0]), y0 = std::min(y0, a[i][1]), y1 = std::max(y1, a[i][1]);
  }
  const double sx = x1 > x0 ? (W - 2 * M) / (x1 - x0) : 1, sy = y1 > y0 ? (H - 2 * M) / (y1 - y0) : 1;
  for (int64_t i = 0; i < xy.size(0); ++i) {
    const int64_t label = labels.defined() ? labels[i].item<int64_t>() : 0;
    const std::string& color = palette()[static_cast<size_t>(std::abs(label)) % palette().size()];
    svg << "<circle cx=\"" << num(M + (a[i][0] - x0) * sx, 5) << "\" cy=\"" << num(H - M - (a[i][1] - y0) * sy, 5)
        << "\" r=\"2.2\" fill=\"" << color << "\" fill-opacity=\"0.75\"/>";
  }
  return svg.str() + "</svg>";
}

// A mono 16-bit PCM WAV file of wave [S] (values in [-1, 1]).
std::string wav_bytes(const torch::Tensor& wave, int64_t rate) {
  torch::Tensor pcm = (wave.to(torch::kFloat32).clamp(-1, 1) * 32767).round().to(torch::kInt16).contiguous();
  const uint32_t data = static_cast<uint32_t>(pcm.numel() * 2);
  std::string out;
  auto u32 = [&](uint32_t v) { for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff)); };
  auto u16 = [&](uint16_t v) { for (int i = 0; i < 2; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff)); };
  out += "RIFF";
  u32(36 + data);
  out += "WAVEfmt ";
  u32(16), u16(1), u16(1), u32(static_cast<uint32_t>(rate)), u32(static_cast<uint32_t>(rate * 2)), u16(2), u16(16);
  out += "data";
  u32(data);
  out.append(static_cast<const char*>(pcm.data_ptr()), data);
  return out;
}

// One sample of a batch key, shown as what it is: text (token ids decoded),
// a sound (a player), an image, or its index.
std::string render_sample(const Batch& batch, int64_t row, const std::string& key, const Tokenizer* tokenizer,
                          int64_t sample_rate) {
  if (!batch.has(key)) return "?";
  torch::Tensor t = batch.at(key)[row].to(torch::kCPU);
  int64_t length = -1;
  if (batch.has(key + ".length")) length = batch.at(key + ".length")[row].item<int64_t>();
  if (batch.has(key + ".mask")) length = batch.at(key + ".mask")[row].to(torch::kInt64).sum().item<int64_t>();
  if (!t.is_floating_point() && t.dim() == 1 && tokenizer) {
    if (length >= 0) t = t.narrow(0, 0, std::min<int64_t>(length, t.size(0)));
    std::vector<int64_t> ids(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
    return "<span class=\"text\">" + html(tokenizer->decode(ids)) + "</span>";
  }
  if (t.is_floating_point() && t.dim() == 1) {
    if (length >= 0) t = t.narrow(0, 0, std::min<int64_t>(length, t.size(0)));
    return "<audio controls preload=\"none\" src=\"data:audio/wav;base64," + base64(wav_bytes(t, sample_rate)) + "\"></audio>";
  }
  if (t.is_floating_point() && t.dim() == 3 && (t.size(0) == 1 || t.size(0) == 3) && t.size(1) <= 128 && t.size(2) <= 128)
    return "<img class=\"pic\" width=\"" + std::to_string(2 * t.size(2)) + "\" src=\"data:image/png;base64," +
           base64(encode_png(t)) + "\">";
  return "(a " + key + " sample)";
}

// The tokenizer an encoder reads with (its `tokenizer` key), or null.
const Tokenizer* encoder_tokenizer(const Recipe& recipe, BuildContext& ctx, const std::string& encoder) {
  Config cfg = component_config(recipe.at("encoders").child(encoder), ComponentKind::Encoder, Registries::global());
  if (!cfg.schema().find("tokenizer")) return nullptr;
  const std::string name = cfg.get_string("tokenizer");
  return ctx.has_tokenizer(name) ? ctx.tokenizer(name).get() : nullptr;
}

// Retrieval examples of a run whose recipe has an ssl.retrieval evaluator:
// for the first queries of the test split, the top 3 of the other modality.
std::string retrieval_examples(LoadedRun& run, const std::string& label) {
  std::ostringstream out;
  BuildContext& ctx = run.exp->context();
  if (!ctx.has_dataset("test")) return "";
  std::map<std::string, std::string> flat = flatten_recipe(run.recipe.to_toml(), run.recipe.file());
  int64_t rate = 16000;
  for (const auto& [k, v] : flat)
    if (k.rfind("data.test.", 0) == 0 && k.size() > 12 && k.substr(k.size() - 12) == ".sample_rate") rate = std::stoll(v);
  for (const RecipeNode& node : run.recipe.root().table_array("evaluators")) {
    if (node.required_string("type") != "ssl.retrieval") continue;
    Config cfg = component_config(node, ComponentKind::Evaluator, Registries::global());
    auto ea = ctx.encoder(cfg.get_string("encoder_a")), eb = ctx.encoder(cfg.get_string("encoder_b"));
    auto pa = ctx.head(cfg.get_string("projector_a")), pb = ctx.head(cfg.get_string("projector_b"));
    EvalMode eval({ea.get(), eb.get(), pa.get(), pb.get()});
    torch::NoGradGuard no_grad;
    std::vector<Batch> batches;
    std::vector<torch::Tensor> za, zb;
    for_each_batch(*ctx.dataset("test"), 200, 50, [&](const Batch& b) {
      Batch d = b.to(ctx.device());
      za.push_back(pa->forward(ea->embed(d)).to(torch::kCPU, torch::kFloat32));
      zb.push_back(pb->forward(eb->embed(d)).to(torch::kCPU, torch::kFloat32));
      batches.push_back(b);
    });
    namespace F = torch::nn::functional;
    torch::Tensor a = F::normalize(torch::cat(za), F::NormalizeFuncOptions().dim(1));
    torch::Tensor b = F::normalize(torch::cat(zb), F::NormalizeFuncOptions().dim(1));
    torch::Tensor sim = torch::matmul(a, b.t());
    const int64_t n = sim.size(0), per = batches.front().size;
    auto sample = [&](const std::string& key, const Tokenizer* tok, int64_t i) {
      return render_sample(batches[static_cast<size_t>(i / per)], i % per, key, tok, rate);
    };
    const Tokenizer* ta = encoder_tokenizer(run.recipe, ctx, cfg.get_string("encoder_a"));
    const Tokenizer* tb = encoder_tokenizer(run.recipe, ctx, cfg.get_string("encoder_b"));
    out << "<p class=\"note\">" << html(label) << ": " << html(cfg.get_string("encoder_a")) << " to "
        << html(cfg.get_string("encoder_b")) << " among the first " << n
        << " test pairs; the true partner is marked ✓ (its rank in brackets when it is not in the top 3).</p>"
        << "<table class=\"retrieval\"><tr><th class=\"k\">query</th><th class=\"k\">1</th><th class=\"k\">2</th>"
        << "<th class=\"k\">3</th></tr>";
    for (int64_t q = 0; q < std::min<int64_t>(4, n); ++q) {
      torch::Tensor order = sim[q].argsort(0, /*descending=*/true);
      const int64_t rank = (order == q).nonzero().item<int64_t>() + 1;
      out << "<tr><td class=\"k\">" << sample(ea->input(), ta, q) << (rank > 3 ? " [" + std::to_string(rank) + "]" : "")
          << "</td>";
      for (int64_t r = 0; r < std::min<int64_t>(3, n); ++r) {
        const int64_t i = order[r].item<int64_t>();
        out << "<td class=\"k\">" << (i == q ? "✓ " : "") << sample(eb->input(), tb, i) << "</td>";
      }
      out << "</tr>";
    }
    out << "</table>";
  }
  return out.str();
}

const char* kStyle = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:4px} h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#666;font-size:13px} table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:right;white-space:nowrap} th{background:#f4f4f4}
td.k,th.k{text-align:left} tr.best td{background:#eef7ee;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:10px} svg.chart{background:#fff;border:1px solid #e4e4e4}
.plot{fill:#fcfcfc;stroke:#ccc} .grid{stroke:#eee} .ct{font-size:13px;font-weight:600}
.yl{font-size:10px;text-anchor:end;fill:#555} .xl{font-size:10px;text-anchor:middle;fill:#555}
.legend span{display:inline-block;margin-right:14px;font-size:12px} .legend i{display:inline-block;width:18px;height:3px;vertical-align:middle;margin-right:4px}
figure{display:inline-block;margin:6px 12px 6px 0;vertical-align:top} figcaption{font-size:12px;color:#555}
table.retrieval td{white-space:normal;max-width:260px;vertical-align:top} audio{width:230px} .text{font-family:Georgia,serif}
img.pic{image-rendering:pixelated;border:1px solid #ddd;max-width:1100px} .note{font-size:13px;color:#555}
)";

const char* kScript = R"(
window.sslabErrors=[];
window.addEventListener('error',function(e){window.sslabErrors.push(String(e.message));document.body.setAttribute('data-errors',String(window.sslabErrors.length));});
document.addEventListener('DOMContentLoaded',function(){
  var b=document.body;
  b.setAttribute('data-charts',String(document.querySelectorAll('svg.chart').length));
  b.setAttribute('data-tables',String(document.querySelectorAll('table').length));
  b.setAttribute('data-images',String(document.querySelectorAll('img.pic').length));
  b.setAttribute('data-ready','1');
});
)";

}  // namespace

int cmd_report(const Args& args) {
  po::options_description opts("sslab report RUN_OR_STUDY... --out report.html [options]");
  std::vector<std::string> inputs;
  std::string out = "report.html", title, metric;
  int64_t embeddings = 500;
  opts.add_options()("help,h", "show this help")("out", po::value(&out)->default_value("report.html"),
                                                 "the HTML file to write")(
      "title", po::value(&title), "the page's title (default: the runs' recipe names)")(
      "metric", po::value(&metric), "the metric that picks the best row (as sslab compare)")(
      "embeddings", po::value(&embeddings)->default_value(500),
      "test samples in each 2-D embedding map (0: no maps, which also skips loading the models)")(
      "inputs", po::value(&inputs), "run folders, study folders or folders of runs");
  po::variables_map vm;
  if (!parse_args(args, opts, "inputs", vm, -1)) return 0;
  if (inputs.empty()) throw po::error("at least one run or study folder is required");
  if (embeddings < 0) throw po::error("--embeddings must be positive");
  Comparison c = compare_runs(inputs, metric);

  std::set<std::string> names;
  for (const auto& row : c.rows) {
    if (!row.config.count("name")) continue;
    std::string n = row.config.at("name");  // TOML text: 'smoke-vision-mae'
    if (n.size() >= 2 && (n.front() == '\'' || n.front() == '"') && n.back() == n.front()) n = n.substr(1, n.size() - 2);
    names.insert(n);
  }
  if (title.empty()) {
    for (const auto& n : names) title += (title.empty() ? "" : ", ") + n;
    if (title.empty()) title = "sslab report";
  }
  auto row_label = [&](const Comparison::Row& row) {
    std::string s;
    for (const auto& k : c.columns) s += (s.empty() ? "" : ", ") + k + " = " + (row.config.count(k) ? row.config.at(k) : "(unset)");
    return s.empty() ? fs::path(row.runs.front()).filename().string() : s;
  };

  std::ostringstream body;
  char when[32];
  std::time_t now = std::time(nullptr);
  std::strftime(when, sizeof(when), "%Y-%m-%d %H:%M", std::localtime(&now));
  size_t run_count = 0;
  for (const auto& row : c.rows) run_count += row.runs.size();
  body << "<h1>" << html(title) << "</h1><div class=\"meta\">" << c.rows.size() << " configuration(s), " << run_count
       << " run(s); sslab " << kSslabVersion << ", " << when << "</div>";

  // ---- results
  body << "<h2>Results</h2>";
  if (c.metrics.empty()) {
    body << "<p class=\"note\">No run has been evaluated yet (no eval.json).</p>";
  }
  body << "<div style=\"overflow-x:auto\"><table id=\"results\"><tr><th class=\"k\"></th>";
  for (const auto& k : c.columns) body << "<th class=\"k\">" << html(k) << "</th>";
  body << "<th>runs</th>";
  for (const auto& m : c.metrics) body << "<th>" << html(m) << "</th>";
  body << "</tr>";
  for (size_t i = 0; i < c.rows.size(); ++i) {
    const auto& row = c.rows[i];
    const bool best = static_cast<int>(i) == c.best;
    body << "<tr" << (best ? " class=\"best\"" : "") << "><td class=\"k\"><i style=\"display:inline-block;width:12px;height:12px;background:"
         << palette()[i % palette().size()] << "\"></i>" << (best ? " best" : "") << "</td>";
    for (const auto& k : c.columns) body << "<td class=\"k\">" << html(row.config.count(k) ? row.config.at(k) : "(unset)") << "</td>";
    body << "<td>" << row.runs.size() << "</td>";
    for (const auto& m : c.metrics) {
      if (!row.mean.count(m)) {
        body << "<td>-</td>";
        continue;
      }
      body << "<td>" << num(row.mean.at(m), 4);
      if (row.values.at(m).size() > 1) body << " ± " << num(row.std.at(m), 2);
      body << "</td>";
    }
    body << "</tr>";
  }
  body << "</table></div><p class=\"note\">Mean ± standard deviation over each configuration's seeds. ";
  if (c.best >= 0) body << "Best row by " << html(c.metric) << ". ";
  body << "Baselines (raw input, random encoder, from scratch) are the <code>baseline</code> and <code>scratch</code> "
          "columns where the evaluation computed them.</p>";

  // ---- curves and monitors
  std::vector<std::map<std::string, std::vector<std::pair<double, double>>>> curves;
  std::vector<std::pair<size_t, std::string>> run_of;  // (row, run dir) per curve set
  for (size_t i = 0; i < c.rows.size(); ++i)
    for (const auto& r : c.rows[i].runs) {
      curves.push_back(read_curves(fs::path(r) / "metrics.jsonl"));
      run_of.emplace_back(i, r);
    }
  std::set<std::string> keys;
  for (const auto& cv : curves)
    for (const auto& [k, v] : cv) keys.insert(k);
  std::vector<std::string> training, monitors;
  if (keys.count("loss")) training.push_back("loss");
  for (const auto& k : keys) {
    if (k == "loss" || k == "samples_per_s" || k == "epoch") continue;
    (k.rfind("monitor/", 0) == 0 ? monitors : training).push_back(k);
  }
  auto charts = [&](const std::vector<std::string>& list) {
    body << "<div class=\"legend\">";
    for (size_t i = 0; i < c.rows.size(); ++i)
      body << "<span><i style=\"background:" << palette()[i % palette().size()] << "\"></i>" << html(row_label(c.rows[i]))
           << "</span>";
    body << "</div><div class=\"charts\">";
    for (const auto& k : list) {
      std::vector<Series> series;
      for (size_t j = 0; j < curves.size(); ++j) {
        auto it = curves[j].find(k);
        if (it == curves[j].end()) continue;
        const size_t row = run_of[j].first;
        series.push_back({row_label(c.rows[row]) + " (" + fs::path(run_of[j].second).filename().string() + ")",
                          palette()[row % palette().size()], it->second, c.rows[row].runs.size() > 1});
      }
      body << line_chart(k, series);
    }
    body << "</div>";
  };
  body << "<h2>Training</h2>";
  if (training.empty()) body << "<p class=\"note\">No metrics.jsonl lines yet.</p>";
  else charts(training);
  body << "<h2>Collapse monitors</h2><p class=\"note\">Per encoder, on the training batch of each logged step: "
          "<b>std_ratio</b> (the normalised embeddings' per-dimension standard deviation x sqrt(dim): about 1 when "
          "spread out, 0 when collapsed), <b>erank</b> (effective rank), and for two views <b>align</b> (lower is "
          "better) and <b>uniform</b> (lower is more uniform).</p>";
  if (monitors.empty()) body << "<p class=\"note\">No monitors logged (log.monitors = false, or an older run).</p>";
  else charts(monitors);

  // ---- pictures: each configuration's first run, its newest picture per name
  body << "<h2>Pictures</h2>";
  int pictures = 0;
  for (size_t i = 0; i < c.rows.size() && i < 8; ++i) {
    const fs::path dir = fs::path(c.rows[i].runs.front()) / "images";
    if (!fs::is_directory(dir)) continue;
    std::map<std::string, fs::path> newest;  // "<objective>-<name>" -> file (names sort by step)
    for (const auto& e : fs::directory_iterator(dir)) {
      std::string f = e.path().filename().string();
      auto at = f.rfind("-step-");
      if (at == std::string::npos || e.path().extension() != ".png") continue;
      std::string key = f.substr(0, at);
      if (!newest.count(key) || newest[key].filename() < e.path().filename()) newest[key] = e.path();
    }
    for (const auto& [key, file] : newest) {
      std::ifstream in(file, std::ios::binary);
      std::string png((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      std::string step = file.stem().string().substr(file.stem().string().rfind("-step-") + 6);
      // Small pictures (28-pixel digits) are shown at twice their size: the PNG's width is in its IHDR.
      uint32_t width = 0;
      if (png.size() > 24)
        for (int b = 16; b < 20; ++b) width = (width << 8) | static_cast<unsigned char>(png[static_cast<size_t>(b)]);
      body << "<figure><img class=\"pic\" alt=\"" << html(key) << "\" src=\"data:image/png;base64," << base64(png)
           << "\" width=\"" << std::min<uint32_t>(2 * width, 1100) << "\"><figcaption>" << html(row_label(c.rows[i])) << ": "
           << html(key) << ", step " << std::stoll(step) << "</figcaption></figure>";
      ++pictures;
    }
  }
  if (!pictures)
    body << "<p class=\"note\">No pictures: only objectives that draw them (MAE reconstructions, predicted video "
            "frames) write RUN/images/.</p>";

  // ---- embedding maps and retrieval examples
  body << "<h2>Test embeddings</h2>";
  int maps = 0;
  std::string retrieval;
  if (embeddings > 0) {
    body << "<p class=\"note\">The first " << embeddings << " test samples embedded by each configuration's first run, "
         << "projected on their first two principal components and coloured by label.</p><div class=\"charts\">";
    for (size_t i = 0; i < c.rows.size() && i < 4; ++i) {
      try {
        LoadedRun run(c.rows[i].runs.front(), 0);
        if (!run.exp->context().has_dataset("test")) continue;
        for (const auto& e : embed_split(*run.exp, "test", "", embeddings)) {
          torch::Tensor xy = pca_2d(e.x);
          body << "<figure>" << scatter(e.encoder, xy, e.labels) << "<figcaption>" << html(row_label(c.rows[i])) << ": "
               << html(e.encoder) << ", " << e.x.size(0) << " samples x " << e.x.size(1) << " dims"
               << (e.labels.defined() ? "" : " (no labels)") << "</figcaption></figure>";
          ++maps;
        }
        retrieval += retrieval_examples(run, row_label(c.rows[i]));
      } catch (const UserError& err) {
        body << "<p class=\"note\">" << html(c.rows[i].runs.front()) << ": no map (" << html(err.what()) << ")</p>";
      }
    }
    body << "</div>";
  }
  if (!maps) body << "<p class=\"note\">No embedding maps (--embeddings 0, or no run with a checkpoint and a test split).</p>";
  if (!retrieval.empty()) body << "<h2>Retrieval examples</h2>" << retrieval;
  if (!c.not_started.empty())
    body << "<p class=\"note\">" << c.not_started.size() << " run(s) of the study have not started yet.</p>";

  std::ostringstream page;
  page << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" << html(title)
       << "</title><style>" << kStyle << "</style><script>" << kScript << "</script></head><body>\n"
       << body.str() << "\n</body></html>\n";
  write_file_atomic(out, page.str());
  std::cout << "wrote " << out << " (" << c.rows.size() << " configuration(s), " << training.size() + monitors.size()
            << " charts, " << pictures << " picture(s), " << maps << " embedding map(s))\n";
  return 0;
}

}  // namespace sslab::cli
