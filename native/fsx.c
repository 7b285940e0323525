/*
 * fsx: the few file-metadata system calls Node.js does not expose.
 *
 *   lutimens(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec) -> undefined
 *       utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW)
 *   lgetxattrs(path) -> Array<{ name: Buffer, value: Buffer }>
 *       llistxattr + lgetxattr; [] when the filesystem has no xattrs
 *   lsetxattr(path, name, value) -> undefined
 *       lsetxattr(path, name, value, size, 0)
 *
 * and, for a restore that walks its target by directory descriptors (a name
 * is one path component, resolved in the open directory dirfd, so a parent
 * swapped for a symlink is never followed):
 *
 *   openat(dirfd, name, flags, mode) -> fd      openat(..., flags | O_CLOEXEC, mode)
 *   mkdirat(dirfd, name, mode)                  mkdirat
 *   symlinkat(target, dirfd, name)              symlinkat
 *   mkfifoat(dirfd, name, mode)                 mknodat(..., S_IFIFO | mode, 0)
 *   unlinkat(dirfd, name, flags)                unlinkat (flags: 0 or AT_REMOVEDIR)
 *   linkat(olddirfd, oldname, newdirfd, newname)  linkat(..., 0): never follows oldname
 *   lchownat(dirfd, name, uid, gid)             fchownat(..., AT_SYMLINK_NOFOLLOW)
 *   lutimensat(dirfd, name, aSec, aNsec, mSec, mNsec)  utimensat(..., AT_SYMLINK_NOFOLLOW)
 *   futimens(fd, aSec, aNsec, mSec, mNsec)      futimens
 *   fsetxattr(fd, name, value)                  fsetxattr(fd, name, value, size, 0)
 *
 * Descriptors, flags, modes, uid and gid are Numbers (flags as in
 * require('fs').constants, which are this platform's values).
 *
 * path, name and value are Uint8Arrays (raw bytes; a name or path must not
 * contain a NUL byte). The seconds are BigInts, the nanoseconds Numbers in
 * [0, 999999999]. A failed system call throws an Error shaped like Node's
 * fs errors: message "CODE: description, syscall 'path'", and properties
 * code ("ENOENT"), errno (negative, as in Node: -2), syscall and path.
 *
 * Every buffer read from the kernel is sized by a size query first; a
 * concurrent change that makes it too small (ERANGE) triggers a new query,
 * at most FSX_MAX_RETRIES times.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <node_api.h>
#if defined(__linux__)
#include <sys/xattr.h>
#endif

#define FSX_MAX_RETRIES 16

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
static void throw_napi_failure (napi_env env) {
  bool pending = false;
  const napi_extended_error_info *info = NULL;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  napi_get_last_error_info(env, &info);
  napi_throw_error(env, "ERR_FSX_NAPI",
    (info != NULL && info->error_message != NULL) ? info->error_message : "N-API call failed");
}

#define NAPI_OK(env, call) ((call) == napi_ok ? 1 : (throw_napi_failure(env), 0))

/*
 * Throw a Node-style system error. path_len bytes of path are decoded as
 * UTF-8 (invalid sequences become U+FFFD, as Buffer#toString does).
 */
static void throw_errno (napi_env env, int no, const char *syscall, const char *path, size_t path_len) {
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

static int get_args (napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (!NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL))) return 0;
  if (argc < want) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "fsx: missing arguments");
    return 0;
  }
  return 1;
}

/* View the bytes of a Uint8Array (Buffer included). */
static int get_bytes (napi_env env, napi_value v, const char *what, const uint8_t **data, size_t *len) {
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
static char *get_cstring (napi_env env, napi_value v, const char *what, size_t *len, int *has_nul) {
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
static char *get_path (napi_env env, napi_value v, size_t *len) {
  int has_nul = 0;
  char *s = get_cstring(env, v, "fsx: path must be a Uint8Array", len, &has_nul);
  if (s != NULL && has_nul) {
    free(s);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "fsx: path must not contain null bytes");
    return NULL;
  }
  return s;
}

static int get_timespec (napi_env env, napi_value sec_v, napi_value nsec_v, struct timespec *ts) {
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

static int get_int32 (napi_env env, napi_value v, const char *what, int32_t *out) {
  napi_valuetype t;
  if (!NAPI_OK(env, napi_typeof(env, v, &t))) return 0;
  if (t != napi_number) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return 0;
  }
  return NAPI_OK(env, napi_get_value_int32(env, v, out));
}

static int get_uint32 (napi_env env, napi_value v, const char *what, uint32_t *out) {
  napi_valuetype t;
  if (!NAPI_OK(env, napi_typeof(env, v, &t))) return 0;
  if (t != napi_number) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return 0;
  }
  return NAPI_OK(env, napi_get_value_uint32(env, v, out));
}

