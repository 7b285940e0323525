/* fsx: declarations shared by the addon's files (native/fsx.c describes every export). */
#ifndef FSX_H
#define FSX_H
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <node_api.h>
#if defined(__linux__)
#include <sys/xattr.h>
#endif

/* ---------- fsx-util.c: errors and arguments ---------- */

/* Throw a pending JS exception for a failed N-API call unless one is already pending. */
void throw_napi_failure (napi_env env);
#define NAPI_OK(env, call) ((call) == napi_ok ? 1 : (throw_napi_failure(env), 0))
/* Throw a Node-style system error (code, errno, syscall, path). */
void throw_errno (napi_env env, int no, const char *syscall, const char *path, size_t path_len);
int get_args (napi_env env, napi_callback_info info, size_t want, napi_value *argv);
int get_bytes (napi_env env, napi_value v, const char *what, const uint8_t **data, size_t *len);
char *get_cstring (napi_env env, napi_value v, const char *what, size_t *len, int *has_nul);
char *get_path (napi_env env, napi_value v, size_t *len);
int get_timespec (napi_env env, napi_value sec_v, napi_value nsec_v, struct timespec *ts);
int get_int32 (napi_env env, napi_value v, const char *what, int32_t *out);
int get_uint32 (napi_env env, napi_value v, const char *what, uint32_t *out);
int get_fd (napi_env env, napi_value v, int *fd);

/* ---------- fsx-at.c: names relative to an open directory, calls on a descriptor ---------- */

napi_value fsx_openat (napi_env env, napi_callback_info info);
napi_value fsx_mkdirat (napi_env env, napi_callback_info info);
napi_value fsx_mkfifoat (napi_env env, napi_callback_info info);
napi_value fsx_symlinkat (napi_env env, napi_callback_info info);
napi_value fsx_unlinkat (napi_env env, napi_callback_info info);
napi_value fsx_linkat (napi_env env, napi_callback_info info);
napi_value fsx_lchownat (napi_env env, napi_callback_info info);
napi_value fsx_lutimensat (napi_env env, napi_callback_info info);
napi_value fsx_futimens (napi_env env, napi_callback_info info);
napi_value fsx_fsetxattr (napi_env env, napi_callback_info info);

/* ---------- fsx-mem.c: the C library's allocator ---------- */

napi_value fsx_malloc_tune (napi_env env, napi_callback_info info);
napi_value fsx_malloc_trim (napi_env env, napi_callback_info info);

#endif
