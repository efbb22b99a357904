#ifndef TOLLGATE_PACK_H
#define TOLLGATE_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "quickjs.h"

/* A growable byte buffer in linear memory that the host reads directly. */
typedef struct {
    uint8_t *data;
    uint32_t len;
    uint32_t cap;
    uint32_t limit; /* tg_pack refuses to grow past this */
} tg_buf_t;

enum { TG_PACK_OK = 0, TG_PACK_EXCEPTION = -1, TG_PACK_TOO_BIG = -2, TG_PACK_NO_MEMORY = -3 };

/* Once per engine build: learn the class ids of boxed primitives. */
void tg_pack_init(JSContext *ctx);

/* Append `v` to `b` as msgpack, converting it the way JSON.stringify would
 * (toJSON, undefined and functions dropped from objects and null in arrays,
 * NaN and infinities as null; a BigInt or a cycle throws a TypeError). */
int tg_pack(JSContext *ctx, tg_buf_t *b, JSValueConst v);

/* Append `v` to `b` as JSON text, as JSON.stringify(v) writes it. */
int tg_json(JSContext *ctx, tg_buf_t *b, JSValueConst v);

/* Append raw msgpack pieces. */
int tg_pack_array_header(tg_buf_t *b, uint32_t n);
int tg_pack_str(tg_buf_t *b, const char *s, size_t n);

#endif
