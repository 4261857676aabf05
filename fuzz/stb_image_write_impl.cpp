// stb_image_write for the seed generator only. Compiled without UBSan: its
// JPEG encoder shifts negative values left (undefined in C++17, harmless here).
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
