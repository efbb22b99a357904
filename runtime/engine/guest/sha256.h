/* SHA-256 and HMAC-SHA256 (FIPS 180-4, RFC 2104) for the guest.
 *
 * Token signing (api.redirect.encodeToken) runs inside the sandbox so that it
 * needs no crossing to the host; the tests check its output against PyJWT.
 */
#ifndef TOLLGATE_SHA256_H
#define TOLLGATE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_BYTES 32
#define SHA256_BLOCK_BYTES 64

typedef struct {
    uint32_t state[8];
    uint64_t length_bytes;
    uint8_t block[SHA256_BLOCK_BYTES];
    size_t block_used;
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const uint8_t *data, size_t len);
void sha256_final(sha256_ctx *c, uint8_t out[SHA256_DIGEST_BYTES]);

void hmac_sha256(const uint8_t *key, size_t key_len,
                 const uint8_t *data, size_t data_len,
                 uint8_t out[SHA256_DIGEST_BYTES]);

#endif
