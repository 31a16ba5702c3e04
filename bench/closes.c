/* The issue-20 memory probe: a trivial C program that never uses kTLS.
 * Opens and closes /dev/null COUNT times (default 10000; close() is a hook),
 * then prints its own memory from /proc/self/status, in KiB:
 *   rss_anon_kb=N rss_kb=N
 * bench/run runs it without a preload, with an empty library preloaded
 * (empty_preload.c: what the loader charges for any library) and with
 * libzctls.so. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long status_kb(const char* text, const char* field) {
  const char* at = strstr(text, field);
  return at != NULL ? strtol(at + strlen(field), NULL, 10) : -1;
}

int main(int argc, char** argv) {
  const long count = argc > 1 ? strtol(argv[1], NULL, 10) : 10000;
  for (long i = 0; i < count; ++i) {
    const int fd = open("/dev/null", O_RDONLY);
    if (fd < 0 || close(fd) != 0) return 1;
  }
  /* read(2), not stdio: nothing allocated before the measurement. */
  char text[8192];
  const int fd = open("/proc/self/status", O_RDONLY);
  if (fd < 0) return 1;
  const ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return 1;
  text[n] = '\0';
  printf("rss_anon_kb=%ld rss_kb=%ld\n", status_kb(text, "RssAnon:"), status_kb(text, "VmRSS:"));
  return 0;
}
