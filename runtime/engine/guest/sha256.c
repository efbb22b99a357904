#include "sha256.h"

#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t rotr(uint32_t x, unsigned n) { return (x >> n) | (x << (32 - n)); }

/* One round, with the eight working variables renamed instead of shifted
 * along (eight rounds per loop turn): the guest runs about a quarter fewer
 * instructions per block than with the textbook loop. */
#define SHA_ROUND(a, b, c, d, e, f, g, h, i)                                                       \
    do {                                                                                           \
        uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + (g ^ (e & (f ^ g))) + K[i] + w[i]; \
        uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) | (c & (a | b)));        \
        d += t1;                                                                                   \
        h = t1 + t2;                                                                               \
    } while (0)

static void compress(uint32_t s[8], const uint8_t p[SHA256_BLOCK_BYTES])
{
    uint32_t w[64];
#pragma clang loop unroll(full)
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
#pragma clang loop unroll(full)
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
#pragma clang loop unroll(full)
    for (int i = 0; i < 64; i += 8) {
        SHA_ROUND(a, b, c, d, e, f, g, h, i);
        SHA_ROUND(h, a, b, c, d, e, f, g, i + 1);
        SHA_ROUND(g, h, a, b, c, d, e, f, i + 2);
        SHA_ROUND(f, g, h, a, b, c, d, e, i + 3);
        SHA_ROUND(e, f, g, h, a, b, c, d, i + 4);
        SHA_ROUND(d, e, f, g, h, a, b, c, i + 5);
        SHA_ROUND(c, d, e, f, g, h, a, b, i + 6);
        SHA_ROUND(b, c, d, e, f, g, h, a, i + 7);
    }
    s[0] += a; s[1] += b; s[2] += c; s[3] += d; s[4] += e; s[5] += f; s[6] += g; s[7] += h;
}

void sha256_init(sha256_ctx *c)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->state, iv, sizeof(iv));
    c->length_bytes = 0;
    c->block_used = 0;
}

void sha256_update(sha256_ctx *c, const uint8_t *data, size_t len)
{
    c->length_bytes += len;
    if (c->block_used) {
        size_t take = SHA256_BLOCK_BYTES - c->block_used;
        if (take > len)
            take = len;
        memcpy(c->block + c->block_used, data, take);
        c->block_used += take;
        data += take;
        len -= take;
        if (c->block_used < SHA256_BLOCK_BYTES)
            return;
        compress(c->state, c->block);
        c->block_used = 0;
    }
    for (; len >= SHA256_BLOCK_BYTES; data += SHA256_BLOCK_BYTES, len -= SHA256_BLOCK_BYTES)
        compress(c->state, data);
    memcpy(c->block, data, len);
    c->block_used = len;
}

void sha256_final(sha256_ctx *c, uint8_t out[SHA256_DIGEST_BYTES])
{
    uint64_t bits = c->length_bytes * 8;
    c->block[c->block_used++] = 0x80;
    if (c->block_used > SHA256_BLOCK_BYTES - 8) {
        memset(c->block + c->block_used, 0, SHA256_BLOCK_BYTES - c->block_used);
        compress(c->state, c->block);
        c->block_used = 0;
    }
    memset(c->block + c->block_used, 0, SHA256_BLOCK_BYTES - 8 - c->block_used);
    for (int i = 0; i < 8; i++)
        c->block[SHA256_BLOCK_BYTES - 8 + i] = (uint8_t)(bits >> (56 - 8 * i));
    compress(c->state, c->block);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->state[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->state[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->state[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->state[i];
    }
}

void hmac_sha256(const uint8_t *key, size_t key_len,
                 const uint8_t *data, size_t data_len,
                 uint8_t out[SHA256_DIGEST_BYTES])
{
    uint8_t k[SHA256_BLOCK_BYTES] = {0};
    uint8_t pad[SHA256_BLOCK_BYTES];
    uint8_t inner[SHA256_DIGEST_BYTES];
    sha256_ctx c;

    if (key_len > SHA256_BLOCK_BYTES) {
        sha256_init(&c);
        sha256_update(&c, key, key_len);
        sha256_final(&c, k);
    } else {
        memcpy(k, key, key_len);
    }
    for (int i = 0; i < SHA256_BLOCK_BYTES; i++)
        pad[i] = k[i] ^ 0x36;
    sha256_init(&c);
    sha256_update(&c, pad, SHA256_BLOCK_BYTES);
    sha256_update(&c, data, data_len);
    sha256_final(&c, inner);
    for (int i = 0; i < SHA256_BLOCK_BYTES; i++)
        pad[i] = k[i] ^ 0x5c;
    sha256_init(&c);
    sha256_update(&c, pad, SHA256_BLOCK_BYTES);
    sha256_update(&c, inner, SHA256_DIGEST_BYTES);
    sha256_final(&c, out);
}
