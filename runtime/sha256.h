/* sha256.h — SHA-256 (FIPS 180-4), to fingerprint checkpoints in the run store.
 * Own implementation because the project takes no crypto dependency for one hash. */
#ifndef HS_SHA256_H
#define HS_SHA256_H
#include <stddef.h>
#include <stdint.h>
#include "common.h"

typedef struct { uint32_t h[8]; uint64_t len; uint8_t buf[64]; size_t n; } rt_sha256;
void rt_sha256_init(rt_sha256 *s);
void rt_sha256_update(rt_sha256 *s, const void *data, size_t len);
void rt_sha256_final(rt_sha256 *s, uint8_t out[32]);
/* Hex digest (65 bytes incl. NUL) of the files in paths (hashed in order, as one stream).
 * HS_EIO (one line) when a file cannot be read. */
hs_status rt_sha256_files(const char *const *paths, int n, char hex[65]);
#endif