/* A descriptor argument: a non-negative int32. */
static int get_fd (napi_env env, napi_value v, int *fd) {
  int32_t n = 0;
  if (!get_int32(env, v, "fsx: a file descriptor must be a number", &n)) return 0;
  if (n < 0) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "fsx: a file descriptor must not be negative");
    return 0;
  }
  *fd = (int)n;
  return 1;
}

/* ---------- lutimens ---------- */

static napi_value fsx_lutimens (napi_env env, napi_callback_info info) {
  napi_value argv[5];
  struct timespec times[2];
  size_t path_len = 0;
  char *path;
  if (!get_args(env, info, 5, argv)) return NULL;
  if (!get_timespec(env, argv[1], argv[2], &times[0])) return NULL;
  if (!get_timespec(env, argv[3], argv[4], &times[1])) return NULL;
  path = get_path(env, argv[0], &path_len);
  if (path == NULL) return NULL;
  if (utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW) != 0) {
    throw_errno(env, errno, "utimensat", path, path_len);
  }
  free(path);
  return NULL;
}

/* ---------- xattrs ---------- */

#if !defined(__linux__)
/* Only Linux is supported; elsewhere every call reports "not supported". */
static ssize_t llistxattr (const char *p, char *l, size_t s) { (void)p; (void)l; (void)s; errno = ENOTSUP; return -1; }
static ssize_t lgetxattr (const char *p, const char *n, void *v, size_t s) { (void)p; (void)n; (void)v; (void)s; errno = ENOTSUP; return -1; }
static int lsetxattr (const char *p, const char *n, const void *v, size_t s, int f) { (void)p; (void)n; (void)v; (void)s; (void)f; errno = ENOTSUP; return -1; }
static int fsetxattr (int d, const char *n, const void *v, size_t s, int f) { (void)d; (void)n; (void)v; (void)s; (void)f; errno = ENOTSUP; return -1; }
#endif

/*
 * Read the NUL-separated name list into *out (malloc'd, caller frees).
 * Returns the list length, or -1 with errno set.
 */
static ssize_t read_name_list (const char *path, char **out) {
  int attempt;
  *out = NULL;
  for (attempt = 0; attempt < FSX_MAX_RETRIES; attempt++) {
    ssize_t size = llistxattr(path, NULL, 0);
    ssize_t got;
    char *buf;
    if (size < 0) return -1;
    if (size == 0) return 0;
    buf = malloc((size_t)size);
    if (buf == NULL) { errno = ENOMEM; return -1; }
    got = llistxattr(path, buf, (size_t)size);
    if (got >= 0) { *out = buf; return got; }
    free(buf);
    if (errno != ERANGE) return -1;
  }
  errno = ERANGE;
  return -1;
}

/*
 * Read one value into *out (malloc'd, at least 1 byte, caller frees).
 * Returns the value length, or -1 with errno set.
 */
static ssize_t read_value (const char *path, const char *name, char **out) {
  int attempt;
  *out = NULL;
  for (attempt = 0; attempt < FSX_MAX_RETRIES; attempt++) {
    ssize_t size = lgetxattr(path, name, NULL, 0);
    ssize_t got;
    char *buf;
    if (size < 0) return -1;
    buf = malloc(size > 0 ? (size_t)size : 1);
    if (buf == NULL) { errno = ENOMEM; return -1; }
    got = size > 0 ? lgetxattr(path, name, buf, (size_t)size) : 0;
    if (got >= 0) { *out = buf; return got; }
    free(buf);
    if (errno != ERANGE) return -1;
  }
  errno = ERANGE;
  return -1;
}

static int is_unsupported (int no) {
  return no == ENOTSUP
#if defined(EOPNOTSUPP) && EOPNOTSUPP != ENOTSUP
    || no == EOPNOTSUPP
#endif
    ;
}

