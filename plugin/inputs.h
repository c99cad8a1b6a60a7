/*
 * inputs.h - checks of what Darknet would otherwise end a rank on with
 * exit(0), deep inside a loader thread: unreadable images, labels, weights
 * that do not fit, a backup directory that cannot be written.
 */
#ifndef HPSGD_INPUTS_H
#define HPSGD_INPUTS_H

#include "registry.h"

/* task: HPSGD_DETECTOR or HPSGD_CLASSIFIER (hpsgd.h). Returns 0, or -1 after
 * printing one line naming the file. */
int hpsgd_check_inputs(const hpsgd_registry *reg, const char *cfgfile, int task, char **paths, int npaths,
                       const char *weightfile);
int hpsgd_check_backup_dir(const char *dir);

#endif
