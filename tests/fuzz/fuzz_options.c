/*
 * fuzz_options.c - libFuzzer target over the cfg reader path the plugin uses:
 * Darknet's read_cfg() on arbitrary bytes, then hpsgd_options_take_sections()
 * (which re-reads the [hpsgd] section from the file itself). Built and run by
 * `make fuzz`; every crash it finds is kept in tests/fuzz/regressions/ and
 * replayed by the unit test test_fuzz_regressions on every `make test`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "darknet/fork.h"
#include "options.h"
#include "ring.h"

typedef struct {
    char *type;
    list *options;
} section;
void free_section(section *s);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/hpsgd-fuzz-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        unlink(path);
        return 0;
    }
    close(fd);
    list *sections = read_cfg(path);
    hpsgd_options o;
    char err[1024];
    hpsgd_options_defaults(&o);
    if (hpsgd_options_take_sections(&o, path, sections, err, sizeof err) == 0 && o.present) {
        /* Accepted values must be inside their documented ranges. */
        if (o.interval < 1 || (o.max_stale < 0 && o.max_stale != HPSGD_MAX_STALE_AUTO) || o.chunk_mb < 0.0625 ||
            o.chunk_mb > 4096 || o.timeout <= 0 || o.stats < 0 || o.stats > 1 || o.loader_threads < 0 ||
            o.loader_threads > 256 || o.chunks_in_flight < 1 || o.chunks_in_flight > HPSGD_RING_MAX_IN_FLIGHT)
            abort();
    } else if (strchr(err, '\n')) {
        abort(); /* errors are one line */
    }
    for (node *n = sections->front; n; n = n->next) free_section((section *)n->val);
    free_list(sections);
    unlink(path);
    return 0;
}
