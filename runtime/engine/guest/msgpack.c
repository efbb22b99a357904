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

/* Lazy properties. A lazy property is an accessor whose getter and setter
 * are shared by every lazy property with the same key: made once per key,
 * those of the event's usual keys before the snapshot is taken
 * (tg_msgpack_prepare_keys), so that an execution makes none for them. Where
 * each lazy value's bytes are is kept in a table by object and key, which
 * every execution starts empty. */

typedef struct {
    JSAtom key; /* JS_ATOM_NULL: a free entry */
    JSValue get, set;
} lazy_pair_t;

#define LAZY_PAIRS 128 /* a power of two */
static lazy_pair_t lazy_pairs[LAZY_PAIRS];
static unsigned lazy_pair_count;

typedef struct {
    const void *obj; /* NULL: a free entry */
    JSAtom key;
    uint32_t offset, length, depth;
} lazy_slot_t;

/* Both tables are part of the snapshot's memory, which is copied back after
 * every execution: they are kept small. An event has a few dozen lazy
 * members; past the room here, the rest are decoded at once. */
#define LAZY_SLOTS 256 /* a power of two */
#define LAZY_SLOTS_MAX (LAZY_SLOTS / 4 * 3)
static lazy_slot_t lazy_slots[LAZY_SLOTS];
static unsigned lazy_slot_count;

/* The current call's input, and the depths whose maps and lists it reads lazily. */
static const uint8_t *lazy_base;
static int input_lazy_from, input_lazy_to;

static unsigned slot_hash(const void *obj, JSAtom key)
{
    uint32_t h = (uint32_t)(uintptr_t)obj * 0x9e3779b1u ^ key * 0x85ebca6bu;
    return (h ^ h >> 15) & (LAZY_SLOTS - 1);
}

static lazy_slot_t *find_slot(const void *obj, JSAtom key)
{
    for (unsigned i = slot_hash(obj, key);; i = (i + 1) & (LAZY_SLOTS - 1)) {
        lazy_slot_t *s = &lazy_slots[i];
        if (s->obj == NULL || (s->obj == obj && s->key == key))
            return s;
    }
}

static JSValue lazy_settle(JSContext *ctx, JSValueConst obj, JSAtom key, JSValue value)
{
    if (JS_DefinePropertyValue(ctx, obj, key, JS_DupValue(ctx, value), JS_PROP_C_W_E) < 0) {
        JS_FreeValue(ctx, value);
        return JS_EXCEPTION;
    }
    return value;
}

static JSValue lazy_get(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv, int magic,
                        JSValueConst *data)
{
    (void)argc; (void)argv; (void)data;
    if (!JS_IsObject(this_val))
        return JS_UNDEFINED;
    JSAtom key = lazy_pairs[magic].key;
    lazy_slot_t *s = find_slot(JS_VALUE_GET_PTR(this_val), key);
    if (s->obj == NULL)
        return JS_UNDEFINED; /* the getter, taken off its object and called on another */
    reader_t r = {ctx,  lazy_base, lazy_base + s->offset, lazy_base + s->offset + s->length,
                  NULL, input_lazy_from, input_lazy_to};
    JSValue v = decode(&r, (int)s->depth);
    if (JS_IsException(v))
        return r.error ? JS_ThrowInternalError(ctx, "the event could not be read: %s", r.error) : v;
    return lazy_settle(ctx, this_val, key, v);
}

static JSValue lazy_set(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv, int magic,
                        JSValueConst *data)
{
    (void)data;
    if (!JS_IsObject(this_val))
        return JS_UNDEFINED;
    JSValue v = lazy_settle(ctx, this_val, lazy_pairs[magic].key, JS_DupValue(ctx, argc > 0 ? argv[0] : JS_UNDEFINED));
    if (JS_IsException(v))
        return v;
    JS_FreeValue(ctx, v);
    return JS_UNDEFINED;
}

/* The shared getter and setter for `key`, made on first use; NULL when the
 * table is full (the caller then decodes at once). */
