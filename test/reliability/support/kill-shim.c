/*
 * Preloaded into a server under test: kills the process with SIGKILL on entry to one named system call
 * whose path (or, for a file descriptor, the file it is open on) contains a given text, on its Nth match.
 *   KILL_SHIM_CALL=rename KILL_SHIM_PATH=/current/ KILL_SHIM_NTH=1
 * Calls: rename link unlink write pwrite ftruncate fsync fdatasync.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static int matches_seen = 0;

/* KILL_SHIM_CALL may name several calls, comma-separated: "ftruncate,pwrite". */
static int wanted(const char *call) {
  const char *want = getenv("KILL_SHIM_CALL");
  size_t length = strlen(call);
  for (const char *at = want; at != NULL && *at; at = strchr(at, ',') ? strchr(at, ',') + 1 : NULL) {
    if (strncmp(at, call, length) == 0 && (at[length] == ',' || at[length] == 0)) return 1;
  }
  return 0;
}

static void maybe_die(const char *call, const char *path) {
  if (!wanted(call) || path == NULL) return;
  const char *text = getenv("KILL_SHIM_PATH");
  if (text == NULL || strstr(path, text) == NULL) return;
  const char *nth = getenv("KILL_SHIM_NTH");
  if (++matches_seen < (nth ? atoi(nth) : 1)) return;
  kill(getpid(), SIGKILL);
}

static void maybe_die_fd(const char *call, int fd) {
  if (!wanted(call)) return;
  char link[64], path[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return;
  path[n] = 0;
  maybe_die(call, path);
}

#define REAL(name) static __typeof__(&name) real_##name; if (!real_##name) real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

int rename(const char *from, const char *to) {
  REAL(rename);
  maybe_die("rename", to);
  maybe_die("rename", from);
  return real_rename(from, to);
}

int link(const char *from, const char *to) {
  REAL(link);
  maybe_die("link", to);
  return real_link(from, to);
}

int unlink(const char *path) {
  REAL(unlink);
  maybe_die("unlink", path);
  return real_unlink(path);
}

ssize_t write(int fd, const void *buf, size_t count) {
  REAL(write);
  if (fd > 2) maybe_die_fd("write", fd);
  return real_write(fd, buf, count);
}

ssize_t writev(int fd, const struct iovec *iov, int count) {
  REAL(writev);
  if (fd > 2) maybe_die_fd("write", fd);
  return real_writev(fd, iov, count);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
  REAL(pwrite64);
  maybe_die_fd("pwrite", fd);
  return real_pwrite64(fd, buf, count, offset);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
  REAL(pwrite);
  maybe_die_fd("pwrite", fd);
  return real_pwrite(fd, buf, count, offset);
}

ssize_t pwritev(int fd, const struct iovec *iov, int count, off_t offset) {
  REAL(pwritev);
  maybe_die_fd("pwrite", fd);
  return real_pwritev(fd, iov, count, offset);
}

int ftruncate(int fd, off_t length) {
  REAL(ftruncate);
  maybe_die_fd("ftruncate", fd);
  return real_ftruncate(fd, length);
}

int ftruncate64(int fd, off_t length) {
  REAL(ftruncate64);
  maybe_die_fd("ftruncate", fd);
  return real_ftruncate64(fd, length);
}

int fsync(int fd) {
  REAL(fsync);
  maybe_die_fd("fsync", fd);
  return real_fsync(fd);
}

int fdatasync(int fd) {
  REAL(fdatasync);
  maybe_die_fd("fsync", fd);
  return real_fdatasync(fd);
}
