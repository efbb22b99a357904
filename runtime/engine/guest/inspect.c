/*
 * util.inspect for plain data, in C. The prelude's inspect (prelude/10_inspect.js)
 * defines the output; this writes the same text for the values an action
 * logs most (the event, its members, objects and arrays of strings, numbers
 * and booleans) without running the prelude's code once per key and value,
 * which costs some 30,000 WebAssembly instructions a key in QuickJS.
 *
 * Anything else anywhere in the value (a function, a Map, a Date, a class
 * instance, a symbol key, an accessor the action defined, an array with
 * holes, more than 100 items, a string longer than the prelude shows, deep
 * nesting) makes tg_inspect_plain decline before it returns any text, and
 * the prelude's inspect takes the whole value. Lengths are counted in UTF-16
 * code units, as JavaScript counts them, for the line-width rule.
 */
#include "inspect.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "msgpack.h"

#define WIDTH 72          /* INSPECT_WIDTH */
#define MAX_ITEMS 100     /* INSPECT_MAX_ITEMS */
#define MAX_STRING 10000  /* INSPECT_MAX_STRING */
#define MAX_NEST 64       /* deeper values are left to the prelude */

enum { SHOWN = 0, DECLINED = 1, FAILED = -1 };

static JSValue object_proto, array_proto;
static JSClassID object_class, array_class;
static JSAtom length_atom, constructor_atom;

static JSValue intrinsic_prototype(JSContext *ctx, JSValueConst global, const char *name)
{
    JSValue ctor = JS_GetPropertyStr(ctx, global, name);
    JSValue proto = JS_GetPropertyStr(ctx, ctor, "prototype");
    JS_FreeValue(ctx, ctor);
    return proto;
}

void tg_inspect_init(JSContext *ctx)
{
    /* Kept for the context's life. Object.prototype is an ordinary object and Array.prototype an
     * array, so their classes are those of plain objects and arrays. */
    JSValue global = JS_GetGlobalObject(ctx);
    object_proto = intrinsic_prototype(ctx, global, "Object");
    array_proto = intrinsic_prototype(ctx, global, "Array");
    JS_FreeValue(ctx, global);
    object_class = JS_GetClassID(object_proto);
    array_class = JS_GetClassID(array_proto);
    length_atom = JS_NewAtom(ctx, "length");
    constructor_atom = JS_NewAtom(ctx, "constructor");
}

/* UTF-8 text, with its length in UTF-16 code units and whether it has a line break. */
typedef struct {
    char *data;
    size_t len, cap, units;
    int newline;
} text_t;

typedef struct {
    JSContext *ctx;
    const void *open[MAX_NEST]; /* the objects being shown, outermost first (cycles) */
    int nest;
} walker_t;

static int put(JSContext *ctx, text_t *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 64;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *grown = js_realloc(ctx, t->data, cap);
        if (!grown)
            return FAILED;
        t->data = grown;
        t->cap = cap;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        t->units += (b & 0xC0) != 0x80; /* a character starts here */
        t->units += b >= 0xF0;          /* and takes two code units */
        t->newline |= b == '\n';
    }
    return SHOWN;
}

static int puts_(JSContext *ctx, text_t *t, const char *s)
{
    return put(ctx, t, s, strlen(s));
}

static void drop(JSContext *ctx, text_t *t)
{
    js_free(ctx, t->data);
    memset(t, 0, sizeof *t);
}

