// Symbol visibility for libsslab.so and for plugins.
//
// Everything is compiled with -fvisibility=hidden; SSLAB_API marks what the
// platform library exports to plugins and the sslab command, and
// SSLAB_PLUGIN_EXPORT marks the one C entry point a plugin exports.
#pragma once

#define SSLAB_API __attribute__((visibility("default")))
#define SSLAB_PLUGIN_EXPORT extern "C" __attribute__((visibility("default")))
