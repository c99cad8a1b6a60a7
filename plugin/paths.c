/*
 * paths.c - Darknet's own data files found wherever darknet runs from.
 *
 * Stock Darknet opens the PNGs in data/labels (the glyphs detector test draws
 * labels with) relative to the working directory, so it only draws when run
 * from its source tree. The build places data/labels beside the executable.
 */
#include "hpsgd.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *hpsgd_data_path(const char *rel)
{
    /* The working directory first: stock behaviour where it works. */
    if (access(rel, F_OK) == 0) return rel;

    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) return rel;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return rel;
    *slash = '\0';

    /* One caller at a time (main thread, at start-up): a static buffer will do. */
    static char path[PATH_MAX + 64];
    int len = snprintf(path, sizeof(path), "%s/%s", exe, rel);
    if (len < 0 || (size_t)len >= sizeof(path) || access(path, F_OK) != 0) return rel;
    return path;
}
