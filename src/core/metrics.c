/* SPDX-License-Identifier: MIT */
/*
 * The metrics store in shared memory; see metrics.h.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/metrics.h"


#define METRICS_READ_TRIES 64 /* a reader racing folds gives up after */


/* One worker's values; written by that worker only. */
struct metrics_slot {
    int32_t pid; /* 0: free */
    uint32_t pad;
    struct metrics_note note;
    uint64_t v[METRICS_MAX_VALUES];
};

struct metrics_store {
    uint64_t seq;                     /* odd while the master folds a slot */
    uint32_t nseries;                 /* published after the entry is written */
    uint32_t nvalues;                 /* values handed out */
    uint32_t nroutes;                 /* route series registered */
    uint32_t other[METRICS_NGROUPS];  /* each group's `other` series */
    uint8_t kind[METRICS_MAX_VALUES]; /* enum metrics_type of each value */
    struct metrics_entry series[METRICS_MAX_SERIES];
    uint64_t retired[METRICS_MAX_VALUES]; /* dead workers', and the master's */
    struct metrics_slot slots[METRICS_MAX_SLOTS];
};


static void metrics_init_table(void);
static uint32_t metrics_register(enum metrics_group g, const char *l0,
                                 const char *l1);
static uint64_t *metrics_value(uint32_t id, enum metrics_family f, size_t idx);
static uint64_t metrics_load(const uint64_t *p);
static void metrics_store_u64(uint64_t *p, uint64_t v);
static void metrics_note_copy(struct metrics_note *dst,
                              const struct metrics_note *src);


