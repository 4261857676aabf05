// stb_image's decoder compiled here from Debian's header (libstb's own
// copy is uninstrumented): what load_image runs, with coverage and ASan.
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
