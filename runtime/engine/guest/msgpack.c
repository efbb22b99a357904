/* msgpack -> JS values, for the request the host sends with every call.
 *
 * Decoding straight into QuickJS values costs a fraction of JSON.parse on
 * the same data (no tokenizer, no intermediate string). The host packs the
 * request with msgpack-python; this decoder accepts what JSON can carry
 * (nil, booleans, integers, floats, strings, arrays, maps with string keys)
 * and refuses anything else, including nesting deeper than MAX_DEPTH.
 */
#include "msgpack.h"

#include <string.h>

#define MAX_DEPTH 512

typedef struct {
    JSContext *ctx;
    const uint8_t *p;
    const uint8_t *end;
    const char *error;
} reader_t;

static int need(reader_t *r, size_t n)
{
    if ((size_t)(r->end - r->p) < n) {
        r->error = "truncated data";
        return -1;
    }
    return 0;
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static JSValue decode(reader_t *r, int depth);

static JSValue decode_string(reader_t *r, size_t n)
{
    if (need(r, n))
        return JS_EXCEPTION;
    JSValue s = JS_NewStringLen(r->ctx, (const char *)r->p, n);
    r->p += n;
    return s;
}

static JSValue decode_array(reader_t *r, size_t n, int depth)
{
    if ((size_t)(r->end - r->p) < n) { /* each element takes at least a byte */
        r->error = "truncated data";
        return JS_EXCEPTION;
    }
    JSValue arr = JS_NewArray(r->ctx);
    if (JS_IsException(arr))
        return arr;
    for (size_t i = 0; i < n; i++) {
        JSValue v = decode(r, depth + 1);
        if (JS_IsException(v) || JS_SetPropertyUint32(r->ctx, arr, (uint32_t)i, v) < 0) {
            JS_FreeValue(r->ctx, arr);
            return JS_EXCEPTION;
        }
    }
    return arr;
}

static int key_length(reader_t *r, size_t *len)
{
    if (need(r, 1))
        return -1;
    uint8_t t = *r->p++;
    int width = 0;
    if ((t & 0xe0) == 0xa0) {
        *len = t & 0x1f;
        return 0;
    }
    if (t == 0xd9) width = 1;
    else if (t == 0xda) width = 2;
    else if (t == 0xdb) width = 4;
    else {
        r->error = "map keys must be strings";
        return -1;
    }
    if (need(r, (size_t)width))
        return -1;
    *len = (size_t)be(r->p, width);
    r->p += width;
    return 0;
}

static JSValue decode_map(reader_t *r, size_t n, int depth)
{
    if ((size_t)(r->end - r->p) < 2 * n) {
        r->error = "truncated data";
        return JS_EXCEPTION;
    }
    JSValue obj = JS_NewObject(r->ctx);
    if (JS_IsException(obj))
        return obj;
    for (size_t i = 0; i < n; i++) {
        size_t klen;
        if (key_length(r, &klen) || need(r, klen))
            goto fail;
        JSAtom key = JS_NewAtomLen(r->ctx, (const char *)r->p, klen);
        r->p += klen;
        if (key == JS_ATOM_NULL)
            goto fail;
        JSValue v = decode(r, depth + 1);
        if (JS_IsException(v)) {
            JS_FreeAtom(r->ctx, key);
            goto fail;
        }
        int ok = JS_DefinePropertyValue(r->ctx, obj, key, v, JS_PROP_C_W_E);
        JS_FreeAtom(r->ctx, key);
        if (ok < 0)
            goto fail;
    }
    return obj;
fail:
    JS_FreeValue(r->ctx, obj);
    return JS_EXCEPTION;
}

static JSValue decode(reader_t *r, int depth)
{
    if (depth > MAX_DEPTH) {
        r->error = "nested too deeply";
        return JS_EXCEPTION;
    }
    if (need(r, 1))
        return JS_EXCEPTION;
    uint8_t t = *r->p++;
    if (t <= 0x7f)
        return JS_NewInt32(r->ctx, t);
    if (t >= 0xe0)
        return JS_NewInt32(r->ctx, (int8_t)t);
    if ((t & 0xf0) == 0x80)
        return decode_map(r, t & 0x0f, depth);
    if ((t & 0xf0) == 0x90)
        return decode_array(r, t & 0x0f, depth);
    if ((t & 0xe0) == 0xa0)
        return decode_string(r, t & 0x1f);

    int width;
    switch (t) {
    case 0xc0: return JS_NULL;
    case 0xc2: return JS_FALSE;
    case 0xc3: return JS_TRUE;
    case 0xca: {
        if (need(r, 4)) return JS_EXCEPTION;
        uint32_t bits = (uint32_t)be(r->p, 4);
        float f;
        memcpy(&f, &bits, 4);
        r->p += 4;
        return JS_NewFloat64(r->ctx, f);
    }
    case 0xcb: {
        if (need(r, 8)) return JS_EXCEPTION;
        uint64_t bits = be(r->p, 8);
        double d;
        memcpy(&d, &bits, 8);
        r->p += 8;
        return JS_NewFloat64(r->ctx, d);
    }
    case 0xcc: case 0xcd: case 0xce: case 0xcf: {
        width = 1 << (t - 0xcc);
        if (need(r, (size_t)width)) return JS_EXCEPTION;
        uint64_t v = be(r->p, width);
        r->p += width;
        return v <= INT64_MAX ? JS_NewInt64(r->ctx, (int64_t)v) : JS_NewFloat64(r->ctx, (double)v);
    }
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        width = 1 << (t - 0xd0);
        if (need(r, (size_t)width)) return JS_EXCEPTION;
        uint64_t v = be(r->p, width);
        r->p += width;
        int shift = 64 - 8 * width;
        return JS_NewInt64(r->ctx, (int64_t)(v << shift) >> shift);
    }
    case 0xd9: case 0xda: case 0xdb: {
        width = t == 0xd9 ? 1 : t == 0xda ? 2 : 4;
        if (need(r, (size_t)width)) return JS_EXCEPTION;
        size_t n = (size_t)be(r->p, width);
        r->p += width;
        return decode_string(r, n);
    }
    case 0xdc: case 0xdd: {
        width = t == 0xdc ? 2 : 4;
        if (need(r, (size_t)width)) return JS_EXCEPTION;
        size_t n = (size_t)be(r->p, width);
        r->p += width;
        return decode_array(r, n, depth);
    }
    case 0xde: case 0xdf: {
        width = t == 0xde ? 2 : 4;
        if (need(r, (size_t)width)) return JS_EXCEPTION;
        size_t n = (size_t)be(r->p, width);
        r->p += width;
        return decode_map(r, n, depth);
    }
    default:
        r->error = "unsupported type (binary, extension or reserved)";
        return JS_EXCEPTION;
    }
}

JSValue tg_msgpack_decode(JSContext *ctx, const uint8_t *data, size_t len, const char **error)
{
    reader_t r = {ctx, data, data + len, NULL};
    JSValue v = decode(&r, 0);
    if (!JS_IsException(v) && r.p != r.end) {
        JS_FreeValue(ctx, v);
        r.error = "trailing bytes";
        v = JS_EXCEPTION;
    }
    *error = r.error;
    return v;
}