static int is_no_such_attr (int no) {
#ifdef ENODATA
  if (no == ENODATA) return 1;
#endif
#ifdef ENOATTR
  if (no == ENOATTR) return 1;
#endif
  return 0;
}

/* Append { name, value } to result[*count]. */
static int push_attr (napi_env env, napi_value result, uint32_t *count,
                      const char *name, size_t name_len, const char *value, size_t value_len) {
  napi_value obj, name_v, value_v;
  if (!NAPI_OK(env, napi_create_object(env, &obj)) ||
      !NAPI_OK(env, napi_create_buffer_copy(env, name_len, name, NULL, &name_v)) ||
      !NAPI_OK(env, napi_create_buffer_copy(env, value_len, value, NULL, &value_v)) ||
      !NAPI_OK(env, napi_set_named_property(env, obj, "name", name_v)) ||
      !NAPI_OK(env, napi_set_named_property(env, obj, "value", value_v)) ||
      !NAPI_OK(env, napi_set_element(env, result, *count, obj))) {
    return 0;
  }
  (*count)++;
  return 1;
}

static napi_value fsx_lgetxattrs (napi_env env, napi_callback_info info) {
  napi_value argv[1];
  napi_value result = NULL;
  size_t path_len = 0;
  char *path;
  char *list = NULL;
  ssize_t list_len;
  size_t off = 0;
  uint32_t count = 0;
  if (!get_args(env, info, 1, argv)) return NULL;
  path = get_path(env, argv[0], &path_len);
  if (path == NULL) return NULL;
  if (!NAPI_OK(env, napi_create_array(env, &result))) { result = NULL; goto done; }
  list_len = read_name_list(path, &list);
  if (list_len < 0) {
    if (!is_unsupported(errno)) {
      throw_errno(env, errno, "llistxattr", path, path_len);
      result = NULL;
    }
    goto done;
  }
  while (off < (size_t)list_len) {
    const char *name = list + off;
    /* The kernel NUL-terminates every name; a last name without one is cut at the list end. */
    const char *end = memchr(name, '\0', (size_t)list_len - off);
    size_t name_len = (end != NULL) ? (size_t)(end - name) : (size_t)list_len - off;
    char *value = NULL;
    ssize_t value_len;
    off += name_len + 1;
    if (name_len == 0 || end == NULL) continue;
    value_len = read_value(path, name, &value);
    if (value_len < 0) {
      /* Removed since the list was read, or a name this filesystem lists but cannot read. */
      if (is_no_such_attr(errno) || is_unsupported(errno)) continue;
      throw_errno(env, errno, "lgetxattr", path, path_len);
      result = NULL;
      goto done;
    }
    if (!push_attr(env, result, &count, name, name_len, value, (size_t)value_len)) {
      free(value);
      result = NULL;
      goto done;
    }
    free(value);
  }
done:
  free(list);
  free(path);
  return result;
}

static napi_value fsx_lsetxattr (napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t path_len = 0, name_len = 0, value_len = 0;
  int name_has_nul = 0;
  const uint8_t *value = NULL;
  char *path = NULL;
  char *name = NULL;
  if (!get_args(env, info, 3, argv)) return NULL;
  if (!get_bytes(env, argv[2], "fsx: xattr value must be a Uint8Array", &value, &value_len)) return NULL;
  name = get_cstring(env, argv[1], "fsx: xattr name must be a Uint8Array", &name_len, &name_has_nul);
  if (name == NULL) return NULL;
  path = get_path(env, argv[0], &path_len);
  if (path == NULL) { free(name); return NULL; }
  if (name_has_nul || name_len == 0) {
    /* The kernel would see a different (truncated) name: refuse it as it would refuse a bad one. */
    throw_errno(env, name_len == 0 ? ERANGE : EINVAL, "lsetxattr", path, path_len);
  } else if (lsetxattr(path, name, value, value_len, 0) != 0) {
    throw_errno(env, errno, "lsetxattr", path, path_len);
  }
  free(name);
  free(path);
  return NULL;
}

/* ---------- *at calls: one name relative to an open directory ---------- */