/* quoteString: single quotes, or double or back quotes when the text has single ones. */
static int quote(JSContext *ctx, text_t *out, const char *s, size_t n)
{
    size_t units = 0;
    int single = 0, dbl = 0, back = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        /* A lone surrogate (written as ED A0..BF xx): left to the prelude, which keeps it as it is. */
        if (b == 0xED && i + 1 < n && ((uint8_t)s[i + 1] & 0xE0) == 0xA0)
            return DECLINED;
        units += ((b & 0xC0) != 0x80) + (b >= 0xF0);
        single |= b == '\'';
        dbl |= b == '"';
        back |= b == '`';
    }
    if (units > MAX_STRING)
        return DECLINED;
    char q = '\'';
    if (single && !dbl)
        q = '"';
    else if (single && !back)
        q = '`';
    if (put(ctx, out, &q, 1))
        return FAILED;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        char esc[5] = {'\\', 0, 0, 0, 0};
        size_t esc_len = 2;
        if (b == (uint8_t)q || b == '\\') {
            esc[1] = (char)b;
        } else if (b == '\n') {
            esc[1] = 'n';
        } else if (b == '\t') {
            esc[1] = 't';
        } else if (b == '\r') {
            esc[1] = 'r';
        } else if (b < 0x20 || b == 0x7f) {
            static const char hex[] = "0123456789abcdef";
            esc[1] = 'x';
            esc[2] = hex[b >> 4];
            esc[3] = hex[b & 15];
            esc_len = 4;
        } else {
            run++;
            continue;
        }
        if (put(ctx, out, s + i - run, run) || put(ctx, out, esc, esc_len))
            return FAILED;
        run = 0;
    }
    if (put(ctx, out, s + n - run, run) || put(ctx, out, &q, 1))
        return FAILED;
    return SHOWN;
}

static int is_identifier(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == '$';
        if (!letter && !(i > 0 && c >= '0' && c <= '9'))
            return 0;
    }
    return 1;
}

/* wrapEntries: on one line when it fits the width and nothing spans lines, else one entry a line. */
static int wrap(JSContext *ctx, text_t *out, char open, text_t *entries, size_t count, char close, size_t indent)
{
    if (count == 0) {
        char empty[2] = {open, close};
        return put(ctx, out, empty, 2);
    }
    size_t total = 2;
    int multiline = 0;
    for (size_t i = 0; i < count; i++) {
        total += entries[i].units + 2;
        multiline |= entries[i].newline;
    }
    if (!multiline && total + indent <= WIDTH) {
        char head[2] = {open, ' '};
        if (put(ctx, out, head, 2))
            return FAILED;
        for (size_t i = 0; i < count; i++)
            if ((i && put(ctx, out, ", ", 2)) || put(ctx, out, entries[i].data, entries[i].len))
                return FAILED;
        char tail[2] = {' ', close};
        return put(ctx, out, tail, 2);
    }
    if (put(ctx, out, &open, 1))
        return FAILED;
    for (size_t i = 0; i < count; i++) {
        if ((i && put(ctx, out, ",", 1)) || put(ctx, out, "\n", 1))
            return FAILED;
        for (size_t k = 0; k < indent + 2; k++)
            if (put(ctx, out, " ", 1))
                return FAILED;
        if (put(ctx, out, entries[i].data, entries[i].len))
            return FAILED;
    }
    if (put(ctx, out, "\n", 1))
        return FAILED;
    for (size_t k = 0; k < indent; k++)
        if (put(ctx, out, " ", 1))
            return FAILED;
    return put(ctx, out, &close, 1);
}

static int show(walker_t *w, JSValueConst v, int depth, size_t indent, text_t *out);

/* The container's text from its entries, when all were shown (`r`); the entries are freed either way. */
static int close_container(JSContext *ctx, int r, text_t *out, char open, text_t *items, size_t count, char close,
                           size_t indent)
{
    if (r == SHOWN)
        r = wrap(ctx, out, open, items, count, close, indent);
    for (size_t i = 0; i < count; i++)
        drop(ctx, &items[i]);
    js_free(ctx, items);
    return r;
}

/* The value of own data property `atom` of `obj`, reading an event member not read yet first.
 * DECLINED for an accessor the action defined (the prelude shows [Getter]). */
