/* fsx: Node-style errors and argument checks for the addon (see fsx.h, fsx.c). */
#include "fsx.h"

/* ---------- errors ---------- */

struct errno_name { int no; const char *code; const char *text; };

/* Codes and texts follow libuv, so they read like Node's own fs errors. */
static const struct errno_name ERRNO_NAMES[] = {
  { EPERM, "EPERM", "operation not permitted" },
  { ENOENT, "ENOENT", "no such file or directory" },
  { EINTR, "EINTR", "interrupted system call" },
  { EIO, "EIO", "i/o error" },
  { ENXIO, "ENXIO", "no such device or address" },
  { E2BIG, "E2BIG", "argument list too long" },
  { EBADF, "EBADF", "bad file descriptor" },
  { EAGAIN, "EAGAIN", "resource temporarily unavailable" },
  { ENOMEM, "ENOMEM", "not enough memory" },
  { EACCES, "EACCES", "permission denied" },
  { EFAULT, "EFAULT", "bad address in system call argument" },
  { EBUSY, "EBUSY", "resource busy or locked" },
  { EEXIST, "EEXIST", "file already exists" },
  { EXDEV, "EXDEV", "cross-device link not permitted" },
  { ENODEV, "ENODEV", "no such device" },
  { ENOTDIR, "ENOTDIR", "not a directory" },
  { EISDIR, "EISDIR", "illegal operation on a directory" },
  { EINVAL, "EINVAL", "invalid argument" },
  { ENFILE, "ENFILE", "file table overflow" },
  { EMFILE, "EMFILE", "too many open files" },
  { ETXTBSY, "ETXTBSY", "text file is busy" },
  { EFBIG, "EFBIG", "file too large" },
  { ENOSPC, "ENOSPC", "no space left on device" },
  { EROFS, "EROFS", "read-only file system" },
  { EMLINK, "EMLINK", "too many links" },
  { ERANGE, "ERANGE", "result too large" },
  { ENAMETOOLONG, "ENAMETOOLONG", "name too long" },
  { ENOSYS, "ENOSYS", "function not implemented" },
  { ELOOP, "ELOOP", "too many symbolic links encountered" },
#ifdef ENODATA
  { ENODATA, "ENODATA", "no data available" },
#endif
#ifdef ENOATTR
#if !defined(ENODATA) || ENOATTR != ENODATA
  { ENOATTR, "ENODATA", "no data available" },
#endif
#endif
  { EOVERFLOW, "EOVERFLOW", "value too large for defined data type" },
  { ENOTSUP, "ENOTSUP", "operation not supported" },
#if defined(EOPNOTSUPP) && EOPNOTSUPP != ENOTSUP
  { EOPNOTSUPP, "ENOTSUP", "operation not supported" },
#endif
#ifdef EDQUOT
  { EDQUOT, "EDQUOT", "disk quota exceeded" },
#endif
#ifdef ESTALE
  { ESTALE, "ESTALE", "stale file handle" },
#endif
  { ENOTEMPTY, "ENOTEMPTY", "directory not empty" },
  { EILSEQ, "EILSEQ", "illegal byte sequence" },
};

static const struct errno_name *errno_lookup (int no) {
  static const struct errno_name unknown = { 0, "UNKNOWN", "unknown error" };
  size_t i;
  for (i = 0; i < sizeof(ERRNO_NAMES) / sizeof(ERRNO_NAMES[0]); i++) {
    if (ERRNO_NAMES[i].no == no) return &ERRNO_NAMES[i];
  }
  return &unknown;
}

/* Throw a pending JS exception for a failed N-API call unless one is already pending. */
void throw_napi_failure (napi_env env) {
  bool pending = false;
  const napi_extended_error_info *info = NULL;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  napi_get_last_error_info(env, &info);
  napi_throw_error(env, "ERR_FSX_NAPI",
    (info != NULL && info->error_message != NULL) ? info->error_message : "N-API call failed");
}


/*
 * Throw a Node-style system error. path_len bytes of path are decoded as
 * UTF-8 (invalid sequences become U+FFFD, as Buffer#toString does).
 */
void throw_errno (napi_env env, int no, const char *syscall, const char *path, size_t path_len) {
  const struct errno_name *name = errno_lookup(no);
  size_t text_len = strlen(name->code) + 2 + strlen(name->text) + 2 + strlen(syscall) + 3 + path_len + 2;
  char *text = malloc(text_len);
  napi_value code_v, msg_v, err_v, errno_v, syscall_v, path_v;
  if (text == NULL) {
    napi_throw_error(env, "ENOMEM", "ENOMEM: not enough memory to report an error");
    return;
  }
  /* "CODE: description, syscall '" then the raw path bytes then "'" */
  {
    size_t n = 0;
    size_t k;
    k = strlen(name->code); memcpy(text + n, name->code, k); n += k;
    memcpy(text + n, ": ", 2); n += 2;
    k = strlen(name->text); memcpy(text + n, name->text, k); n += k;
    memcpy(text + n, ", ", 2); n += 2;
    k = strlen(syscall); memcpy(text + n, syscall, k); n += k;
    memcpy(text + n, " '", 2); n += 2;
    memcpy(text + n, path, path_len); n += path_len;
    text[n++] = '\'';
    text_len = n;
  }
  if (!NAPI_OK(env, napi_create_string_utf8(env, name->code, NAPI_AUTO_LENGTH, &code_v)) ||
      !NAPI_OK(env, napi_create_string_utf8(env, text, text_len, &msg_v)) ||
      !NAPI_OK(env, napi_create_error(env, code_v, msg_v, &err_v)) ||
      !NAPI_OK(env, napi_create_int32(env, -no, &errno_v)) ||
      !NAPI_OK(env, napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_v)) ||
      !NAPI_OK(env, napi_create_string_utf8(env, path, path_len, &path_v)) ||
      !NAPI_OK(env, napi_set_named_property(env, err_v, "errno", errno_v)) ||
      !NAPI_OK(env, napi_set_named_property(env, err_v, "syscall", syscall_v)) ||
      !NAPI_OK(env, napi_set_named_property(env, err_v, "path", path_v))) {
    free(text);
    return;
  }
  free(text);
  NAPI_OK(env, napi_throw(env, err_v));
}