static struct metrics_family_info metrics_table[METRICS_NFAMILIES] = {
#define METRICS_INFO(id, g, t, n, u, l, v, h)                                  \
    {n, u, h, METRICS_G_##g, METRICS_##t, l, v, 0, 0, 0},
    METRICS_FAMILIES(METRICS_INFO)
#undef METRICS_INFO
};

static const char *const metrics_group_labels[METRICS_NGROUPS][2] = {
    [METRICS_G_GLOBAL] = {NULL, NULL},
    [METRICS_G_LISTEN] = {"listen", NULL},
    [METRICS_G_SERVER] = {"upstream", "server"},
    [METRICS_G_ROUTE] = {"source", "route"},
    [METRICS_G_WORKER] = {"worker", "pid"},
    [METRICS_G_MASTER] = {NULL, NULL},
};

static const int64_t metrics_bounds[] = {METRICS_BUCKETS_MS};

static uint32_t metrics_group_width[METRICS_NGROUPS];
static bool metrics_table_ready;
static struct metrics_store *metrics_shm;
static uint64_t *metrics_mine; /* this worker's slot values, or NULL */
static struct metrics_note *metrics_my_note;
static uint32_t metrics_worker_series;
static uint32_t metrics_master_series;


/* Fills each family's width and offset in its group. */
static void
metrics_init_table(void)
{
    _Static_assert(sizeof(metrics_bounds) / sizeof(metrics_bounds[0]) ==
                       METRICS_NBUCKETS - 1,
                   "METRICS_NBUCKETS matches METRICS_BUCKETS_MS");
    if (metrics_table_ready) {
        return;
    }
    for (size_t i = 0; i < METRICS_NFAMILIES; i++) {
        struct metrics_family_info *fi = &metrics_table[i];
        uint32_t n = 0;

        while (fi->label_values != NULL && fi->label_values[n] != NULL) {
            n++;
        }
        fi->nlabel_values = n > 0 ? n : 1;
        switch (fi->type) {
        case METRICS_HISTOGRAM:
            fi->width = METRICS_NBUCKETS + 1;
            break;
        case METRICS_STATE:
            fi->width = 0;
            break;
        default:
            fi->width = fi->nlabel_values;
            break;
        }
        fi->offset = metrics_group_width[fi->group];
        metrics_group_width[fi->group] += fi->width;
    }
    metrics_table_ready = true;
}


const struct metrics_family_info *
metrics_family(enum metrics_family f)
{
    metrics_init_table();
    return &metrics_table[f];
}


const char *
metrics_group_label(enum metrics_group g, size_t i)
{
    return i < 2 ? metrics_group_labels[g][i] : NULL;
}


int64_t
metrics_bucket_ms(size_t i)
{
    return i < METRICS_NBUCKETS - 1 ? metrics_bounds[i] : -1;
}


int
metrics_open(void)
{
    struct metrics_store *st;

    if (metrics_shm != NULL) {
        return 0;
    }
    metrics_init_table();
    st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (st == MAP_FAILED) {
        return -1;
    }
    metrics_shm = st;
    /* Fixed ids: the global series is 0 (METRICS_GLOBAL). */
    metrics_register(METRICS_G_GLOBAL, NULL, NULL);
    metrics_worker_series = metrics_register(METRICS_G_WORKER, NULL, NULL);
    metrics_master_series = metrics_register(METRICS_G_MASTER, NULL, NULL);
    for (int g = METRICS_G_LISTEN; g <= METRICS_G_ROUTE; g++) {
        st->other[g] = metrics_register((enum metrics_group)g, "other",
                                        g == METRICS_G_LISTEN ? NULL : "other");
    }
    return 0;
}


bool
metrics_is_open(void)
{
    return metrics_shm != NULL;
}


/* Adds a series; METRICS_NO_SERIES when the registry is full. */
static uint32_t
metrics_register(enum metrics_group g, const char *l0, const char *l1)
{
    struct metrics_store *const st = metrics_shm;
    const uint32_t id = st->nseries;
    const uint32_t width = metrics_group_width[g];
    struct metrics_entry *e;

    if (id >= METRICS_MAX_SERIES || st->nvalues + width > METRICS_MAX_VALUES) {
        return METRICS_NO_SERIES;
    }
    e = &st->series[id];
    e->group = (uint32_t)g;
    e->base = st->nvalues;
    snprintf(e->label[0], sizeof(e->label[0]), "%s", l0 != NULL ? l0 : "");
    snprintf(e->label[1], sizeof(e->label[1]), "%s", l1 != NULL ? l1 : "");
    for (size_t i = 0; i < METRICS_NFAMILIES; i++) {
        const struct metrics_family_info *fi = &metrics_table[i];

        if (fi->group == g) {
            memset(&st->kind[e->base + fi->offset], fi->type, fi->width);
        }
    }
    st->nvalues += width;
    if (g == METRICS_G_ROUTE) {
        st->nroutes++;
    }
    /* Readers in workers see the entry whole before they see its id. */
    __atomic_store_n(&st->nseries, id + 1, __ATOMIC_RELEASE);
    return id;
}


uint32_t
metrics_series(enum metrics_group g, const char *l0, const char *l1)
{
    struct metrics_store *const st = metrics_shm;
    char a[METRICS_LABEL_MAX];
    char b[METRICS_LABEL_MAX];
    uint32_t id;

    if (st == NULL) {
        return METRICS_NO_SERIES;
    }
    /* Compared as stored: cut to the same length. */
    snprintf(a, sizeof(a), "%s", l0 != NULL ? l0 : "");
    snprintf(b, sizeof(b), "%s", l1 != NULL ? l1 : "");
    for (uint32_t i = 0; i < st->nseries; i++) {
        const struct metrics_entry *e = &st->series[i];

        if (e->group == (uint32_t)g && strcmp(e->label[0], a) == 0 &&
            strcmp(e->label[1], b) == 0) {
            return i;
        }
    }
    id = METRICS_NO_SERIES;
    if (g != METRICS_G_ROUTE || st->nroutes < METRICS_MAX_ROUTES + 1) {
        id = metrics_register(g, a, b);
    }
    if (id == METRICS_NO_SERIES) {
        metrics_master_add(METRIC_SERIES_OVERFLOW, 0, 1);
        return st->other[g];
    }
    return id;
}


bool
metrics_is_other(uint32_t id)
{
    if (metrics_shm == NULL || id == METRICS_NO_SERIES) {
        return false;
    }
    for (size_t g = METRICS_G_LISTEN; g <= METRICS_G_ROUTE; g++) {
        if (metrics_shm->other[g] == id) {
            return true;
        }
    }
    return false;
}


void
metrics_bind(unsigned slot, int pid)
{
    if (metrics_shm == NULL || slot >= METRICS_MAX_SLOTS) {
        metrics_mine = NULL;
        metrics_my_note = NULL;
        return;
    }
    metrics_mine = metrics_shm->slots[slot].v;
    metrics_my_note = &metrics_shm->slots[slot].note;
    __atomic_store_n(&metrics_shm->slots[slot].pid, pid, __ATOMIC_RELEASE);
}


void
metrics_fold(unsigned slot)
{
    struct metrics_store *const st = metrics_shm;
    struct metrics_slot *sl;
    uint32_t n;

    if (st == NULL || slot >= METRICS_MAX_SLOTS) {
        return;
    }
    sl = &st->slots[slot];
    n = st->nvalues;
    __atomic_add_fetch(&st->seq, 1, __ATOMIC_ACQ_REL);
    for (uint32_t i = 0; i < n; i++) {
        const uint64_t v = metrics_load(&sl->v[i]);

        switch (st->kind[i]) {
        case METRICS_COUNTER:
        case METRICS_HISTOGRAM:
            metrics_store_u64(&st->retired[i], st->retired[i] + v);
            break;
        case METRICS_LATEST:
            if (v > st->retired[i]) {
                metrics_store_u64(&st->retired[i], v);
            }
            break;
        default:
            break; /* a dead worker's gauges are gone with it */
        }
        metrics_store_u64(&sl->v[i], 0);
    }
    memset(&sl->note, 0, sizeof(sl->note));
    __atomic_store_n(&sl->pid, 0, __ATOMIC_RELEASE);
    __atomic_add_fetch(&st->seq, 1, __ATOMIC_ACQ_REL);
}


/* This worker's value idx of f in series id, or NULL when not counted. */
static uint64_t *
metrics_value(uint32_t id, enum metrics_family f, size_t idx)
{
    const struct metrics_family_info *fi = &metrics_table[f];

    if (metrics_mine == NULL || id >= metrics_shm->nseries ||
        metrics_shm->series[id].group != (uint32_t)fi->group ||
        idx >= fi->width) {
        return NULL;
    }
    return &metrics_mine[metrics_shm->series[id].base + fi->offset + idx];
}


static uint64_t
metrics_load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}


