/*
 * darknet/sections.h - taking [hpsgd] sections out of the section list that
 * read_cfg() returns. pjreddie's and AlexeyAB's parser.c keep the same
 * private section struct and free it alike; included by each adapter.
 */
#ifndef HPSGD_DARKNET_SECTIONS_H
#define HPSGD_DARKNET_SECTIONS_H

#include <stdlib.h>

#include "darknet/fork.h"
#include "list.h"
#include "option_list.h"

/* parser.c keeps this struct private; this is the same layout. */
typedef struct {
    char *type;
    list *options;
} darknet_section;

/* The same release as parser.c's free_section(): key and value share the line. */
static void free_darknet_section(darknet_section *s)
{
    free(s->type);
    node *n = s->options->front;
    while (n) {
        kvp *pair = (kvp *)n->val;
        free(pair->key);
        free(pair);
        node *next = n->next;
        free(n);
        n = next;
    }
    free(s->options);
    free(s);
}

static void unlink_node(list *l, node *n)
{
    if (n->prev) n->prev->next = n->next;
    else l->front = n->next;
    if (n->next) n->next->prev = n->prev;
    else l->back = n->prev;
    --l->size;
    free(n);
}

static int take_sections(hpsgd_options *o, const char *cfgfile, struct list *sections, char *err, size_t errlen)
{
    hpsgd_section_scan scan = {.cfgfile = cfgfile};
    for (node *n = sections->front, *next; n; n = next) {
        next = n->next;
        darknet_section *s = (darknet_section *)n->val;
        if (hpsgd_options_scan_section(&scan, s->type, err, errlen) > 0) {
            free_darknet_section(s);
            unlink_node(sections, n);
        }
    }
    return hpsgd_options_scan_end(&scan, o, err, errlen);
}

#endif