static napi_value fsx_openat (napi_env env, napi_callback_info info) {
  napi_value argv[4];
  napi_value result = NULL;
  int dirfd = -1, fd;
  int32_t flags = 0;
  uint32_t mode = 0;
  size_t name_len = 0;
  char *name;
  if (!get_args(env, info, 4, argv)) return NULL;
  if (!get_fd(env, argv[0], &dirfd)) return NULL;
  if (!get_int32(env, argv[2], "fsx: flags must be a number", &flags)) return NULL;
  if (!get_uint32(env, argv[3], "fsx: mode must be a number", &mode)) return NULL;
  name = get_path(env, argv[1], &name_len);
  if (name == NULL) return NULL;
  fd = openat(dirfd, name, flags | O_CLOEXEC, (mode_t)mode);
  if (fd < 0) throw_errno(env, errno, "openat", name, name_len);
  else if (!NAPI_OK(env, napi_create_int32(env, fd, &result))) { close(fd); result = NULL; }
  free(name);
  return result;
}

static napi_value fsx_mkdirat (napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int dirfd = -1;
  uint32_t mode = 0;
  size_t name_len = 0;
  char *name;
  if (!get_args(env, info, 3, argv)) return NULL;
  if (!get_fd(env, argv[0], &dirfd)) return NULL;
  if (!get_uint32(env, argv[2], "fsx: mode must be a number", &mode)) return NULL;
  name = get_path(env, argv[1], &name_len);
  if (name == NULL) return NULL;
  if (mkdirat(dirfd, name, (mode_t)mode) != 0) throw_errno(env, errno, "mkdirat", name, name_len);
  free(name);
  return NULL;
}

static napi_value fsx_mkfifoat (napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int dirfd = -1;
  uint32_t mode = 0;
  size_t name_len = 0;
  char *name;
  if (!get_args(env, info, 3, argv)) return NULL;
  if (!get_fd(env, argv[0], &dirfd)) return NULL;
  if (!get_uint32(env, argv[2], "fsx: mode must be a number", &mode)) return NULL;
  name = get_path(env, argv[1], &name_len);
  if (name == NULL) return NULL;
  if (mknodat(dirfd, name, S_IFIFO | ((mode_t)mode & 07777), 0) != 0) throw_errno(env, errno, "mknodat", name, name_len);
  free(name);
  return NULL;
}

static napi_value fsx_symlinkat (napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int dirfd = -1;
  size_t target_len = 0, name_len = 0;
  char *target, *name;
  if (!get_args(env, info, 3, argv)) return NULL;
  if (!get_fd(env, argv[1], &dirfd)) return NULL;
  target = get_path(env, argv[0], &target_len);
  if (target == NULL) return NULL;
  name = get_path(env, argv[2], &name_len);
  if (name == NULL) { free(target); return NULL; }
  if (symlinkat(target, dirfd, name) != 0) throw_errno(env, errno, "symlinkat", name, name_len);
  free(name);
  free(target);
  return NULL;
}

static napi_value fsx_unlinkat (napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int dirfd = -1;
  int32_t flags = 0;
  size_t name_len = 0;
  char *name;
  if (!get_args(env, info, 3, argv)) return NULL;
  if (!get_fd(env, argv[0], &dirfd)) return NULL;
  if (!get_int32(env, argv[2], "fsx: flags must be a number", &flags)) return NULL;
  name = get_path(env, argv[1], &name_len);
  if (name == NULL) return NULL;
  if (unlinkat(dirfd, name, flags) != 0) throw_errno(env, errno, "unlinkat", name, name_len);
  free(name);
  return NULL;
}

static napi_value fsx_linkat (napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int olddirfd = -1, newdirfd = -1;
  size_t old_len = 0, new_len = 0;
  char *oldname, *newname;
  if (!get_args(env, info, 4, argv)) return NULL;
  if (!get_fd(env, argv[0], &olddirfd) || !get_fd(env, argv[2], &newdirfd)) return NULL;
  oldname = get_path(env, argv[1], &old_len);
  if (oldname == NULL) return NULL;
  newname = get_path(env, argv[3], &new_len);
  if (newname == NULL) { free(oldname); return NULL; }
  if (linkat(olddirfd, oldname, newdirfd, newname, 0) != 0) throw_errno(env, errno, "linkat", newname, new_len);
  free(newname);
  free(oldname);
  return NULL;
}