static lazy_pair_t *key_pair(JSContext *ctx, JSAtom key)
{
    unsigned i = (key * 0x9e3779b1u >> 8) & (LAZY_PAIRS - 1);
    for (;; i = (i + 1) & (LAZY_PAIRS - 1)) {
        lazy_pair_t *p = &lazy_pairs[i];
        if (p->key == key)
            return p;
        if (p->key == JS_ATOM_NULL)
            break;
    }
    if (lazy_pair_count >= LAZY_PAIRS / 2)
        return NULL;
    JSValue get = JS_NewCFunctionData(ctx, lazy_get, 0, (int)i, 0, NULL);
    JSValue set = JS_NewCFunctionData(ctx, lazy_set, 1, (int)i, 0, NULL);
    if (JS_IsException(get) || JS_IsException(set)) {
        JS_FreeValue(ctx, get);
        JS_FreeValue(ctx, set);
        return NULL;
    }
    lazy_pair_t *p = &lazy_pairs[i];
    p->key = JS_DupAtom(ctx, key);
    p->get = get;
    p->set = set;
    lazy_pair_count++;
    return p;
}

int tg_msgpack_settle(JSContext *ctx, JSValueConst obj, JSAtom key)
{
    if (!JS_IsObject(obj))
        return 0;
    const lazy_pair_t *pair = NULL;
    for (unsigned i = (key * 0x9e3779b1u >> 8) & (LAZY_PAIRS - 1);; i = (i + 1) & (LAZY_PAIRS - 1)) {
        if (lazy_pairs[i].key == key) {
            pair = &lazy_pairs[i];
            break;
        }
        if (lazy_pairs[i].key == JS_ATOM_NULL)
            return 0;
    }
    JSPropertyDescriptor desc;
    int has = JS_GetOwnProperty(ctx, &desc, obj, key);
    if (has <= 0)
        return has;
    int ours = (desc.flags & JS_PROP_GETSET) && JS_IsObject(desc.getter) &&
               JS_VALUE_GET_PTR(desc.getter) == JS_VALUE_GET_PTR(pair->get);
    JS_FreeValue(ctx, desc.getter);
    JS_FreeValue(ctx, desc.setter);
    JS_FreeValue(ctx, desc.value);
    if (!ours)
        return 0;
    JSValue v = JS_Call(ctx, pair->get, obj, 0, NULL);
    if (JS_IsException(v))
        return -1;
    JS_FreeValue(ctx, v);
    return 1;
}

void tg_msgpack_prepare_keys(JSContext *ctx, const char *const *keys, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        JSAtom key = JS_NewAtom(ctx, keys[i]);
        if (key != JS_ATOM_NULL) {
            key_pair(ctx, key);
            JS_FreeAtom(ctx, key);
        }
    }
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
 * that the caller should decode it now (or when no more lazy properties fit
 * the tables); -1 on failure. */
static int define_lazy(reader_t *r, JSValueConst obj, JSAtom key, int depth)
{
    const uint8_t *start = r->p;
    if (skip(r, depth))
        return -1;
    lazy_pair_t *pair;
    if (r->p - start <= LAZY_MIN_BYTES || lazy_slot_count >= LAZY_SLOTS_MAX || !(pair = key_pair(r->ctx, key))) {
        r->p = start;
        return 0;
    }
    lazy_slot_t *s = find_slot(JS_VALUE_GET_PTR(obj), key);
    if (s->obj == NULL)
        lazy_slot_count++;
    *s = (lazy_slot_t){JS_VALUE_GET_PTR(obj), key, (uint32_t)(start - r->base), (uint32_t)(r->p - start),
                       (uint32_t)depth};
    if (JS_DefinePropertyGetSet(r->ctx, obj, key, JS_DupValue(r->ctx, pair->get), JS_DupValue(r->ctx, pair->set),
                                JS_PROP_CONFIGURABLE | JS_PROP_ENUMERABLE) < 0)
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
    if (lazy_from <= MAX_DEPTH) {
        /* A new input: forget the places in the last one (none, in a fresh instance). */
        if (lazy_slot_count) {
            memset(lazy_slots, 0, sizeof lazy_slots);
            lazy_slot_count = 0;
        }
        lazy_base = data;
        input_lazy_from = lazy_from;
        input_lazy_to = lazy_to;
    }
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
