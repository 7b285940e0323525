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
 * and, for the daemon, mallocTune(mmapThreshold) and mallocTrim() (native/fsx-mem.c).
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
#include "fsx.h"

#define FSX_MAX_RETRIES 16

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
    { "mallocTune", NULL, fsx_malloc_tune, NULL, NULL, NULL, napi_enumerable, NULL },
    { "mallocTrim", NULL, fsx_malloc_trim, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  if (!NAPI_OK(env, napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props))) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