static int own_value(walker_t *w, JSValueConst obj, JSAtom atom, JSValue *value, int *enumerable)
{
    JSContext *ctx = w->ctx;
    JSPropertyDescriptor desc;
    for (int attempt = 0;; attempt++) {
        int has = JS_GetOwnProperty(ctx, &desc, obj, atom);
        if (has < 0)
            return FAILED;
        if (has == 0)
            return DECLINED; /* a hole, or a key gone meanwhile */
        *enumerable = (desc.flags & JS_PROP_ENUMERABLE) != 0;
        if (!(desc.flags & JS_PROP_GETSET)) {
            *value = desc.value;
            return SHOWN;
        }
        JS_FreeValue(ctx, desc.getter);
        JS_FreeValue(ctx, desc.setter);
        if (!*enumerable) {
            *value = JS_UNDEFINED;
            return SHOWN; /* skipped by the caller */
        }
        int settled = attempt == 0 ? tg_msgpack_settle(ctx, obj, atom) : 0;
        if (settled < 0)
            return FAILED;
        if (!settled)
            return DECLINED;
    }
}

static int show_array(walker_t *w, JSValueConst v, int depth, size_t indent, text_t *out)
{
    JSContext *ctx = w->ctx;
    JSValue len_value = JS_GetProperty(ctx, v, length_atom);
    uint32_t len;
    if (JS_ToUint32(ctx, &len, len_value)) {
        JS_FreeValue(ctx, len_value);
        return FAILED;
    }
    JS_FreeValue(ctx, len_value);
    if (len > MAX_ITEMS)
        return DECLINED;
    text_t *items = js_mallocz(ctx, sizeof(text_t) * (len ? len : 1)); /* not on the stack: values nest */
    if (!items)
        return FAILED;
    int r = SHOWN;
    for (uint32_t i = 0; i < len && r == SHOWN; i++) {
        JSAtom atom = JS_NewAtomUInt32(ctx, i);
        JSValue item;
        int enumerable;
        r = atom == JS_ATOM_NULL ? FAILED : own_value(w, v, atom, &item, &enumerable);
        JS_FreeAtom(ctx, atom);
        if (r == SHOWN) {
            r = show(w, item, depth - 1, indent + 2, &items[i]);
            JS_FreeValue(ctx, item);
        }
    }
    return close_container(ctx, r, out, '[', items, len, ']', indent);
}

static int show_object(walker_t *w, JSValueConst v, int depth, size_t indent, text_t *out)
{
    JSContext *ctx = w->ctx;
    JSPropertyEnum *symbols, *keys;
    uint32_t nsym, nkeys;
    if (JS_GetOwnPropertyNames(ctx, &symbols, &nsym, v, JS_GPN_SYMBOL_MASK) < 0)
        return FAILED;
    JS_FreePropertyEnum(ctx, symbols, nsym);
    if (nsym)
        return DECLINED;
    if (JS_GetOwnPropertyNames(ctx, &keys, &nkeys, v, JS_GPN_STRING_MASK) < 0)
        return FAILED;
    if (nkeys > MAX_ITEMS) {
        JS_FreePropertyEnum(ctx, keys, nkeys);
        return DECLINED;
    }
    text_t *items = js_mallocz(ctx, sizeof(text_t) * (nkeys ? nkeys : 1));
    if (!items) {
        JS_FreePropertyEnum(ctx, keys, nkeys);
        return FAILED;
    }
    size_t count = 0;
    int r = SHOWN;
    for (uint32_t i = 0; i < nkeys && r == SHOWN; i++) {
        JSValue value;
        int enumerable;
        r = own_value(w, v, keys[i].atom, &value, &enumerable);
        if (r != SHOWN)
            break;
        if (!enumerable) {
            JS_FreeValue(ctx, value);
            continue;
        }
        text_t *item = &items[count++];
        size_t key_len;
        const char *key = JS_AtomToCStringLen(ctx, &key_len, keys[i].atom);
        if (!key) {
            JS_FreeValue(ctx, value);
            r = FAILED;
            break;
        }
        r = is_identifier(key, key_len) ? put(ctx, item, key, key_len) : quote(ctx, item, key, key_len);
        JS_FreeCString(ctx, key);
        if (r == SHOWN)
            r = put(ctx, item, ": ", 2);
        if (r == SHOWN) {
            text_t shown = {0};
            r = show(w, value, depth - 1, indent + 2, &shown);
            if (r == SHOWN)
                r = put(ctx, item, shown.data, shown.len);
            drop(ctx, &shown);
        }
        JS_FreeValue(ctx, value);
    }
    JS_FreePropertyEnum(ctx, keys, nkeys);
    return close_container(ctx, r, out, '{', items, count, '}', indent);
}