/* A plain store readers cannot see torn: one writer per value. */
static void
metrics_store_u64(uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}


void
metrics_add(uint32_t id, enum metrics_family f, size_t idx, uint64_t n)
{
    uint64_t *const p = metrics_value(id, f, idx);

    if (p != NULL) {
        metrics_store_u64(p, *p + n);
    }
}


void
metrics_gauge(uint32_t id, enum metrics_family f, int64_t delta)
{
    uint64_t *const p = metrics_value(id, f, 0);

    if (p != NULL) {
        metrics_store_u64(p, *p + (uint64_t)delta);
    }
}


void
metrics_set(enum metrics_family f, uint64_t v)
{
    uint64_t *const p = metrics_value(metrics_worker_series, f, 0);

    if (p != NULL) {
        metrics_store_u64(p, v);
    }
}


void
metrics_observe(uint32_t id, enum metrics_family f, int64_t ms)
{
    size_t b = 0;

    if (ms < 0) {
        ms = 0;
    }
    while (b < METRICS_NBUCKETS - 1 && ms > metrics_bounds[b]) {
        b++;
    }
    metrics_add(id, f, b, 1);
    metrics_add(id, f, METRICS_NBUCKETS, (uint64_t)ms);
}


void
metrics_latest(uint32_t id, enum metrics_family f, uint64_t v)
{
    uint64_t *const p = metrics_value(id, f, 0);

    if (p != NULL && v > *p) {
        metrics_store_u64(p, v);
    }
}


