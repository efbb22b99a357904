/* msgpack -> JS values, for the request the host sends with every call.
 *
 * Decoding straight into QuickJS values costs a fraction of JSON.parse on
 * the same data (no tokenizer, no intermediate string). The host packs the
 * request with msgpack-python; this decoder accepts what JSON can carry
 * (nil, booleans, integers, floats, strings, arrays, maps with string keys)
 * and refuses anything else, including nesting deeper than MAX_DEPTH.
 *
 * Lazily: an action reads a few fields of a large event (the user's id, a
 * secret, the request's host). Maps and arrays at the depths given to
 * tg_msgpack_decode_lazy become accessor properties that decode their value
 * on first access and then turn into plain data properties, in place (key
 * order is kept; JSON.stringify and spreading see the same object). The
 * bytes stay valid for the whole execution: they are the call's input.
 */
#include "msgpack.h"

#include <string.h>

#define MAX_DEPTH 512

typedef struct {
    JSContext *ctx;
    const uint8_t *base; /* start of the whole input, for lazy offsets */
    const uint8_t *p;
    const uint8_t *end;
    const char *error;
    int lazy_from, lazy_to; /* depths whose maps and arrays are deferred */
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

/* Step over one value without building it. */
static int skip(reader_t *r, int depth)
{
    if (depth > MAX_DEPTH) {
        r->error = "nested too deeply";
        return -1;
    }
    if (need(r, 1))
        return -1;
    uint8_t t = *r->p++;
    size_t n = 0, items = 0;
    int width = 0;
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
        return 0;
    if ((t & 0xf0) == 0x80) {
        items = 2 * (size_t)(t & 0x0f);
    } else if ((t & 0xf0) == 0x90) {
        items = t & 0x0f;
    } else if ((t & 0xe0) == 0xa0) {
        n = t & 0x1f;
    } else {
        switch (t) {
        case 0xca: n = 4; break;
        case 0xcb: n = 8; break;
        case 0xcc: case 0xcd: case 0xce: case 0xcf: n = (size_t)1 << (t - 0xcc); break;
        case 0xd0: case 0xd1: case 0xd2: case 0xd3: n = (size_t)1 << (t - 0xd0); break;
        case 0xd9: case 0xda: case 0xdb:
            width = t == 0xd9 ? 1 : t == 0xda ? 2 : 4;
            if (need(r, (size_t)width)) return -1;
            n = (size_t)be(r->p, width);
            r->p += width;
            break;
        case 0xdc: case 0xdd: case 0xde: case 0xdf:
            width = (t == 0xdc || t == 0xde) ? 2 : 4;
            if (need(r, (size_t)width)) return -1;
            items = (size_t)be(r->p, width) * (t >= 0xde ? 2 : 1);
            r->p += width;
            break;
        default:
            r->error = "unsupported type (binary, extension or reserved)";
            return -1;
        }
    }
    if (need(r, n))
        return -1;
    r->p += n;
    for (size_t i = 0; i < items; i++)
        if (skip(r, depth + 1))
            return -1;
    return 0;
}

/* Function data of a lazy property: key, offset and length of the value's
 * bytes, its depth, the laziness range. */
enum { LAZY_KEY, LAZY_OFFSET, LAZY_LENGTH, LAZY_DEPTH, LAZY_FROM, LAZY_TO, LAZY_DATA_LEN };

static const uint8_t *lazy_base; /* the current call's input */

static JSValue lazy_settle(JSContext *ctx, JSValueConst obj, JSValueConst key, JSValue value)
{
    JSAtom atom = JS_ValueToAtom(ctx, key);
    if (atom == JS_ATOM_NULL) {
        JS_FreeValue(ctx, value);
        return JS_EXCEPTION;
    }
    int ok = JS_DefinePropertyValue(ctx, obj, atom, JS_DupValue(ctx, value), JS_PROP_C_W_E);
    JS_FreeAtom(ctx, atom);
    if (ok < 0) {
        JS_FreeValue(ctx, value);
        return JS_EXCEPTION;
    }
    return value;
}

static JSValue lazy_get(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv, int magic,
                        JSValueConst *data)
{
    (void)argc; (void)argv; (void)magic;
    int32_t offset, length, depth, from, to;
    JS_ToInt32(ctx, &offset, data[LAZY_OFFSET]);
    JS_ToInt32(ctx, &length, data[LAZY_LENGTH]);
    JS_ToInt32(ctx, &depth, data[LAZY_DEPTH]);
    JS_ToInt32(ctx, &from, data[LAZY_FROM]);
    JS_ToInt32(ctx, &to, data[LAZY_TO]);
    reader_t r = {ctx, lazy_base, lazy_base + offset, lazy_base + offset + length, NULL, from, to};
    JSValue v = decode(&r, depth);
    if (JS_IsException(v))
        return r.error ? JS_ThrowInternalError(ctx, "the event could not be read: %s", r.error) : v;
    if (!JS_IsObject(this_val))
        return v;
    return lazy_settle(ctx, this_val, data[LAZY_KEY], v);
}

static JSValue lazy_set(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv, int magic,
                        JSValueConst *data)
{
    (void)magic;
    if (!JS_IsObject(this_val))
        return JS_UNDEFINED;
    JSValue v = lazy_settle(ctx, this_val, data[LAZY_KEY], JS_DupValue(ctx, argc > 0 ? argv[0] : JS_UNDEFINED));
    if (JS_IsException(v))
        return v;
    JS_FreeValue(ctx, v);
    return JS_UNDEFINED;
}

static int is_container(uint8_t t)
{
    return ((t & 0xf0) == 0x80 && t != 0x80) || ((t & 0xf0) == 0x90 && t != 0x90) || (t >= 0xdc && t <= 0xdf);
}

/* A container encoded in at most this many bytes is decoded at once: that
 * costs less than the getter and setter a lazy property needs. */
#define LAZY_MIN_BYTES 64

/* Define `key` on `obj` as a lazy property for the value at r->p (skipped)
 * and return 1; or return 0, with r->p unchanged, for a value small enough
 * that the caller should decode it now; -1 on failure. */
static int define_lazy(reader_t *r, JSValueConst obj, JSAtom key, int depth)
{
    const uint8_t *start = r->p;
    if (skip(r, depth))
        return -1;
    if (r->p - start <= LAZY_MIN_BYTES) {
        r->p = start;
        return 0;
    }
    JSValue data[LAZY_DATA_LEN] = {
        JS_AtomToString(r->ctx, key),
        JS_NewInt32(r->ctx, (int32_t)(start - r->base)),
        JS_NewInt32(r->ctx, (int32_t)(r->p - start)),
        JS_NewInt32(r->ctx, depth),
        JS_NewInt32(r->ctx, r->lazy_from),
        JS_NewInt32(r->ctx, r->lazy_to),
    };
    JSValue getter = JS_NewCFunctionData(r->ctx, lazy_get, 0, 0, LAZY_DATA_LEN, data);
    JSValue setter = JS_NewCFunctionData(r->ctx, lazy_set, 1, 0, 1, data);
    JS_FreeValue(r->ctx, data[LAZY_KEY]);
    if (JS_IsException(getter) || JS_IsException(setter)) {
        JS_FreeValue(r->ctx, getter);
        JS_FreeValue(r->ctx, setter);
        return -1;
    }
    if (JS_DefinePropertyGetSet(r->ctx, obj, key, getter, setter, JS_PROP_CONFIGURABLE | JS_PROP_ENUMERABLE) < 0)
        return -1;
    return 1;
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
        if (depth + 1 >= r->lazy_from && depth + 1 <= r->lazy_to && r->p < r->end && is_container(*r->p)) {
            int deferred = define_lazy(r, obj, key, depth + 1);
            if (deferred != 0) {
                JS_FreeAtom(r->ctx, key);
                if (deferred < 0)
                    goto fail;
                continue;
            }
        }
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

JSValue tg_msgpack_decode_lazy(JSContext *ctx, const uint8_t *data, size_t len, int lazy_from, int lazy_to,
                               const char **error)
{
    reader_t r = {ctx, data, data, data + len, NULL, lazy_from, lazy_to};
    lazy_base = data;
    JSValue v = decode(&r, 0);
    if (!JS_IsException(v) && r.p != r.end) {
        JS_FreeValue(ctx, v);
        r.error = "trailing bytes";
        v = JS_EXCEPTION;
    }
    *error = r.error;
    return v;
}

JSValue tg_msgpack_decode(JSContext *ctx, const uint8_t *data, size_t len, const char **error)
{
    return tg_msgpack_decode_lazy(ctx, data, len, MAX_DEPTH + 1, MAX_DEPTH + 1, error);
}
