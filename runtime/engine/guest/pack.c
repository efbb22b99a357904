/* JS values -> msgpack, for the commands and console output of an execution.
 *
 * Commands are packed the moment the action records them, into a buffer the
 * host reads after the call: there is no JSON text to build and re-parse, a
 * long string is one memcpy, and the byte count the limits apply to is exact.
 * Values convert the way JSON.stringify converts them, so a claim value
 * means the same here as in the hosted product.
 */
#include "pack.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

/* Class ids of boxed primitives (new Number(1) ...), learnt by tg_pack_init. */
static JSClassID boxed_number, boxed_string, boxed_boolean;

void tg_pack_init(JSContext *ctx)
{
    static const char *exprs[3] = {"new Number(0)", "new String('')", "new Boolean(false)"};
    JSClassID *ids[3] = {&boxed_number, &boxed_string, &boxed_boolean};
    for (int i = 0; i < 3; i++) {
        JSValue v = JS_Eval(ctx, exprs[i], strlen(exprs[i]), "<init>", JS_EVAL_TYPE_GLOBAL);
        *ids[i] = JS_GetClassID(v);
        JS_FreeValue(ctx, v);
    }
}

static uint8_t NIL = 0xc0;

static int reserve(tg_buf_t *b, size_t extra)
{
    size_t need = (size_t)b->len + extra;
    if (need > b->limit)
        return TG_PACK_TOO_BIG;
    if (need <= b->cap)
        return TG_PACK_OK;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < need)
        cap *= 2;
    if (cap > b->limit)
        cap = b->limit;
    uint8_t *grown = realloc(b->data, cap);
    if (!grown)
        return TG_PACK_NO_MEMORY;
    b->data = grown;
    b->cap = (uint32_t)cap;
    return TG_PACK_OK;
}

static int put(tg_buf_t *b, const void *p, size_t n)
{
    int r = reserve(b, n);
    if (r)
        return r;
    memcpy(b->data + b->len, p, n);
    b->len += (uint32_t)n;
    return TG_PACK_OK;
}

static int put_header(tg_buf_t *b, uint8_t small_base, uint32_t small_max, uint8_t op16, uint32_t n)
{
    uint8_t h[5];
    if (n <= small_max) {
        h[0] = (uint8_t)(small_base | n);
        return put(b, h, 1);
    }
    if (n <= 0xffff) {
        h[0] = op16;
        h[1] = (uint8_t)(n >> 8);
        h[2] = (uint8_t)n;
        return put(b, h, 3);
    }
    h[0] = (uint8_t)(op16 + 1);
    h[1] = (uint8_t)(n >> 24);
    h[2] = (uint8_t)(n >> 16);
    h[3] = (uint8_t)(n >> 8);
    h[4] = (uint8_t)n;
    return put(b, h, 5);
}

int tg_pack_array_header(tg_buf_t *b, uint32_t n) { return put_header(b, 0x90, 15, 0xdc, n); }

static int put_map_header(tg_buf_t *b, uint32_t n) { return put_header(b, 0x80, 15, 0xde, n); }

int tg_pack_str(tg_buf_t *b, const char *s, size_t n)
{
    uint8_t h[5];
    int r;
    if (n <= 31) {
        h[0] = (uint8_t)(0xa0 | n);
        r = put(b, h, 1);
    } else if (n <= 0xff) {
        h[0] = 0xd9;
        h[1] = (uint8_t)n;
        r = put(b, h, 2);
    } else if (n <= 0xffff) {
        h[0] = 0xda;
        h[1] = (uint8_t)(n >> 8);
        h[2] = (uint8_t)n;
        r = put(b, h, 3);
    } else {
        h[0] = 0xdb;
        h[1] = (uint8_t)(n >> 24);
        h[2] = (uint8_t)(n >> 16);
        h[3] = (uint8_t)(n >> 8);
        h[4] = (uint8_t)n;
        r = put(b, h, 5);
    }
    return r ? r : put(b, s, n);
}