static napi_value fsx_lchownat (napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int dirfd = -1;
  uint32_t uid = 0, gid = 0;
  size_t name_len = 0;
  char *name;
  if (!get_args(env, info, 4, argv)) return NULL;
  if (!get_fd(env, argv[0], &dirfd)) return NULL;
  if (!get_uint32(env, argv[2], "fsx: uid must be a number", &uid)) return NULL;
  if (!get_uint32(env, argv[3], "fsx: gid must be a number", &gid)) return NULL;
  name = get_path(env, argv[1], &name_len);
  if (name == NULL) return NULL;
  if (fchownat(dirfd, name, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW) != 0) throw_errno(env, errno, "fchownat", name, name_len);
  free(name);
  return NULL;
}

static napi_value fsx_lutimensat (napi_env env, napi_callback_info info) {
  napi_value argv[6];
  struct timespec times[2];
  int dirfd = -1;
  size_t name_len = 0;
  char *name;
  if (!get_args(env, info, 6, argv)) return NULL;
  if (!get_fd(env, argv[0], &dirfd)) return NULL;
  if (!get_timespec(env, argv[2], argv[3], &times[0])) return NULL;
  if (!get_timespec(env, argv[4], argv[5], &times[1])) return NULL;
  name = get_path(env, argv[1], &name_len);
  if (name == NULL) return NULL;
  if (utimensat(dirfd, name, times, AT_SYMLINK_NOFOLLOW) != 0) throw_errno(env, errno, "utimensat", name, name_len);
  free(name);
  return NULL;
}

/* ---------- calls on an open descriptor ---------- */

static napi_value fsx_futimens (napi_env env, napi_callback_info info) {
  napi_value argv[5];
  struct timespec times[2];
  int fd = -1;
  if (!get_args(env, info, 5, argv)) return NULL;
  if (!get_fd(env, argv[0], &fd)) return NULL;
  if (!get_timespec(env, argv[1], argv[2], &times[0])) return NULL;
  if (!get_timespec(env, argv[3], argv[4], &times[1])) return NULL;
  if (futimens(fd, times) != 0) throw_errno(env, errno, "futimens", "", 0);
  return NULL;
}

static napi_value fsx_fsetxattr (napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int fd = -1;
  size_t name_len = 0, value_len = 0;
  int name_has_nul = 0;
  const uint8_t *value = NULL;
  char *name;
  if (!get_args(env, info, 3, argv)) return NULL;
  if (!get_fd(env, argv[0], &fd)) return NULL;
  if (!get_bytes(env, argv[2], "fsx: xattr value must be a Uint8Array", &value, &value_len)) return NULL;
  name = get_cstring(env, argv[1], "fsx: xattr name must be a Uint8Array", &name_len, &name_has_nul);
  if (name == NULL) return NULL;
  if (name_has_nul || name_len == 0) {
    throw_errno(env, name_len == 0 ? ERANGE : EINVAL, "fsetxattr", "", 0);
  } else if (fsetxattr(fd, name, value, value_len, 0) != 0) {
    throw_errno(env, errno, "fsetxattr", "", 0);
  }
  free(name);
  return NULL;
}

/* ---------- module ---------- */

static napi_value init (napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "lutimens", NULL, fsx_lutimens, NULL, NULL, NULL, napi_enumerable, NULL },
    { "lgetxattrs", NULL, fsx_lgetxattrs, NULL, NULL, NULL, napi_enumerable, NULL },
    { "lsetxattr", NULL, fsx_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL },
    { "openat", NULL, fsx_openat, NULL, NULL, NULL, napi_enumerable, NULL },
    { "mkdirat", NULL, fsx_mkdirat, NULL, NULL, NULL, napi_enumerable, NULL },
    { "mkfifoat", NULL, fsx_mkfifoat, NULL, NULL, NULL, napi_enumerable, NULL },
    { "symlinkat", NULL, fsx_symlinkat, NULL, NULL, NULL, napi_enumerable, NULL },
    { "unlinkat", NULL, fsx_unlinkat, NULL, NULL, NULL, napi_enumerable, NULL },
    { "linkat", NULL, fsx_linkat, NULL, NULL, NULL, napi_enumerable, NULL },
    { "lchownat", NULL, fsx_lchownat, NULL, NULL, NULL, napi_enumerable, NULL },
    { "lutimensat", NULL, fsx_lutimensat, NULL, NULL, NULL, napi_enumerable, NULL },
    { "futimens", NULL, fsx_futimens, NULL, NULL, NULL, napi_enumerable, NULL },
    { "fsetxattr", NULL, fsx_fsetxattr, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  if (!NAPI_OK(env, napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props))) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
