/*
 * inputs.c - input checks before the first step (see inputs.h).
 */
#include "inputs.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "darknet/fork.h"
#include "hpsgd.h"
#include "log.h"

int hpsgd_check_inputs(const hpsgd_registry *reg, const char *cfgfile, int task, char **paths, int npaths,
                       const char *weightfile)
{
    if (npaths == 0) {
        hpsgd_say("the train list is empty");
        return -1;
    }
    for (int i = 0; i < npaths; ++i) {
        if (access(paths[i], R_OK)) {
            hpsgd_say("cannot read training image %s (line %d of the train list): %s", paths[i], i + 1,
                      strerror(errno));
            return -1;
        }
        if (task == HPSGD_DETECTOR) {
            char label[HPSGD_PATH_MAX];
            hpsgd_dn_label_path(paths[i], label);
            if (access(label, R_OK)) {
                hpsgd_say("cannot read label file %s (for image %s): %s", label, paths[i], strerror(errno));
                return -1;
            }
        }
    }
    if (!weightfile || !*weightfile) return 0;
    FILE *f = fopen(weightfile, "rb");
    if (!f) {
        hpsgd_say("cannot read weights file %s: %s", weightfile, strerror(errno));
        return -1;
    }
    size_t header = hpsgd_dn_weights_header_bytes(f);
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fclose(f);
    int fits = header && bytes >= (long)header &&
               hpsgd_registry_match_file_size(reg, (size_t)bytes - header + HPSGD_WEIGHTS_HEADER_BYTES) >= 0;
    if (!fits) {
        hpsgd_say("weights file %s does not fit %s: %ld bytes, but the network takes %zu (or a prefix of whole layers)",
                  weightfile, cfgfile, bytes, HPSGD_WEIGHTS_HEADER_BYTES + reg->saved_floats * sizeof(float));
        return -1;
    }
    return 0;
}

int hpsgd_check_backup_dir(const char *dir)
{
    struct stat st;
    errno = 0;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode) || access(dir, W_OK)) {
        hpsgd_say("backup directory %s (the data file's backup=) is not a writable directory%s%s", dir,
                  errno ? ": " : "", errno ? strerror(errno) : "");
        return -1;
    }
    return 0;
}