static int put_number(tg_buf_t *b, double d)
{
    uint8_t h[9];
    if (!isfinite(d)) {
        h[0] = 0xc0;
        return put(b, h, 1);
    }
    if (d == (double)(int64_t)d && fabs(d) <= 9007199254740991.0 && !(d == 0 && signbit(d))) {
        int64_t v = (int64_t)d;
        if (v >= 0 && v <= 0x7f) {
            h[0] = (uint8_t)v;
            return put(b, h, 1);
        }
        if (v < 0 && v >= -32) {
            h[0] = (uint8_t)(int8_t)v;
            return put(b, h, 1);
        }
        h[0] = 0xd3;
        for (int i = 0; i < 8; i++)
            h[1 + i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
        return put(b, h, 9);
    }
    uint64_t bits;
    memcpy(&bits, &d, 8);
    h[0] = 0xcb;
    for (int i = 0; i < 8; i++)
        h[1 + i] = (uint8_t)(bits >> (56 - 8 * i));
    return put(b, h, 9);
}

/* Write the UTF-8 text of the string `v` with `writer` (msgpack or JSON). */
typedef int text_writer(tg_buf_t *b, const char *s, size_t n);

static int put_text(JSContext *ctx, tg_buf_t *b, JSValueConst v, text_writer *writer)
{
    size_t n;
    const char *s = JS_ToCStringLen(ctx, &n, v);
    if (!s)
        return TG_PACK_EXCEPTION;
    int r = writer(b, s, n);
    JS_FreeCString(ctx, s);
    return r;
}

static int put_js_string(JSContext *ctx, tg_buf_t *b, JSValueConst v)
{
    return put_text(ctx, b, v, tg_pack_str);
}

/* What JSON.stringify leaves out of an object (and writes as null in an array). */
static int is_skipped(JSContext *ctx, JSValueConst v)
{
    return JS_IsUndefined(v) || JS_IsSymbol(v) || JS_IsFunction(ctx, v);
}

/* What JSON.stringify serialises for the object `v`: the result of its
 * toJSON method if it has one, then the primitive inside a boxed Number,
 * String or Boolean. A new reference, or JS_EXCEPTION. */
static JSValue json_substitute(JSContext *ctx, JSValueConst v)
{
    JSValue out = JS_DupValue(ctx, v);
    JSValue to_json = JS_GetPropertyStr(ctx, v, "toJSON");
    if (JS_IsException(to_json)) {
        JS_FreeValue(ctx, out);
        return JS_EXCEPTION;
    }
    if (JS_IsFunction(ctx, to_json)) {
        JS_FreeValue(ctx, out);
        out = JS_Call(ctx, to_json, v, 0, NULL);
    }
    JS_FreeValue(ctx, to_json);
    if (JS_IsException(out) || !JS_IsObject(out))
        return out;
    JSClassID cls = JS_GetClassID(out);
    JSValue prim = JS_UNDEFINED;
    if (cls == boxed_number) {
        double d;
        prim = JS_ToFloat64(ctx, &d, out) ? JS_EXCEPTION : JS_NewFloat64(ctx, d);
    } else if (cls == boxed_string) {
        prim = JS_ToString(ctx, out);
    } else if (cls == boxed_boolean) {
        JSValue value_of = JS_GetPropertyStr(ctx, out, "valueOf");
        prim = JS_IsException(value_of) ? JS_EXCEPTION : JS_Call(ctx, value_of, out, 0, NULL);
        JS_FreeValue(ctx, value_of);
    } else {
        return out;
    }
    JS_FreeValue(ctx, out);
    return prim;
}

static int pack_value(JSContext *ctx, tg_buf_t *b, JSValueConst v, int depth);

static int pack_array(JSContext *ctx, tg_buf_t *b, JSValueConst v, int depth)
{
    int64_t len;
    if (JS_GetLength(ctx, v, &len))
        return TG_PACK_EXCEPTION;
    if (len > 0xffffffffLL) {
        JS_ThrowRangeError(ctx, "array too long to record");
        return TG_PACK_EXCEPTION;
    }
    int r = tg_pack_array_header(b, (uint32_t)len);
    for (int64_t i = 0; !r && i < len; i++) {
        JSValue e = JS_GetPropertyInt64(ctx, v, i);
        if (JS_IsException(e))
            return TG_PACK_EXCEPTION;
        if (is_skipped(ctx, e)) {
            uint8_t nil = 0xc0;
            r = put(b, &nil, 1);
        } else {
            r = pack_value(ctx, b, e, depth + 1);
        }
        JS_FreeValue(ctx, e);
    }
    return r;
}

static int pack_object(JSContext *ctx, tg_buf_t *b, JSValueConst v, int depth)
{
    JSPropertyEnum *props;
    uint32_t n;
    if (JS_GetOwnPropertyNames(ctx, &props, &n, v, JS_GPN_STRING_MASK | JS_GPN_ENUM_ONLY))
        return TG_PACK_EXCEPTION;
    JSValue *values = n ? js_malloc(ctx, sizeof(JSValue) * n) : NULL;
    int r = (n && !values) ? TG_PACK_EXCEPTION : TG_PACK_OK;
    uint32_t fetched = 0, kept = 0;
    for (; !r && fetched < n; fetched++) {
        values[fetched] = JS_GetProperty(ctx, v, props[fetched].atom);
        if (JS_IsException(values[fetched]))
            r = TG_PACK_EXCEPTION;
        else if (!is_skipped(ctx, values[fetched]))
            kept++;
    }
    if (!r)
        r = put_map_header(b, kept);
    for (uint32_t i = 0; !r && i < fetched; i++) {
        if (is_skipped(ctx, values[i]))
            continue;
        JSValue key = JS_AtomToString(ctx, props[i].atom);
        if (JS_IsException(key)) {
            r = TG_PACK_EXCEPTION;
            break;
        }
        r = put_js_string(ctx, b, key);
        JS_FreeValue(ctx, key);
        if (!r)
            r = pack_value(ctx, b, values[i], depth + 1);
    }
    for (uint32_t i = 0; i < fetched; i++)
        JS_FreeValue(ctx, values[i]);
    if (values)
        js_free(ctx, values);
    JS_FreePropertyEnum(ctx, props, n);
    return r;
}

static int pack_value(JSContext *ctx, tg_buf_t *b, JSValueConst v, int depth)
{
    if (depth > MAX_DEPTH) {
        JS_ThrowTypeError(ctx, "the value is nested too deeply (or circular) to record");
        return TG_PACK_EXCEPTION;
    }
    uint8_t h;
    switch (JS_VALUE_GET_NORM_TAG(v)) {
    case JS_TAG_INT:
        return put_number(b, JS_VALUE_GET_INT(v));
    case JS_TAG_FLOAT64:
        return put_number(b, JS_VALUE_GET_FLOAT64(v));
    case JS_TAG_BOOL:
        h = JS_VALUE_GET_BOOL(v) ? 0xc3 : 0xc2;
        return put(b, &h, 1);
    case JS_TAG_NULL:
    case JS_TAG_UNDEFINED:
        h = 0xc0;
        return put(b, &h, 1);
    case JS_TAG_STRING:
    case JS_TAG_STRING_ROPE: /* a concatenation not yet flattened */
        return put_js_string(ctx, b, v);
    case JS_TAG_BIG_INT:
    case JS_TAG_SHORT_BIG_INT:
        JS_ThrowTypeError(ctx, "Do not know how to serialize a BigInt");
        return TG_PACK_EXCEPTION;
    case JS_TAG_OBJECT:
        break;
    default:
        h = 0xc0;
        return put(b, &h, 1);
    }
    if (JS_IsFunction(ctx, v)) {
        h = 0xc0;
        return put(b, &h, 1);
    }
    JSValue w = json_substitute(ctx, v);
    if (JS_IsException(w))
        return TG_PACK_EXCEPTION;
    int r;
    if (!JS_IsObject(w)) {
        r = is_skipped(ctx, w) ? put(b, &NIL, 1) : pack_value(ctx, b, w, depth + 1);
    } else {
        int is_array = JS_IsArray(w);
        r = is_array < 0 ? TG_PACK_EXCEPTION
            : is_array   ? pack_array(ctx, b, w, depth)
            : JS_IsFunction(ctx, w) ? put(b, &NIL, 1)
                                    : pack_object(ctx, b, w, depth);
    }
    JS_FreeValue(ctx, w);
    return r;
}

int tg_pack(JSContext *ctx, tg_buf_t *b, JSValueConst v)
{
    uint32_t mark = b->len;
    int r = is_skipped(ctx, v) ? put(b, &NIL, 1) : pack_value(ctx, b, v, 0);
    if (r)
        b->len = mark; /* nothing half-written stays */
    return r;
}

/* ------------------------------------------------------------------ */
/* JS values -> JSON text, for the prelude's own serialisation (token
 * claims). Same conversions as JSON.stringify without replacer or indent;
 * QuickJS's generic JSON.stringify costs several times more per value. */

static int json_value(JSContext *ctx, tg_buf_t *b, JSValueConst v, int depth);

static int json_string(tg_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int r = put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; !r && i < n; i++) {
        uint8_t ch = (uint8_t)s[i];
        const char *esc = NULL;
        char u[7] = "\\u00";
        if (ch == '"') esc = "\\\"";
        else if (ch == '\\') esc = "\\\\";
        else if (ch == '\b') esc = "\\b";
        else if (ch == '\f') esc = "\\f";
        else if (ch == '\n') esc = "\\n";
        else if (ch == '\r') esc = "\\r";
        else if (ch == '\t') esc = "\\t";
        else if (ch < 0x20) {
            u[4] = hex[ch >> 4];
            u[5] = hex[ch & 15];
            u[6] = 0;
            esc = u;
        } else if (ch == 0xED && i + 2 < n && ((uint8_t)s[i + 1] & 0xE0) == 0xA0) {
            /* A lone surrogate (QuickJS writes it as 3 bytes): escaped, as JSON.stringify does. */
            uint32_t cp = 0xD000u | (((uint8_t)s[i + 1] & 0x3Fu) << 6) | ((uint8_t)s[i + 2] & 0x3Fu);
            char sur[7] = {'\\', 'u', hex[cp >> 12], hex[(cp >> 8) & 15], hex[(cp >> 4) & 15], hex[cp & 15], 0};
            r = put(b, s + i - run, run);
            run = 0;
            if (!r)
                r = put(b, sur, 6);
            i += 2;
            continue;
        }
        if (!esc) {
            run++;
            continue;
        }
        r = put(b, s + i - run, run);
        run = 0;
        if (!r)
            r = put(b, esc, strlen(esc));
    }
    if (!r)
        r = put(b, s + n - run, run);
    return r ? r : put(b, "\"", 1);
}

