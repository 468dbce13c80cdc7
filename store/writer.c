/* writer.c — the writer thread: batches go in through a queue bounded by bytes and are written one
 * transaction each (store_batch_write), so compute waits on the disk only when the queue is full.
 *
 * Errors: the first failed batch is rolled back and logged (once, by store_batch_write); the status
 * is kept and returned by every later submit and by finish, and every batch after it is freed
 * unwritten, so nothing after a failure is committed out of order.
 * Bound: a batch counts against queue_bytes from submit until it is committed (including while it is
 * written); one batch larger than the whole bound is still accepted when the queue is empty.
 */
#include "store_internal.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct store_writer {
    store_db *db;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t changed;          /* queue grew, shrank, or stop was asked: one cond, few waiters */
    store_batch *head, *tail;        /* FIFO through batch->next */
    size_t queued, cap;              /* bytes held (queued + being written), bound */
    bool stop, busy;
    hs_status err;                   /* first error; later batches are discarded */
    atomic_uint_least64_t written;
};

static void *writer_main(void *arg) {
    store_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stop) pthread_cond_wait(&w->changed, &w->mu);
        if (!w->head) break;   /* stop asked and nothing left */
        store_batch *b = w->head;
        w->head = b->next;
        if (!w->head) w->tail = NULL;
        hs_status prior = w->err;
        w->busy = true;
        pthread_mutex_unlock(&w->mu);

        hs_status st = prior ? prior : store_batch_write(w->db, b);
        if (!prior && !st) atomic_fetch_add(&w->written, (uint64_t)b->payload_bytes);
        size_t bytes = store_batch_bytes(b);
        store_batch_free(b);

        pthread_mutex_lock(&w->mu);
        if (st && !w->err) w->err = st;
        w->queued -= bytes;
        w->busy = false;
        pthread_cond_broadcast(&w->changed);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

hs_status store_writer_start(store_db *db, size_t queue_bytes, store_writer **out) {
    *out = NULL;
    if (db->readonly) {
        hs_log_error("store", "cannot capture into a database opened read-only (%s) — open it with readonly=false",
                     db->path);
        return HS_EBADINPUT;
    }
    store_writer *w = hs_xcalloc(1, sizeof *w);
    w->db = db;
    w->cap = queue_bytes;
    atomic_init(&w->written, 0);
    HS_ASSERT(pthread_mutex_init(&w->mu, NULL) == 0 && pthread_cond_init(&w->changed, NULL) == 0);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        hs_log_error("store", "cannot start the writer thread (%s) — the system is out of threads or memory", db->path);
        pthread_cond_destroy(&w->changed);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return HS_EIO;
    }
    *out = w;
    return HS_OK;
}

hs_status store_writer_submit(store_writer *w, store_batch *b) {
    size_t bytes = store_batch_bytes(b);
    pthread_mutex_lock(&w->mu);
    while (!w->err && w->queued > 0 && w->queued + bytes > w->cap) pthread_cond_wait(&w->changed, &w->mu);
    hs_status err = w->err;
    if (!err) {
        b->next = NULL;
        if (w->tail) w->tail->next = b; else w->head = b;
        w->tail = b;
        w->queued += bytes;
        pthread_cond_broadcast(&w->changed);
    }
    pthread_mutex_unlock(&w->mu);
    if (err) store_batch_free(b);   /* discarded: an earlier batch failed, nothing after it is written */
    return err;
}

hs_status store_writer_flush(store_writer *w) {
    pthread_mutex_lock(&w->mu);
    while (w->head || w->busy) pthread_cond_wait(&w->changed, &w->mu);
    hs_status err = w->err;
    pthread_mutex_unlock(&w->mu);
    return err;
}

hs_status store_writer_finish(store_writer *w) {
    if (!w) return HS_OK;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    hs_status err = w->err;
    pthread_cond_destroy(&w->changed);
    pthread_mutex_destroy(&w->mu);
    free(w);
    return err;
}

uint64_t store_writer_bytes_written(store_writer *w) {
    return atomic_load(&w->written);
}
