#ifndef ETL_CSHA256_H
#define ETL_CSHA256_H

#include <stddef.h>
#include <stdint.h>

/// The first 8 bytes of SHA-256(`length` bytes at `data`), big-endian, into `prefix`, with the CPU's SHA instructions
/// (x86-64 SHA-NI). Returns 1, or 0 without touching `prefix` when this CPU has no such instructions (the caller then
/// hashes another way). For hashing millions of short messages (a split per row): one call, nothing allocated.
int etl_sha256_prefix(const void *data, size_t length, uint64_t *prefix);

#endif
