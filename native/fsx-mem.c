/*
 * fsx-mem: the C library's allocator, for a long-running daemon (docs/benchmarks.md, "Where a
 * persister's memory goes"). Node.js allocates the bytes of every Buffer and ArrayBuffer with
 * malloc. glibc serves a large request with its own mmap only above a threshold that it raises to
 * the size of the largest mmapped block freed so far (up to 32 MiB): after a few 16 MiB shares, every
 * later share and part comes from the heap, whose free pages stay in the process's RSS.
 *
 *   mallocTune(mmapThreshold) -> boolean
 *       mallopt(M_MMAP_THRESHOLD, mmapThreshold): a block of at least that many bytes gets its own
 *       mapping, returned to the system when freed; a fixed threshold also stops glibc raising it.
 *       false where the C library is not glibc (nothing is changed).
 *   mallocTrim() -> boolean
 *       malloc_trim(0): gives the free pages of every arena back to the system (madvise); true when
 *       some memory was released; false where the C library is not glibc.
 */
#include "fsx.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

static napi_value boolean (napi_env env, int v) {
  napi_value out;
  if (!NAPI_OK(env, napi_get_boolean(env, v != 0, &out))) return NULL;
  return out;
}

napi_value fsx_malloc_tune (napi_env env, napi_callback_info info) {
  napi_value argv[1];
  uint32_t threshold = 0;
  if (!get_args(env, info, 1, argv)) return NULL;
  if (!get_uint32(env, argv[0], "mmapThreshold must be a number of bytes", &threshold)) return NULL;
#if defined(__GLIBC__)
  return boolean(env, mallopt(M_MMAP_THRESHOLD, (int)threshold) == 1);
#else
  return boolean(env, 0);
#endif
}

napi_value fsx_malloc_trim (napi_env env, napi_callback_info info) {
#if defined(__GLIBC__)
  return boolean(env, malloc_trim(0));
#else
  return boolean(env, 0);
#endif
}
