/*
 * fsx: the *at calls (one name relative to an open directory, never through a
 * symlink in that name where the call allows) and the calls on a descriptor,
 * for a restore that walks its target by directory descriptors. The exports
 * are listed in fsx.c; docs/format/metadata.md §7 specifies them.
 */
#include "fsx.h"

#if !defined(__linux__)
/* Only Linux has fsetxattr here; elsewhere it reports "not supported". */
static int fsetxattr (int d, const char *n, const void *v, size_t s, int f) { (void)d; (void)n; (void)v; (void)s; (void)f; errno = ENOTSUP; return -1; }
#endif

/* ---------- *at calls: one name relative to an open directory ---------- */

napi_value fsx_openat (napi_env env, napi_callback_info info) {
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

napi_value fsx_mkdirat (napi_env env, napi_callback_info info) {
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

napi_value fsx_mkfifoat (napi_env env, napi_callback_info info) {
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

napi_value fsx_symlinkat (napi_env env, napi_callback_info info) {
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

napi_value fsx_unlinkat (napi_env env, napi_callback_info info) {
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

napi_value fsx_linkat (napi_env env, napi_callback_info info) {
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

napi_value fsx_lchownat (napi_env env, napi_callback_info info) {
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

napi_value fsx_lutimensat (napi_env env, napi_callback_info info) {
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

napi_value fsx_futimens (napi_env env, napi_callback_info info) {
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

napi_value fsx_fsetxattr (napi_env env, napi_callback_info info) {
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