/* ---------- argument helpers ---------- */

int get_args (napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (!NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL))) return 0;
  if (argc < want) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "fsx: missing arguments");
    return 0;
  }
  return 1;
}

/* View the bytes of a Uint8Array (Buffer included). */
int get_bytes (napi_env env, napi_value v, const char *what, const uint8_t **data, size_t *len) {
  bool is_ta = false;
  napi_typedarray_type type;
  void *ptr = NULL;
  if (!NAPI_OK(env, napi_is_typedarray(env, v, &is_ta))) return 0;
  if (is_ta) {
    if (!NAPI_OK(env, napi_get_typedarray_info(env, v, &type, len, &ptr, NULL, NULL))) return 0;
    if (type == napi_uint8_array) {
      *data = (ptr != NULL) ? (const uint8_t *)ptr : (const uint8_t *)"";
      return 1;
    }
  }
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
  return 0;
}

/*
 * Copy a Uint8Array into a fresh NUL-terminated string. Returns NULL with an
 * exception pending on failure; *has_nul reports an embedded NUL byte (the
 * copy is still made so the caller can decide how to report it).
 */
char *get_cstring (napi_env env, napi_value v, const char *what, size_t *len, int *has_nul) {
  const uint8_t *data = NULL;
  char *s;
  if (!get_bytes(env, v, what, &data, len)) return NULL;
  s = malloc(*len + 1);
  if (s == NULL) {
    napi_throw_error(env, "ENOMEM", "fsx: out of memory");
    return NULL;
  }
  memcpy(s, data, *len);
  s[*len] = '\0';
  *has_nul = memchr(s, '\0', *len) != NULL;
  return s;
}

/* A path argument: like Node, a NUL byte inside a path is a TypeError. */
char *get_path (napi_env env, napi_value v, size_t *len) {
  int has_nul = 0;
  char *s = get_cstring(env, v, "fsx: path must be a Uint8Array", len, &has_nul);
  if (s != NULL && has_nul) {
    free(s);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "fsx: path must not contain null bytes");
    return NULL;
  }
  return s;
}

int get_timespec (napi_env env, napi_value sec_v, napi_value nsec_v, struct timespec *ts) {
  int64_t sec = 0;
  int64_t nsec = 0;
  bool lossless = false;
  napi_valuetype t;
  if (!NAPI_OK(env, napi_typeof(env, sec_v, &t))) return 0;
  if (t != napi_bigint) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fsx: seconds must be a BigInt");
    return 0;
  }
  if (!NAPI_OK(env, napi_get_value_bigint_int64(env, sec_v, &sec, &lossless))) return 0;
  if (!NAPI_OK(env, napi_typeof(env, nsec_v, &t))) return 0;
  if (t != napi_number) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fsx: nanoseconds must be a number");
    return 0;
  }
  if (!NAPI_OK(env, napi_get_value_int64(env, nsec_v, &nsec))) return 0;
  if (!lossless || (time_t)sec != sec) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "fsx: seconds do not fit in time_t");
    return 0;
  }
  if (nsec < 0 || nsec > 999999999) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "fsx: nanoseconds must be in [0, 999999999]");
    return 0;
  }
  ts->tv_sec = (time_t)sec;
  ts->tv_nsec = (long)nsec;
  return 1;
}

int get_int32 (napi_env env, napi_value v, const char *what, int32_t *out) {
  napi_valuetype t;
  if (!NAPI_OK(env, napi_typeof(env, v, &t))) return 0;
  if (t != napi_number) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return 0;
  }
  return NAPI_OK(env, napi_get_value_int32(env, v, out));
}

int get_uint32 (napi_env env, napi_value v, const char *what, uint32_t *out) {
  napi_valuetype t;
  if (!NAPI_OK(env, napi_typeof(env, v, &t))) return 0;
  if (t != napi_number) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return 0;
  }
  return NAPI_OK(env, napi_get_value_uint32(env, v, out));
}

/* A descriptor argument: a non-negative int32. */
int get_fd (napi_env env, napi_value v, int *fd) {
  int32_t n = 0;
  if (!get_int32(env, v, "fsx: a file descriptor must be a number", &n)) return 0;
  if (n < 0) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "fsx: a file descriptor must not be negative");
    return 0;
  }
  *fd = (int)n;
  return 1;
}