/* String(v) (v a string or a number), quoted as quoteString does when `quoted`. */
static int put_string_of(JSContext *ctx, text_t *out, JSValueConst v, int quoted)
{
    size_t n;
    const char *s = JS_ToCStringLen(ctx, &n, v);
    if (!s)
        return FAILED;
    int r = quoted ? quote(ctx, out, s, n) : put(ctx, out, s, n);
    JS_FreeCString(ctx, s);
    return r;
}

static int show(walker_t *w, JSValueConst v, int depth, size_t indent, text_t *out)
{
    JSContext *ctx = w->ctx;
    char number[32];
    switch (JS_VALUE_GET_NORM_TAG(v)) { /* the normalised tag: NaN-boxed floats carry no tag of their own */
    case JS_TAG_STRING:
        return put_string_of(ctx, out, v, 1);
    case JS_TAG_INT:
        snprintf(number, sizeof number, "%d", JS_VALUE_GET_INT(v));
        return puts_(ctx, out, number);
    case JS_TAG_FLOAT64: {
        double d = JS_VALUE_GET_FLOAT64(v);
        if (d == 0 && signbit(d))
            return puts_(ctx, out, "-0");
        return put_string_of(ctx, out, v, 0); /* as String(value) writes it */
    }
    case JS_TAG_BOOL:
        return puts_(ctx, out, JS_VALUE_GET_BOOL(v) ? "true" : "false");
    case JS_TAG_NULL:
        return puts_(ctx, out, "null");
    case JS_TAG_UNDEFINED:
        return puts_(ctx, out, "undefined");
    case JS_TAG_OBJECT:
        break;
    default:
        return DECLINED; /* BigInt, symbol... */
    }
    JSClassID cls = JS_GetClassID(v);
    int is_array = cls == array_class;
    if (!is_array && cls != object_class)
        return DECLINED;
    JSValue proto = JS_GetPrototype(ctx, v);
    int plain = JS_VALUE_GET_PTR(proto) == JS_VALUE_GET_PTR(is_array ? array_proto : object_proto);
    JS_FreeValue(ctx, proto);
    if (!plain)
        return DECLINED;
    const void *self = JS_VALUE_GET_PTR(v);
    for (int i = 0; i < w->nest; i++)
        if (w->open[i] == self)
            return puts_(ctx, out, "[Circular *1]");
    if (depth < 0) {
        if (is_array)
            return puts_(ctx, out, "[Array]");
        /* The prelude names it after value.constructor.name: an own "constructor" is its business. */
        int own = JS_GetOwnProperty(ctx, NULL, v, constructor_atom);
        return own < 0 ? FAILED : own ? DECLINED : puts_(ctx, out, "[Object]");
    }
    if (w->nest == MAX_NEST)
        return DECLINED;
    w->open[w->nest++] = self;
    int r = is_array ? show_array(w, v, depth, indent, out) : show_object(w, v, depth, indent, out);
    w->nest--;
    return r;
}

JSValue tg_inspect_plain(JSContext *ctx, JSValueConst value, int depth)
{
    walker_t w = {.ctx = ctx};
    text_t out = {0};
    int r = show(&w, value, depth, 0, &out);
    JSValue result = r == FAILED ? JS_EXCEPTION : r == DECLINED ? JS_NULL : JS_NewStringLen(ctx, out.data, out.len);
    drop(ctx, &out);
    return result;
}
