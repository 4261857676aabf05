// The plugin ABI: what a plugin exports and how the host checks it.
//
// A plugin is a shared library named libsslab-<name>.so exporting exactly one
// C function, sslab_plugin_info(), that returns a static descriptor. Define it
// with the SSLAB_PLUGIN macro:
//
//   static void register_components(sslab::Registrar& r) { r.encoder(...); }
//   SSLAB_PLUGIN("mine", "0.1.0", "What it does", register_components)
//
// No exception crosses the C entry point: the macro's trampoline catches
// everything and returns a status and a message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>

#include <torch/version.h>

#include "sslab/export.h"
#include "sslab/registry.h"

// The plugin API version. The host refuses a plugin whose major version
// differs, or whose minor version is newer than its own.
#define SSLAB_API_VERSION_MAJOR 2
#define SSLAB_API_VERSION_MINOR 1  // 2.1: additions only (docs/plugins.md, "API 2.1"); 2.0: SDK 2 ("Migrating")

extern "C" {

typedef struct sslab_registrar sslab_registrar;  // is a sslab::Registrar

// Returns 0 on success; otherwise writes a message into error.
typedef int (*sslab_register_fn)(sslab_registrar* registrar, char* error, size_t error_size);

typedef struct sslab_plugin_info_t {
  uint32_t struct_size;    // sizeof(sslab_plugin_info_t) as the plugin saw it
  uint32_t api_major;      // SSLAB_API_VERSION_MAJOR the plugin was built with
  uint32_t api_minor;      // SSLAB_API_VERSION_MINOR the plugin was built with
  const char* name;        // plugin name, e.g. "vision"
  const char* version;     // the plugin's own version
  const char* description; // one line
  const char* torch_version;  // TORCH_VERSION the plugin was built against
  sslab_register_fn register_components;
} sslab_plugin_info_t;

typedef const sslab_plugin_info_t* (*sslab_plugin_info_fn)(void);
}

#define SSLAB_PLUGIN_ENTRY_SYMBOL "sslab_plugin_info"

namespace sslab::detail {
inline int call_register(sslab_registrar* registrar, char* error, size_t error_size,
                         void (*fn)(Registrar&)) {
  auto fail = [&](const char* msg) {
    if (error && error_size) {
      std::strncpy(error, msg, error_size - 1);
      error[error_size - 1] = '\0';
    }
    return 1;
  };
  try {
    fn(*reinterpret_cast<Registrar*>(registrar));
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  } catch (...) {
    return fail("unknown exception");
  }
}
}  // namespace sslab::detail

#define SSLAB_PLUGIN(NAME, VERSION, DESCRIPTION, REGISTER_FN)                                  \
  static int sslab_register_trampoline_(sslab_registrar* r, char* error, size_t error_size) { \
    return ::sslab::detail::call_register(r, error, error_size, &REGISTER_FN);                \
  }                                                                                           \
  SSLAB_PLUGIN_EXPORT const sslab_plugin_info_t* sslab_plugin_info(void) {                   \
    static const sslab_plugin_info_t info = {sizeof(sslab_plugin_info_t),                     \
                                             SSLAB_API_VERSION_MAJOR,                         \
                                             SSLAB_API_VERSION_MINOR,                         \
                                             NAME,                                            \
                                             VERSION,                                         \
                                             DESCRIPTION,                                     \
                                             TORCH_VERSION,                                   \
                                             &sslab_register_trampoline_};                    \
    return &info;                                                                             \
  }
