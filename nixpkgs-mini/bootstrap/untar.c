/* Stage-0 unpacker: extracts a tar stream (ustar, GNU or old V7 headers,
 * pax path/linkpath records) from stdin into the current directory,
 * keeping each file's mode and mtime. busybox tar refuses V7 headers
 * ("invalid tar magic"), which GNU hello's tarball has; keeping mtimes
 * stops make from regenerating generated docs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define NAME_MAX_LEN 4096

static unsigned long long octal(const char *p, int n) {
  unsigned long long v = 0;
  int i = 0;
  while (i < n && p[i] == ' ') i++;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; i++) v = v * 8 + (unsigned long long)(p[i] - '0');
  return v;
}

static void mkparents(char *path) {
  for (char *p = path + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      mkdir(path, 0755);
      *p = '/';
    }
}

static int unsafe(const char *name) {
  if (name[0] == '/') return 1;
  for (const char *p = name; *p; p++)
    if ((p == name || p[-1] == '/') && p[0] == '.' && p[1] == '.' && (p[2] == '/' || !p[2])) return 1;
  return 0;
}

/* Read an entry's data (size bytes, padded to 512) into a fresh buffer. */
static char *read_data(unsigned long long size) {
  unsigned long long padded = (size + 511) & ~511ULL;
  if (size > (1ULL << 24)) return NULL;
  char *buf = malloc(padded + 1);
  if (!buf || fread(buf, 1, padded, stdin) != padded) return NULL;
  buf[size] = 0;
  return buf;
}

static int skip_data(unsigned long long size) {
  char buf[512];
  for (unsigned long long done = 0; done < size; done += 512)
    if (fread(buf, 1, 512, stdin) != 512) return -1;
  return 0;
}

/* pax extended header: records "LEN KEY=VALUE\n"; keep path and linkpath. */
static void pax(const char *data, unsigned long long size, char *path, char *linkpath) {
  const char *p = data, *end = data + size;
  while (p < end) {
    char *rest;
    unsigned long len = strtoul(p, &rest, 10);
    if (len == 0 || p + len > end || *rest != ' ') return;
    const char *key = rest + 1, *rec_end = p + len - 1; /* at the '\n' */
    const char *eq = memchr(key, '=', (size_t)(rec_end - key));
    if (eq) {
      size_t klen = (size_t)(eq - key), vlen = (size_t)(rec_end - eq - 1);
      char *dst = NULL;
      if (klen == 4 && !memcmp(key, "path", 4)) dst = path;
      if (klen == 8 && !memcmp(key, "linkpath", 8)) dst = linkpath;
      if (dst && vlen < NAME_MAX_LEN) {
        memcpy(dst, eq + 1, vlen);
        dst[vlen] = 0;
      }
    }
    p += len;
  }
}

struct dirtime {
  char *path;
  long long mtime;
  struct dirtime *next;
};

int main(void) {
  char h[512], name[NAME_MAX_LEN], target[NAME_MAX_LEN];
  char longname[NAME_MAX_LEN] = "", longlink[NAME_MAX_LEN] = "";
  struct dirtime *dirs = NULL;
  for (;;) {
    size_t got = fread(h, 1, 512, stdin);
    if (got == 0) break;
    if (got != 512) {
      fprintf(stderr, "untar: truncated header\n");
      return 1;
    }
    int empty = 1;
    for (int i = 0; i < 512; i++)
      if (h[i]) {
        empty = 0;
        break;
      }
    if (empty) break;
    unsigned long long size = octal(h + 124, 12), mode = octal(h + 100, 8);
    long long mtime = (long long)octal(h + 136, 12);
    char type = h[156];
    if (type == 'L' || type == 'K' || type == 'x' || type == 'g') {
      char *data = read_data(size);
      if (!data) {
        fprintf(stderr, "untar: bad extended header\n");
        return 1;
      }
      if (type == 'L' && size < NAME_MAX_LEN) snprintf(longname, sizeof longname, "%s", data);
      if (type == 'K' && size < NAME_MAX_LEN) snprintf(longlink, sizeof longlink, "%s", data);
      if (type == 'x') pax(data, size, longname, longlink);
      free(data);
      continue;
    }
    if (longname[0]) {
      snprintf(name, sizeof name, "%s", longname);
      longname[0] = 0;
    } else if (!memcmp(h + 257, "ustar", 5) && h[345]) {
      snprintf(name, sizeof name, "%.155s/%.100s", h + 345, h);
    } else {
      snprintf(name, sizeof name, "%.100s", h);
    }
    if (longlink[0]) {
      snprintf(target, sizeof target, "%s", longlink);
      longlink[0] = 0;
    } else {
      snprintf(target, sizeof target, "%.100s", h + 157);
    }
    if (unsafe(name) || (type == '1' && unsafe(target))) {
      fprintf(stderr, "untar: refusing %s\n", name);
      return 1;
    }
    mkparents(name);
    size_t len = strlen(name);
    if (type == '5' || ((type == 0 || type == '0') && len && name[len - 1] == '/')) {
      if (mkdir(name, 0755) && errno != EEXIST) {
        perror(name);
        return 1;
      }
      chmod(name, (mode & 0777) | 0700);
      struct dirtime *d = malloc(sizeof *d);
      d->path = strdup(name);
      d->mtime = mtime;
      d->next = dirs;
      dirs = d;
      if (skip_data(size)) return 1;
    } else if (type == '2') {
      unlink(name);
      if (symlink(target, name)) {
        perror(name);
        return 1;
      }
    } else if (type == '1') {
      unlink(name);
      if (link(target, name)) {
        perror(name);
        return 1;
      }
    } else if (type == '3' || type == '4' || type == '6') {
      if (skip_data(size)) return 1; /* devices and fifos: not needed */
    } else {
      unlink(name);
      FILE *f = fopen(name, "wb");
      if (!f) {
        perror(name);
        return 1;
      }
      char buf[512];
      for (unsigned long long done = 0; done < size; done += 512) {
        if (fread(buf, 1, 512, stdin) != 512) {
          fprintf(stderr, "untar: %s: truncated\n", name);
          return 1;
        }
        size_t n = size - done < 512 ? (size_t)(size - done) : 512;
        if (fwrite(buf, 1, n, f) != n) {
          perror(name);
          return 1;
        }
      }
      if (fclose(f)) {
        perror(name);
        return 1;
      }
      chmod(name, (mode & 0777) | 0600);
      struct timeval tv[2] = {{mtime, 0}, {mtime, 0}};
      utimes(name, tv);
    }
  }
  /* Read what follows the end marker: the decompressor writing into this
   * pipe must not die of SIGPIPE. */
  char rest[4096];
  while (fread(rest, 1, sizeof rest, stdin) > 0) {
  }
  /* Directory mtimes last: creating their entries changed them. */
  for (struct dirtime *d = dirs; d; d = d->next) {
    struct timeval tv[2] = {{d->mtime, 0}, {d->mtime, 0}};
    utimes(d->path, tv);
  }
  return 0;
}