void
metrics_note(int64_t wall_ms, const char *text)
{
    struct metrics_note *const n = metrics_my_note;

    if (n == NULL) {
        return;
    }
    __atomic_store_n(&n->seq, n->seq + 1, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    n->wall_ms = wall_ms;
    snprintf(n->text, sizeof(n->text), "%s", text);
    __atomic_store_n(&n->seq, n->seq + 1, __ATOMIC_RELEASE);
}


void
metrics_master_add(enum metrics_family f, size_t idx, uint64_t n)
{
    const struct metrics_family_info *fi = &metrics_table[f];
    uint64_t *p;

    if (metrics_shm == NULL || fi->group != METRICS_G_MASTER ||
        idx >= fi->width) {
        return;
    }
    p = &metrics_shm->retired[metrics_shm->series[metrics_master_series].base +
                              fi->offset + idx];
    metrics_store_u64(p, *p + n);
}


void
metrics_master_set(enum metrics_family f, uint64_t v)
{
    const struct metrics_family_info *fi = &metrics_table[f];

    if (metrics_shm == NULL || fi->group != METRICS_G_MASTER) {
        return;
    }
    metrics_store_u64(
        &metrics_shm->retired[metrics_shm->series[metrics_master_series].base +
                              fi->offset],
        v);
}


int
metrics_snapshot(struct metrics_snapshot *snap)
{
    struct metrics_store *const st = metrics_shm;
    const struct metrics_family_info *ws =
        &metrics_table[METRIC_WORKER_SESSIONS];
    const struct metrics_family_info *wf = &metrics_table[METRIC_WORKER_FDS];

    memset(snap, 0, sizeof(*snap));
    if (st == NULL) {
        errno = ENOENT;
        return -1;
    }
    snap->values = calloc(METRICS_MAX_VALUES, sizeof(uint64_t));
    snap->slot_worker = calloc(METRICS_MAX_SLOTS, sizeof(*snap->slot_worker));
    snap->notes = calloc(METRICS_MAX_SLOTS, sizeof(*snap->notes));
    if (snap->values == NULL || snap->slot_worker == NULL ||
        snap->notes == NULL) {
        metrics_snapshot_free(snap);
        errno = ENOMEM;
        return -1;
    }
    /* Bounded: a fold takes microseconds; past the bound, take what is. */
    for (int tries = 0; tries < METRICS_READ_TRIES; tries++) {
        const uint64_t seq = __atomic_load_n(&st->seq, __ATOMIC_ACQUIRE);
        const uint32_t nseries =
            __atomic_load_n(&st->nseries, __ATOMIC_ACQUIRE);
        const uint32_t wbase = st->series[metrics_worker_series].base;
        uint32_t nvalues = 0;

        if (seq & 1) {
            continue;
        }
        for (uint32_t i = 0; i < nseries; i++) {
            const uint32_t end =
                st->series[i].base + metrics_group_width[st->series[i].group];
            nvalues = end > nvalues ? end : nvalues;
        }
        snap->nseries = nseries;
        snap->nslots = 0;
        for (uint32_t i = 0; i < nvalues; i++) {
            snap->values[i] = metrics_load(&st->retired[i]);
        }
        for (unsigned k = 0; k < METRICS_MAX_SLOTS; k++) {
            const struct metrics_slot *sl = &st->slots[k];
            const int32_t pid = __atomic_load_n(&sl->pid, __ATOMIC_ACQUIRE);

            if (pid == 0) {
                continue;
            }
            for (uint32_t i = 0; i < nvalues; i++) {
                const uint64_t v = metrics_load(&sl->v[i]);

                if (st->kind[i] == METRICS_LATEST) {
                    snap->values[i] = v > snap->values[i] ? v : snap->values[i];
                } else {
                    snap->values[i] += v;
                }
            }
            snap->slot_pid[snap->nslots] = pid;
            snap->slot_index[snap->nslots] = k;
            snap->slot_worker[snap->nslots][0] =
                metrics_load(&sl->v[wbase + ws->offset]);
            snap->slot_worker[snap->nslots][1] =
                metrics_load(&sl->v[wbase + wf->offset]);
            metrics_note_copy(&snap->notes[snap->nslots], &sl->note);
            snap->nslots++;
        }
        if (__atomic_load_n(&st->seq, __ATOMIC_ACQUIRE) == seq) {
            break;
        }
    }
    return 0;
}


/* Copies a note its worker may be writing; an unsettled one is left out. */
static void
metrics_note_copy(struct metrics_note *dst, const struct metrics_note *src)
{
    for (int tries = 0; tries < METRICS_READ_TRIES; tries++) {
        const uint64_t seq = __atomic_load_n(&src->seq, __ATOMIC_ACQUIRE);

        if (seq & 1) {
            continue;
        }
        dst->wall_ms = src->wall_ms;
        memcpy(dst->text, src->text, sizeof(dst->text));
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&src->seq, __ATOMIC_ACQUIRE) == seq) {
            dst->text[sizeof(dst->text) - 1] = '\0';
            return;
        }
    }
    dst->wall_ms = 0;
    dst->text[0] = '\0';
}


void
metrics_snapshot_free(struct metrics_snapshot *snap)
{
    free(snap->values);
    snap->values = NULL;
    free(snap->slot_worker);
    snap->slot_worker = NULL;
    free(snap->notes);
    snap->notes = NULL;
}


const struct metrics_entry *
metrics_entry(uint32_t id)
{
    return &metrics_shm->series[id];
}


uint64_t
metrics_get(const struct metrics_snapshot *snap, uint32_t id,
            enum metrics_family f, size_t idx)
{
    const struct metrics_family_info *fi = &metrics_table[f];

    if (snap->values == NULL || id >= snap->nseries ||
        metrics_shm->series[id].group != (uint32_t)fi->group ||
        idx >= fi->width) {
        return 0;
    }
    return snap->values[metrics_shm->series[id].base + fi->offset + idx];
}