static int json_js_string(JSContext *ctx, tg_buf_t *b, JSValueConst v)
{
    return put_text(ctx, b, v, json_string);
}

static int json_number(JSContext *ctx, tg_buf_t *b, JSValueConst v)
{
    double d;
    if (JS_ToFloat64(ctx, &d, v))
        return TG_PACK_EXCEPTION;
    if (!isfinite(d))
        return put(b, "null", 4);
    char text[32];
    if (d == (double)(int64_t)d && fabs(d) < 1e15) {
        int64_t i = (int64_t)d;
        int len = 0;
        char rev[24];
        uint64_t u = i < 0 ? (uint64_t)(-i) : (uint64_t)i;
        do {
            rev[len++] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        int o = 0;
        if (i < 0)
            text[o++] = '-';
        while (len)
            text[o++] = rev[--len];
        return put(b, text, (size_t)o);
    }
    /* Anything else is formatted by QuickJS itself, as JavaScript does. */
    JSValue num = JS_NewFloat64(ctx, d);
    size_t n;
    const char *s = JS_ToCStringLen(ctx, &n, num);
    if (!s)
        return TG_PACK_EXCEPTION;
    int r = put(b, s, n);
    JS_FreeCString(ctx, s);
    return r;
}

static int json_object(JSContext *ctx, tg_buf_t *b, JSValueConst v, int depth)
{
    int is_array = JS_IsArray(v);
    if (is_array < 0)
        return TG_PACK_EXCEPTION;
    if (is_array) {
        int64_t len;
        if (JS_GetLength(ctx, v, &len))
            return TG_PACK_EXCEPTION;
        int r = put(b, "[", 1);
        for (int64_t i = 0; !r && i < len; i++) {
            if (i)
                r = put(b, ",", 1);
            JSValue e = JS_GetPropertyInt64(ctx, v, i);
            if (JS_IsException(e))
                return TG_PACK_EXCEPTION;
            if (!r)
                r = is_skipped(ctx, e) ? put(b, "null", 4) : json_value(ctx, b, e, depth + 1);
            JS_FreeValue(ctx, e);
        }
        return r ? r : put(b, "]", 1);
    }
    JSPropertyEnum *props;
    uint32_t n;
    if (JS_GetOwnPropertyNames(ctx, &props, &n, v, JS_GPN_STRING_MASK | JS_GPN_ENUM_ONLY))
        return TG_PACK_EXCEPTION;
    int r = put(b, "{", 1);
    int first = 1;
    for (uint32_t i = 0; !r && i < n; i++) {
        JSValue e = JS_GetProperty(ctx, v, props[i].atom);
        if (JS_IsException(e)) {
            r = TG_PACK_EXCEPTION;
            break;
        }
        if (!is_skipped(ctx, e)) {
            if (!first)
                r = put(b, ",", 1);
            first = 0;
            JSValue key = JS_AtomToString(ctx, props[i].atom);
            if (JS_IsException(key))
                r = TG_PACK_EXCEPTION;
            if (!r)
                r = json_js_string(ctx, b, key);
            JS_FreeValue(ctx, key);
            if (!r)
                r = put(b, ":", 1);
            if (!r)
                r = json_value(ctx, b, e, depth + 1);
        }
        JS_FreeValue(ctx, e);
    }
    JS_FreePropertyEnum(ctx, props, n);
    return r ? r : put(b, "}", 1);
}

static int json_value(JSContext *ctx, tg_buf_t *b, JSValueConst v, int depth)
{
    if (depth > MAX_DEPTH) {
        JS_ThrowTypeError(ctx, "the value is nested too deeply (or circular) to serialise");
        return TG_PACK_EXCEPTION;
    }
    switch (JS_VALUE_GET_NORM_TAG(v)) {
    case JS_TAG_INT:
    case JS_TAG_FLOAT64:
        return json_number(ctx, b, v);
    case JS_TAG_BOOL:
        return JS_VALUE_GET_BOOL(v) ? put(b, "true", 4) : put(b, "false", 5);
    case JS_TAG_NULL:
        return put(b, "null", 4);
    case JS_TAG_STRING:
    case JS_TAG_STRING_ROPE:
        return json_js_string(ctx, b, v);
    case JS_TAG_BIG_INT:
    case JS_TAG_SHORT_BIG_INT:
        JS_ThrowTypeError(ctx, "Do not know how to serialize a BigInt");
        return TG_PACK_EXCEPTION;
    case JS_TAG_OBJECT:
        break;
    default:
        return put(b, "null", 4);
    }
    JSValue w = json_substitute(ctx, v);
    if (JS_IsException(w))
        return TG_PACK_EXCEPTION;
    int r;
    if (!JS_IsObject(w))
        r = is_skipped(ctx, w) ? put(b, "null", 4) : json_value(ctx, b, w, depth + 1);
    else
        r = JS_IsFunction(ctx, w) ? put(b, "null", 4) : json_object(ctx, b, w, depth);
    JS_FreeValue(ctx, w);
    return r;
}

int tg_json(JSContext *ctx, tg_buf_t *b, JSValueConst v)
{
    uint32_t mark = b->len;
    int r = json_value(ctx, b, v, 0);
    if (r)
        b->len = mark;
    return r;
}
