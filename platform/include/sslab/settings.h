// Settings declared once: one binding gives a recipe key its name, type,
// default, range and doc, and fills the component's options struct from a
// validated Config. The default is the field's value in the options struct
// (a default-constructed one, or the prototype you pass), so it exists in
// exactly one place.
//
//   struct CropOptions {
//     double seconds = 1.0;
//     int64_t sample_rate = 16000;
//   };
//   Settings<CropOptions> s;
//   s.add("seconds", &CropOptions::seconds, "crop length").greater_than(0);
//   s.add("sample_rate", &CropOptions::sample_rate, "rate of the wave").min(1000);
//   r.transform("mine.crop", "a crop", s.schema(), [s](const Config& c, BuildContext&) {
//     return std::make_shared<Crop>(s.read(c));
//   });
//
// Options built with TORCH_ARG (private members behind getters/setters)
// bind through an accessor: s.add("channels", SSLAB_ARG(CpcEncoderOptions,
// channels), "latent width"). Nested structs bind the same way:
// s.add("probe_lr", [](Opts& o) -> double& { return o.probe.lr; }, "...").
//
// Field types: any integer type (recipe integer), float/double (number),
// bool, std::string (string; mark file paths with .path() and they are
// resolved against the recipe's folder), and std::vector of int64_t, double
// or std::string (a list of paths takes .path() too).
#pragma once

#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "sslab/recipe.h"

namespace sslab {

namespace detail {

template <typename T>
struct SettingType;  // maps a field type to the recipe's ValueType and reads it

template <typename T>
struct SettingIntegral {
  static constexpr ValueType type = ValueType::Integer;
  static DefaultValue to_default(T v) { return static_cast<int64_t>(v); }
  static T read(const Config& c, const std::string& k) { return static_cast<T>(c.get_int(k)); }
};
template <typename T>
struct SettingFloating {
  static constexpr ValueType type = ValueType::Float;
  static DefaultValue to_default(T v) { return static_cast<double>(v); }
  static T read(const Config& c, const std::string& k) { return static_cast<T>(c.get_float(k)); }
};
template <> struct SettingType<int> : SettingIntegral<int> {};
template <> struct SettingType<long> : SettingIntegral<long> {};
template <> struct SettingType<long long> : SettingIntegral<long long> {};
template <> struct SettingType<unsigned> : SettingIntegral<unsigned> {};
template <> struct SettingType<unsigned long> : SettingIntegral<unsigned long> {};
template <> struct SettingType<unsigned long long> : SettingIntegral<unsigned long long> {};
template <> struct SettingType<double> : SettingFloating<double> {};
template <> struct SettingType<float> : SettingFloating<float> {};
template <>
struct SettingType<bool> {
  static constexpr ValueType type = ValueType::Boolean;
  static DefaultValue to_default(bool v) { return v; }
  static bool read(const Config& c, const std::string& k) { return c.get_bool(k); }
};
template <>
struct SettingType<std::string> {
  static constexpr ValueType type = ValueType::String;
  static DefaultValue to_default(const std::string& v) { return v; }
  static std::string read(const Config& c, const std::string& k) {
    const KeySpec* spec = c.schema().find(k);
    return spec && spec->path ? c.get_path(k) : c.get_string(k);
  }
};
template <>
struct SettingType<std::vector<int64_t>> {
  static constexpr ValueType type = ValueType::IntArray;
  static DefaultValue to_default(const std::vector<int64_t>& v) { return v; }
  static std::vector<int64_t> read(const Config& c, const std::string& k) { return c.get_ints(k); }
};
template <>
struct SettingType<std::vector<double>> {
  static constexpr ValueType type = ValueType::FloatArray;
  static DefaultValue to_default(const std::vector<double>& v) { return v; }
  static std::vector<double> read(const Config& c, const std::string& k) { return c.get_floats(k); }
};
template <>
struct SettingType<std::vector<std::string>> {
  static constexpr ValueType type = ValueType::StringArray;
  static DefaultValue to_default(const std::vector<std::string>& v) { return v; }
  static std::vector<std::string> read(const Config& c, const std::string& k) {
    const KeySpec* spec = c.schema().find(k);
    return spec && spec->path ? c.get_paths(k) : c.get_strings(k);
  }
};

}  // namespace detail

template <typename Options>
class Settings {
 public:
  explicit Settings(Options prototype = Options()) : prototype_(std::move(prototype)) {}

  // A key stored in a public field of Options.
  template <typename T>
  Schema::Key add(const std::string& name, T Options::*field, const std::string& doc) {
    return add(name, [field](Options& o) -> T& { return o.*field; }, doc);
  }

  // A key stored where `access(options)` (a reference) points.
  template <typename Access, typename = std::enable_if_t<std::is_invocable_v<Access, Options&>>>
  Schema::Key add(const std::string& name, Access access, const std::string& doc) {
    using T = std::decay_t<decltype(access(std::declval<Options&>()))>;
    using Traits = detail::SettingType<T>;
    Schema::Key key = schema_.add(name, Traits::type, Traits::to_default(access(prototype_)), doc);
    readers_.push_back([name, access](const Config& c, Options& o) { access(o) = Traits::read(c, name); });
    return key;
  }

  // The declared keys (add keys read by hand with schema().integer(...)).
  Schema& schema() { return schema_; }
  const Schema& schema() const { return schema_; }
  // The prototype with every bound key set from `c` (defaults where absent).
  Options read(const Config& c) const {
    Options o = prototype_;
    for (const auto& r : readers_) r(c, o);
    return o;
  }
  const Options& prototype() const { return prototype_; }

 private:
  Options prototype_;
  Schema schema_;
  std::vector<std::function<void(const Config&, Options&)>> readers_;
};

}  // namespace sslab

// An accessor for a TORCH_ARG option: SSLAB_ARG(CpcEncoderOptions, channels).
#define SSLAB_ARG(OPTIONS, NAME) [](OPTIONS & o) -> auto& { return o.NAME(); }
