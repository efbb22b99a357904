/* The guest shim: QuickJS inside the sandbox, as the host sees it.
 *
 * Lifecycle, by how often each part runs:
 *   once per engine build  tg_init(): runtime, context and the JS prelude are
 *                          created, then the whole linear memory is captured as
 *                          the engine snapshot. Nothing here runs per execution.
 *   once per execution     tg_compile() or tg_run(), on a fresh instance made
 *                          from that snapshot; the instance is dropped after.
 *
 * The boundary: the host writes one input record into the input buffer and
 * makes one call. The guest answers through the status block (a fixed address
 * the host learns once per process) and an output buffer the status points at.
 * Everything the guest writes is re-validated by the host.
 *
 * Limits are enforced so that the action cannot catch them: when a limit is
 * hit, the reason is written to the status block and the guest traps. The
 * trap poisons the instance; the host reads the reason and reports the class.
 *
 * No WASI: the five WASI functions wasi-libc references are defined here, so
 * the module imports only the one host function below.
 */
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inspect.h"
#include "msgpack.h"
#include "pack.h"
#include "quickjs.h"
#include "sha256.h"

#define TG_EXPORT(name) __attribute__((export_name(name)))

/* ------------------------------------------------------------------ */
/* The host interface                                                  */

__attribute__((import_module("tollgate"), import_name("host_call")))
extern int32_t tg_host_call(uint32_t op_ptr, uint32_t op_len, uint32_t req_ptr, uint32_t req_len);

enum {
    TG_INPUT_MAGIC_RUN = 0x31524754,     /* "TGR1" */
    TG_INPUT_MAGIC_COMPILE = 0x31434754, /* "TGC1" */
    TG_INPUT_MAGIC_PRELOAD = 0x31504754, /* "TGP1" */
    TG_STATUS_MAGIC = 0x31534754,        /* "TGS1" */
};

/* Why the guest stopped itself. Mirrored in runtime/sandbox/_protocol.py. */
enum {
    TG_ABORT_NONE = 0,
    TG_ABORT_MEMORY = 1,
    TG_ABORT_OUTPUT = 2,
    TG_ABORT_LOGS = 3,
    TG_ABORT_COMMANDS = 4,
    TG_ABORT_HOST_CALLS = 5,
    TG_ABORT_BAD_INPUT = 6,
    TG_ABORT_INTERNAL = 7,
};

#define TG_INPUT_STATIC_BYTES (64 * 1024)
#define TG_HOSTBUF_BYTES (64 * 1024)

typedef struct {
    uint32_t magic;
    uint32_t abort_reason;
    uint32_t out_ptr;      /* JSON report */
    uint32_t out_len;
    uint32_t aux_ptr;      /* compile: the bytecode */
    uint32_t aux_len;
    uint32_t fault;        /* 1: the prelude itself failed (output is a message) */
    uint32_t host_calls;
    uint32_t heap_peak_bytes;
    uint32_t input_ptr;    /* the static input buffer */
    uint32_t input_cap;
    uint32_t hostbuf_ptr;  /* where host_call answers are written */
    uint32_t hostbuf_cap;
    uint32_t log_ptr;      /* console output so far: msgpack [level, message] arrays */
    uint32_t log_len;
    uint32_t cmd_ptr;      /* recorded commands: msgpack maps, one after another */
    uint32_t cmd_len;
    uint32_t cmd_count;
    uint32_t log_count;
} tg_status_t;

/* The input record's fixed header; the variable parts follow it. */
typedef struct {
    uint32_t magic;
    uint32_t reserved;
    uint64_t seed[4];
    double now_ms;
    uint32_t heap_bytes;   /* heap growth allowed during this call */
    uint32_t stack_bytes;
    uint32_t output_bytes;
    uint32_t log_bytes;
    uint32_t max_commands;
    uint32_t max_host_calls;
    uint32_t code_len;     /* run: bytecode; compile: source text */
    uint32_t request_len;  /* msgpack */
} tg_input_t;

static tg_status_t tg_status;
static uint8_t tg_input_static[TG_INPUT_STATIC_BYTES];
/* Made on an execution's first host call (a continue's validateToken): kept
 * out of the snapshot, whose memory is copied back after every execution. */
static uint8_t *tg_hostbuf;
static uint8_t *tg_input = tg_input_static;
static uint32_t tg_input_cap = TG_INPUT_STATIC_BYTES;

/* An action is CommonJS: its source is wrapped in a function on the same
 * first line, so line numbers stay the source's own. */
static const char WRAP_HEAD[] = "(function (exports, require, module, __filename, __dirname) { ";
static const char WRAP_TAIL[] = "\n})";

static JSRuntime *rt;
static JSContext *ctx;
static JSValue hook_start, hook_tick, hook_finish, hook_check, hook_describe;

static uint32_t max_host_calls;
static uint32_t max_commands;
/* Read by the host after every call, also after a trap. */
static tg_buf_t log_buf, cmd_buf;
static void emit_json(JSValue v);
static void drain_jobs(void);

__attribute__((noreturn)) static void tg_abort(uint32_t reason)
{
    tg_status.abort_reason = reason;
    __builtin_trap();
}

/* ------------------------------------------------------------------ */
/* Memory: every QuickJS allocation is counted against the call's limit. */

static size_t heap_used, heap_limit, heap_peak;
static size_t preload_heap; /* what tg_preload's loading of an action allocated */

static void heap_account(void *p)
{
    heap_used += malloc_usable_size(p);
    if (heap_limit && heap_used > heap_limit)
        tg_abort(TG_ABORT_MEMORY);
    if (heap_used > heap_peak)
        heap_peak = heap_used;
}

static void *tg_js_malloc(void *opaque, size_t size)
{
    (void)opaque;
    if (heap_limit && heap_used + size > heap_limit)
        tg_abort(TG_ABORT_MEMORY);
    void *p = malloc(size);
    if (!p) {
        if (size == 0)
            return NULL;
        tg_abort(TG_ABORT_MEMORY);
    }
    heap_account(p);
    return p;
}

static void *tg_js_calloc(void *opaque, size_t count, size_t size)
{
    (void)opaque;
    if (size && count > SIZE_MAX / size)
        tg_abort(TG_ABORT_MEMORY);
    if (heap_limit && heap_used + count * size > heap_limit)
        tg_abort(TG_ABORT_MEMORY);
    void *p = calloc(count, size);
    if (!p) {
        if (count * size == 0)
            return NULL;
        tg_abort(TG_ABORT_MEMORY);
    }
    heap_account(p);
    return p;
}

static void tg_js_free(void *opaque, void *ptr)
{
    (void)opaque;
    if (!ptr)
        return;
    heap_used -= malloc_usable_size(ptr);
    free(ptr);
}

static void *tg_js_realloc(void *opaque, void *ptr, size_t size)
{
    (void)opaque;
    size_t old = ptr ? malloc_usable_size(ptr) : 0;
    if (size == 0) {
        tg_js_free(opaque, ptr);
        return NULL;
    }
    if (heap_limit && size > old && heap_used + (size - old) > heap_limit)
        tg_abort(TG_ABORT_MEMORY);
    void *p = realloc(ptr, size);
    if (!p)
        tg_abort(TG_ABORT_MEMORY);
    heap_used -= old;
    heap_account(p);
    return p;
}

static size_t tg_js_usable_size(const void *ptr)
{
    return malloc_usable_size((void *)ptr);
}

static const JSMallocFunctions tg_malloc_functions = {
    tg_js_calloc, tg_js_malloc, tg_js_free, tg_js_realloc, tg_js_usable_size,
};

/* ------------------------------------------------------------------ */
/* Clock and randomness, both set by the host for each call.           */

static double clock_base_ms;   /* wall clock at the start of the execution */
static double clock_offset_ms; /* advanced by timers (virtual time) */
static uint64_t rng[4];

static uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256**: fast, and seeded per execution from the host's CSPRNG. */
static uint64_t rng_next(void)
{
    uint64_t result = rotl64(rng[1] * 5, 7) * 9;
    uint64_t t = rng[1] << 17;
    rng[2] ^= rng[0];
    rng[3] ^= rng[1];
    rng[1] ^= rng[2];
    rng[0] ^= rng[3];
    rng[2] ^= t;
    rng[3] = rotl64(rng[3], 45);
    return result;
}

#ifdef __wasi__
/* The WASI functions wasi-libc references. Time is the execution's frozen
 * clock plus virtual timer time; there is no file system and no output. */
enum { WASI_ESUCCESS = 0, WASI_EBADF = 8, WASI_EINVAL = 28 };

int32_t __imported_wasi_snapshot_preview1_clock_time_get(int32_t id, int64_t precision, int32_t out)
{
    (void)precision;
    double ms = clock_offset_ms + (id == 0 ? clock_base_ms : 0);
    *(uint64_t *)(uintptr_t)out = (uint64_t)(ms * 1e6);
    return WASI_ESUCCESS;
}

int32_t __imported_wasi_snapshot_preview1_fd_write(int32_t fd, int32_t iovs, int32_t n, int32_t written)
{
    (void)fd;
    uint32_t total = 0;
    const uint32_t *iov = (const uint32_t *)(uintptr_t)iovs;
    for (int32_t i = 0; i < n; i++)
        total += iov[2 * i + 1];
    *(uint32_t *)(uintptr_t)written = total;
    return WASI_ESUCCESS;
}

int32_t __imported_wasi_snapshot_preview1_fd_close(int32_t fd)
{
    (void)fd;
    return WASI_EBADF;
}

/* zig's own libc implements close() by importing fd_close directly; its
 * libc symbols are weak, so this definition replaces it. Nothing in the
 * guest has a file to close. */
int close(int fd)
{
    (void)fd;
    return -1;
}

int32_t __imported_wasi_snapshot_preview1_fd_seek(int32_t fd, int64_t offset, int32_t whence, int32_t out)
{
    (void)fd; (void)offset; (void)whence; (void)out;
    return WASI_EBADF;
}

int32_t __imported_wasi_snapshot_preview1_fd_fdstat_get(int32_t fd, int32_t out)
{
    (void)fd; (void)out;
    return WASI_EBADF;
}
#endif /* __wasi__ */

/* ------------------------------------------------------------------ */
/* Native functions the prelude captures (never visible to actions).   */

/* Bytes of a string (UTF-8), ArrayBuffer or typed array view. */
typedef struct {
    const uint8_t *data;
    size_t len;
    const char *cstr; /* to free, when the value was a string */
} bytes_t;

static int get_bytes(JSContext *c, JSValueConst v, bytes_t *out)
{
    out->cstr = NULL;
    if (JS_IsString(v)) {
        out->cstr = JS_ToCStringLen(c, &out->len, v);
        if (!out->cstr)
            return -1;
        out->data = (const uint8_t *)out->cstr;
        return 0;
    }
    /* Check the kind first: the accessors throw (and build a backtrace)
     * when given the wrong kind of object. */
    size_t size;
    if (JS_IsArrayBuffer(v)) {
        uint8_t *p = JS_GetArrayBuffer(c, &size, v);
        if (!p)
            return -1;
        out->data = p;
        out->len = size;
        return 0;
    }
    if (JS_GetTypedArrayType(v) < 0) {
        JS_ThrowTypeError(c, "expected a string, an ArrayBuffer or a typed array");
        return -1;
    }
    size_t offset, elem;
    JSValue buf = JS_GetTypedArrayBuffer(c, v, &offset, &size, &elem);
    if (JS_IsException(buf))
        return -1;
    size_t total;
    uint8_t *p = JS_GetArrayBuffer(c, &total, buf);
    JS_FreeValue(c, buf);
    if (!p)
        return -1;
    out->data = p + offset;
    out->len = size;
    return 0;
}

static void free_bytes(JSContext *c, bytes_t *b)
{
    if (b->cstr)
        JS_FreeCString(c, b->cstr);
}

static JSValue nat_random(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val; (void)argc; (void)argv;
    return JS_NewFloat64(c, (double)(rng_next() >> 11) * 0x1.0p-53);
}

static JSValue nat_random_bytes(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val; (void)argc;
    int32_t n;
    if (JS_ToInt32(c, &n, argv[0]))
        return JS_EXCEPTION;
    if (n < 0 || n > 65536)
        return JS_ThrowRangeError(c, "the number of random bytes must be between 0 and 65536");
    uint8_t *buf = js_malloc(c, n ? (size_t)n : 1);
    if (!buf)
        return JS_EXCEPTION;
    for (int32_t i = 0; i < n; i += 8) {
        uint64_t r = rng_next();
        for (int32_t j = 0; j < 8 && i + j < n; j++)
            buf[i + j] = (uint8_t)(r >> (8 * j));
    }
    JSValue ab = JS_NewArrayBufferCopy(c, buf, (size_t)n);
    js_free(c, buf);
    return ab;
}

static JSValue nat_sha256(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val; (void)argc;
    bytes_t d;
    if (get_bytes(c, argv[0], &d))
        return JS_EXCEPTION;
    sha256_ctx s;
    uint8_t out[SHA256_DIGEST_BYTES];
    sha256_init(&s);
    sha256_update(&s, d.data, d.len);
    sha256_final(&s, out);
    free_bytes(c, &d);
    return JS_NewArrayBufferCopy(c, out, sizeof(out));
}

static JSValue nat_hmac_sha256(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val; (void)argc;
    bytes_t k, d;
    if (get_bytes(c, argv[0], &k))
        return JS_EXCEPTION;
    if (get_bytes(c, argv[1], &d)) {
        free_bytes(c, &k);
        return JS_EXCEPTION;
    }
    uint8_t out[SHA256_DIGEST_BYTES];
    hmac_sha256(k.data, k.len, d.data, d.len, out);
    free_bytes(c, &k);
    free_bytes(c, &d);
    return JS_NewArrayBufferCopy(c, out, sizeof(out));
}

static JSValue nat_utf8_encode(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val; (void)argc;
    size_t len;
    const char *s = JS_ToCStringLen(c, &len, argv[0]);
    if (!s)
        return JS_EXCEPTION;
    JSValue ab = JS_NewArrayBufferCopy(c, (const uint8_t *)s, len);
    JS_FreeCString(c, s);
    return ab;
}

static JSValue nat_utf8_decode(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val; (void)argc;
    bytes_t d;
    if (get_bytes(c, argv[0], &d))
        return JS_EXCEPTION;
    JSValue s = JS_NewStringLen(c, (const char *)d.data, d.len);
    free_bytes(c, &d);
    return s;
}

static JSValue nat_utf8_length(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val; (void)argc;
    size_t len;
    const char *s = JS_ToCStringLen(c, &len, argv[0]);
    if (!s)
        return JS_EXCEPTION;
    JS_FreeCString(c, s);
    return JS_NewInt64(c, (int64_t)len);
}

/* Percent-encode sets of the WHATWG URL Standard, plus the two forms of
 * application/x-www-form-urlencoded. Indexes match the prelude's *_SET names. */
enum {
    PE_C0, PE_FRAGMENT, PE_QUERY, PE_SPECIAL_QUERY, PE_PATH, PE_USERINFO, PE_FORM, PE_COMPONENT, PE_SETS,
};

/* One bit per set for each byte; built once, before the snapshot. */
static uint8_t pe_table[256];

static int pe_rule(int set, uint8_t ch)
{
    if (ch < 0x20 || ch > 0x7e)
        return 1;
    switch (set) {
    case PE_C0:
        return 0;
    case PE_FRAGMENT:
        return ch == ' ' || ch == '"' || ch == '<' || ch == '>' || ch == '`';
    case PE_QUERY:
        return ch == ' ' || ch == '"' || ch == '#' || ch == '<' || ch == '>';
    case PE_SPECIAL_QUERY:
        return pe_rule(PE_QUERY, ch) || ch == '\'';
    case PE_PATH:
        return pe_rule(PE_QUERY, ch) || ch == '?' || ch == '`' || ch == '{' || ch == '}';
    case PE_USERINFO:
        return pe_rule(PE_PATH, ch) || ch == '/' || ch == ':' || ch == ';' || ch == '=' || ch == '@' ||
               (ch >= '[' && ch <= '^') || ch == '|';
    case PE_FORM:
        return !((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                 ch == '*' || ch == '-' || ch == '.' || ch == '_');
    default: /* PE_COMPONENT: what querystring.escape leaves alone */
        return pe_rule(PE_FORM, ch) && ch != '!' && ch != '\'' && ch != '(' && ch != ')' && ch != '~';
    }
}

static void pe_init(void)
{
    for (int ch = 0; ch < 256; ch++)
        for (int set = 0; set < PE_SETS; set++)
            if (pe_rule(set, (uint8_t)ch))
                pe_table[ch] |= (uint8_t)(1u << set);
}

#define pe_in_set(set, ch) (pe_table[(uint8_t)(ch)] & (1u << (set)))

/* percentEncode(text, set): UTF-8 bytes of `text` in `set` as %XX; lone
 * surrogates become U+FFFD; PE_FORM writes spaces as '+'. */
/* The UTF-8 bytes s[0..len) with those in `set` written as %XX (lone
 * surrogates as U+FFFD, PE_FORM's spaces as '+') into `out`, which has room
 * for 3 * len bytes. Returns the length written. */
static size_t pe_write(int set, const char *s, size_t len, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = (uint8_t)s[i];
        /* A lone surrogate, which QuickJS writes as a 3-byte ED A0..BF xx sequence. */
        if (ch == 0xED && i + 2 < len && ((uint8_t)s[i + 1] & 0xE0) == 0xA0) {
            memcpy(out + o, "%EF%BF%BD", 9);
            o += 9;
            i += 2;
            continue;
        }
        if (set == PE_FORM && ch == ' ') {
            out[o++] = '+';
        } else if (pe_in_set(set, ch)) {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        } else {
            out[o++] = (char)ch;
        }
    }
    return o;
}

static JSValue nat_percent_encode(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val; (void)argc;
    int32_t set;
    if (JS_ToInt32(c, &set, argv[1]))
        return JS_EXCEPTION;
    if (set < 0 || set >= PE_SETS)
        return JS_ThrowRangeError(c, "unknown percent-encode set");
    size_t len;
    const char *s = JS_ToCStringLen(c, &len, argv[0]);
    if (!s)
        return JS_EXCEPTION;
    size_t i = 0;
    while (i < len && !pe_in_set(set, (uint8_t)s[i]))
        i++;
    if (i == len) {
        JS_FreeCString(c, s);
        return JS_DupValue(c, argv[0]);
    }
    char *out = js_malloc(c, len * 3 + 1);
    if (!out) {
        JS_FreeCString(c, s);
        return JS_EXCEPTION;
    }
    size_t o = pe_write(set, s, len, out);
    JS_FreeCString(c, s);
    JSValue r = JS_NewStringLen(c, out, o);
    js_free(c, out);
    return r;
}

static int hex_value(uint8_t ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* settleLazy(object, key): read a lazy property of the event now (see
 * msgpack.c), so that what shows it (util.inspect) sees a plain value. */
static JSValue nat_settle_lazy(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val; (void)argc;
    JSAtom key = JS_ValueToAtom(c, argv[1]);
    if (key == JS_ATOM_NULL)
        return JS_EXCEPTION;
    int r = tg_msgpack_settle(c, argv[0], key);
    JS_FreeAtom(c, key);
    return r < 0 ? JS_EXCEPTION : JS_NewBool(c, r);
}

/* inspectPlain(value, depth): util.inspect's text for plain data, or null (see inspect.c). */
static JSValue nat_inspect_plain(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val; (void)argc;
    int32_t depth;
    if (JS_ToInt32(c, &depth, argv[1]))
        return JS_EXCEPTION;
    return tg_inspect_plain(c, argv[0], depth);
}

/* hexEncode(bytes): the bytes (a string's UTF-8, an ArrayBuffer or a typed
 * array) as lower-case hex. */
static JSValue nat_hex_encode(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val; (void)argc;
    static const char hex[] = "0123456789abcdef";
    bytes_t d;
    if (get_bytes(c, argv[0], &d))
        return JS_EXCEPTION;
    char *out = js_malloc(c, 2 * d.len + 1);
    if (!out) {
        free_bytes(c, &d);
        return JS_EXCEPTION;
    }
    for (size_t i = 0; i < d.len; i++) {
        out[2 * i] = hex[d.data[i] >> 4];
        out[2 * i + 1] = hex[d.data[i] & 15];
    }
    JSValue r = JS_NewStringLen(c, out, 2 * d.len);
    js_free(c, out);
    free_bytes(c, &d);
    return r;
}

/* hexDecode(text): an ArrayBuffer of the bytes of text's hex digit pairs, up
 * to the first pair that is not one (a trailing single digit is left out),
 * as Node's Buffer.from(text, 'hex') reads it. */
static JSValue nat_hex_decode(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val; (void)argc;
    size_t n;
    const char *s = JS_ToCStringLen(c, &n, argv[0]);
    if (!s)
        return JS_EXCEPTION;
    uint8_t *out = js_malloc(c, n / 2 + 1);
    if (!out) {
        JS_FreeCString(c, s);
        return JS_EXCEPTION;
    }
    size_t o = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        int hi = hex_value((uint8_t)s[i]), lo = hex_value((uint8_t)s[i + 1]);
        if (hi < 0 || lo < 0)
            break;
        out[o++] = (uint8_t)(hi << 4 | lo);
    }
    JSValue r = JS_NewArrayBufferCopy(c, out, o);
    js_free(c, out);
    JS_FreeCString(c, s);
    return r;
}

/* percentDecode(text, plusIsSpace): %XX sequences to bytes, then UTF-8. */
static JSValue nat_percent_decode(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val;
    int plus = argc > 1 && JS_ToBool(c, argv[1]) > 0;
    size_t len;
    const char *s = JS_ToCStringLen(c, &len, argv[0]);
    if (!s)
        return JS_EXCEPTION;
    if (!memchr(s, '%', len) && !(plus && memchr(s, '+', len))) {
        JS_FreeCString(c, s);
        return JS_DupValue(c, argv[0]);
    }
    char *out = js_malloc(c, len + 1);
    if (!out) {
        JS_FreeCString(c, s);
        return JS_EXCEPTION;
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = (uint8_t)s[i];
        int hi, lo;
        if (ch == '%' && i + 2 < len && (hi = hex_value((uint8_t)s[i + 1])) >= 0 &&
            (lo = hex_value((uint8_t)s[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = (plus && ch == '+') ? ' ' : (char)ch;
        }
    }
    JS_FreeCString(c, s);
    JSValue r = JS_NewStringLen(c, out, o);
    js_free(c, out);
    return r;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Base64 of `len` bytes into `out` (room for 4 * ((len + 2) / 3) bytes);
 * the URL-safe alphabet without padding when `url`. Returns the length. */
static size_t b64_write(const uint8_t *data, size_t len, char *out, int url)
{
    const char *alphabet = url ? B64URL : B64;
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0);
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        if (i + 1 < len)
            out[o++] = alphabet[(v >> 6) & 63];
        else if (!url)
            out[o++] = '=';
        if (!url)
            out[o++] = '=';
    }
    return o;
}

/* base64Encode(data, url): url=true gives unpadded base64url. */
static JSValue nat_base64_encode(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val;
    bytes_t d;
    if (get_bytes(c, argv[0], &d))
        return JS_EXCEPTION;
    int url = argc > 1 && JS_ToBool(c, argv[1]) > 0;
    char *out = js_malloc(c, 4 * ((d.len + 2) / 3) + 1);
    if (!out) {
        free_bytes(c, &d);
        return JS_EXCEPTION;
    }
    size_t o = b64_write(d.data, d.len, out, url);
    free_bytes(c, &d);
    JSValue s = JS_NewStringLen(c, out, o);
    js_free(c, out);
    return s;
}

/* signJwt(header, claims, secret): an HS256 JSON Web Token in one step.
 * `header` is the encoded header (base64url text), `claims` is serialised as
 * JSON.stringify would, `secret` is the HMAC key (a string, as its UTF-8
 * bytes). Nothing crosses into JavaScript between the parts. */
static JSValue nat_sign_jwt(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val; (void)argc;
    tg_buf_t json = {NULL, 0, 0, 1u << 30};
    bytes_t header, key;
    JSValue result = JS_EXCEPTION;
    if (get_bytes(c, argv[0], &header))
        return JS_EXCEPTION;
    if (get_bytes(c, argv[2], &key)) {
        free_bytes(c, &header);
        return JS_EXCEPTION;
    }
    int r = tg_json(c, &json, argv[1]);
    if (r == TG_PACK_NO_MEMORY)
        tg_abort(TG_ABORT_MEMORY);
    if (r == TG_PACK_TOO_BIG)
        JS_ThrowRangeError(c, "the token's payload is too large");
    if (r == TG_PACK_OK) {
        size_t body = 4 * ((json.len + 2) / 3), mac64 = 4 * ((SHA256_DIGEST_BYTES + 2) / 3);
        char *out = js_malloc(c, header.len + 1 + body + 1 + mac64);
        if (out) {
            size_t o = header.len;
            memcpy(out, header.data, header.len);
            out[o++] = '.';
            o += b64_write(json.data, json.len, out + o, 1);
            uint8_t mac[SHA256_DIGEST_BYTES];
            hmac_sha256(key.data, key.len, (const uint8_t *)out, o, mac);
            out[o++] = '.';
            o += b64_write(mac, sizeof(mac), out + o, 1);
            result = JS_NewStringLen(c, out, o);
            js_free(c, out);
        }
    }
    free(json.data);
    free_bytes(c, &header);
    free_bytes(c, &key);
    return result;
}

static int b64_value(uint8_t ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+' || ch == '-') return 62;
    if (ch == '/' || ch == '_') return 63;
    return -1;
}

/* base64Decode(text): both alphabets, padding and ASCII whitespace ignored
 * (as Node's Buffer.from(text, 'base64') does); null on other characters. */
static JSValue nat_base64_decode(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val; (void)argc;
    size_t len;
    const char *s = JS_ToCStringLen(c, &len, argv[0]);
    if (!s)
        return JS_EXCEPTION;
    uint8_t *out = js_malloc(c, len * 3 / 4 + 3);
    if (!out) {
        JS_FreeCString(c, s);
        return JS_EXCEPTION;
    }
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0, bad = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = (uint8_t)s[i];
        if (ch == '=' || ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t' || ch == '\f')
            continue;
        int v = b64_value(ch);
        if (v < 0) {
            bad = 1;
            break;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    JS_FreeCString(c, s);
    JSValue r = bad ? JS_NULL : JS_NewArrayBufferCopy(c, out, o);
    js_free(c, out);
    return r;
}

static JSValue nat_advance_clock(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val; (void)argc;
    double ms;
    if (JS_ToFloat64(c, &ms, argv[0]))
        return JS_EXCEPTION;
    if (ms > 0)
        clock_offset_ms += ms;
    return JS_UNDEFINED;
}

/* limit(reason): the prelude found a limit exceeded; end the execution. */
static JSValue nat_limit(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val; (void)argc;
    int32_t reason;
    if (JS_ToInt32(c, &reason, argv[0]) || reason <= 0)
        reason = TG_ABORT_INTERNAL;
    tg_abort((uint32_t)reason);
}

static void pack_failed(int r, uint32_t too_big_reason)
{
    if (r == TG_PACK_TOO_BIG)
        tg_abort(too_big_reason);
    if (r == TG_PACK_NO_MEMORY)
        tg_abort(TG_ABORT_MEMORY);
}

/* log(level, message): one line of console output, kept even if a limit
 * ends the execution later. Counted against log_bytes. */
static JSValue nat_log(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val; (void)argc;
    uint32_t mark = log_buf.len;
    int r = tg_pack_array_header(&log_buf, 2);
    if (!r)
        r = tg_pack(c, &log_buf, argv[0]);
    if (!r)
        r = tg_pack(c, &log_buf, argv[1]);
    if (r) {
        log_buf.len = mark;
        pack_failed(r, TG_ABORT_LOGS);
        return JS_EXCEPTION;
    }
    tg_status.log_count++;
    tg_status.log_ptr = (uint32_t)(uintptr_t)log_buf.data;
    tg_status.log_len = log_buf.len;
    return JS_UNDEFINED;
}

/* command(object): record one command. Counted against max_commands and
 * output_bytes; a value that cannot be recorded throws in the action. */
static JSValue nat_command(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val; (void)argc;
    if (tg_status.cmd_count >= max_commands)
        tg_abort(TG_ABORT_COMMANDS);
    int r = tg_pack(c, &cmd_buf, argv[0]);
    if (r) {
        pack_failed(r, TG_ABORT_OUTPUT);
        return JS_EXCEPTION;
    }
    tg_status.cmd_count++;
    tg_status.cmd_ptr = (uint32_t)(uintptr_t)cmd_buf.data;
    tg_status.cmd_len = cmd_buf.len;
    return JS_UNDEFINED;
}

/* hostCall(op, request) -> response text. The host writes its answer into
 * tg_hostbuf (whose place the status block gives) and returns its length; a
 * negative length is a host refusal. */
static JSValue nat_host_call(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val; (void)argc;
    if (tg_status.host_calls >= max_host_calls)
        tg_abort(TG_ABORT_HOST_CALLS);
    tg_status.host_calls++;
    size_t op_len, req_len;
    const char *op = JS_ToCStringLen(c, &op_len, argv[0]);
    if (!op)
        return JS_EXCEPTION;
    const char *req = JS_ToCStringLen(c, &req_len, argv[1]);
    if (!req) {
        JS_FreeCString(c, op);
        return JS_EXCEPTION;
    }
    if (!tg_hostbuf) {
        tg_hostbuf = malloc(TG_HOSTBUF_BYTES);
        if (!tg_hostbuf) {
            JS_FreeCString(c, op);
            JS_FreeCString(c, req);
            tg_abort(TG_ABORT_MEMORY);
        }
        tg_status.hostbuf_ptr = (uint32_t)(uintptr_t)tg_hostbuf;
        tg_status.hostbuf_cap = TG_HOSTBUF_BYTES;
    }
    int32_t n = tg_host_call((uint32_t)(uintptr_t)op, (uint32_t)op_len,
                             (uint32_t)(uintptr_t)req, (uint32_t)req_len);
    JS_FreeCString(c, op);
    JS_FreeCString(c, req);
    if (n < 0 || (uint32_t)n > TG_HOSTBUF_BYTES)
        return JS_ThrowInternalError(c, "the platform could not complete this call");
    return JS_NewStringLen(c, (const char *)tg_hostbuf, (size_t)n);
}

/* A character a canonical URL's path may hold as it is (the query adds "/"
 * and "?", the fragment also "'"). */
static int url_path_char(uint8_t c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    switch (c) {
    case '-': case '.': case '_': case '~': case '!': case '$': case '&': case '(': case ')':
    case '*': case '+': case ',': case ';': case '=': case ':': case '@': case '%':
        return 1;
    }
    return 0;
}

static JSValue url_part(JSContext *c, const char *s, size_t from, size_t to, int present)
{
    return present ? JS_NewStringLen(c, s + from, to - from) : JS_UNDEFINED;
}

/* Where the parts of a canonical absolute http(s) URL lie (see simpleUrl). */
typedef struct {
    size_t scheme_end, host_start, host_end, last_label, port_start, port_end;
    size_t path_start, path_end, query_start, query_end, frag_start;
    int has_port, has_query, has_frag, flags;
} simple_url_t;

/* 1 when s[0..n) is an absolute http(s) URL already in canonical form (see
 * simpleUrl below), its parts in `p`; 0 for anything else. */
static int scan_simple_url(const char *s, size_t n, simple_url_t *p)
{
    const uint8_t *u = (const uint8_t *)s;
    size_t i;
    memset(p, 0, sizeof *p);
    if (n >= 8 && memcmp(s, "https://", 8) == 0)
        p->scheme_end = 5;
    else if (n >= 7 && memcmp(s, "http://", 7) == 0)
        p->scheme_end = 4;
    else
        return 0;
    i = p->host_start = p->scheme_end + 3;
    for (;;) { /* one label, then a dot and another, or the end of the host */
        size_t label = i;
        while (i < n && ((u[i] >= 'a' && u[i] <= 'z') || (u[i] >= '0' && u[i] <= '9') || u[i] == '-'))
            i++;
        if (i == label)
            return 0;
        p->last_label = label;
        if (i < n && u[i] == '.') {
            i++;
            continue;
        }
        break;
    }
    p->host_end = i;
    if (i < n && u[i] == ':') {
        p->port_start = ++i;
        while (i < n && u[i] >= '0' && u[i] <= '9' && i - p->port_start < 5)
            i++;
        p->port_end = i;
        if (p->port_end == p->port_start)
            return 0;
        p->has_port = 1;
    }
    p->path_start = i;
    if (i < n && u[i] != '/' && u[i] != '?' && u[i] != '#')
        return 0;
    while (i < n && (u[i] == '/' || url_path_char(u[i]))) {
        if (u[i] == '/' && i + 1 < n &&
            (u[i + 1] == '.' || (u[i + 1] == '%' && i + 3 < n && u[i + 2] == '2' && (u[i + 3] | 0x20) == 'e')))
            p->flags |= 1;
        i++;
    }
    p->path_end = i;
    if (i < n && u[i] == '?') {
        p->query_start = ++i;
        while (i < n && (url_path_char(u[i]) || u[i] == '/' || u[i] == '?'))
            i++;
        p->query_end = i;
        p->has_query = 1;
    }
    if (i < n && u[i] == '#') {
        p->frag_start = ++i;
        while (i < n && (url_path_char(u[i]) || u[i] == '/' || u[i] == '?' || u[i] == '\''))
            i++;
        p->has_frag = 1;
    }
    if (i != n)
        return 0;
    p->flags |= 2;
    for (size_t k = p->last_label; k < p->host_end; k++)
        if (!((u[k] >= '0' && u[k] <= '9') || (u[k] >= 'a' && u[k] <= 'f') || u[k] == 'x'))
            p->flags &= ~2;
    return 1;
}

/* simpleUrl(input): the parts of an absolute http(s) URL that is already in
 * canonical form, or null for anything else (the prelude's full parser then
 * takes it). Canonical: scheme http or https; a host of lower-case labels
 * [a-z0-9-]+ joined by single dots; an optional port of 1 to 5 digits; a path
 * of segments each starting with "/"; an optional query and fragment; every
 * character from the sets below, so nothing needs percent-encoding.
 * Returns [scheme with ":", host, port or undefined, path, query or
 * undefined, fragment or undefined, flags]: flag 1 when a path segment starts
 * with "." or "%2e" (a dot segment to resolve), flag 2 when the last host
 * label has only [0-9a-fx] (it may be an IPv4 number). */
static JSValue nat_simple_url(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val;
    if (argc < 1 || !JS_IsString(argv[0]))
        return JS_NULL;
    size_t n;
    const char *s = JS_ToCStringLen(c, &n, argv[0]);
    if (!s)
        return JS_EXCEPTION;
    simple_url_t p;
    JSValue out = JS_NULL;
    if (!scan_simple_url(s, n, &p))
        goto done;
    out = JS_NewArray(c);
    if (JS_IsException(out))
        goto done;
    JSValue parts[7] = {
        JS_NewStringLen(c, s, p.scheme_end + 1),
        url_part(c, s, p.host_start, p.host_end, 1),
        url_part(c, s, p.port_start, p.port_end, p.has_port),
        url_part(c, s, p.path_start, p.path_end, 1),
        url_part(c, s, p.query_start, p.query_end, p.has_query),
        url_part(c, s, p.frag_start, n, p.has_frag),
        JS_NewInt32(c, p.flags),
    };
    for (uint32_t k = 0; k < 7; k++) {
        if (JS_IsException(parts[k]) || JS_SetPropertyUint32(c, out, k, parts[k]) < 0) {
            for (uint32_t j = k + 1; j < 7; j++)
                JS_FreeValue(c, parts[j]);
            JS_FreeValue(c, out);
            out = JS_EXCEPTION;
            break;
        }
    }
done:
    JS_FreeCString(c, s);
    return out;
}

/* The intrinsic String function (taken before any action runs), for
 * String(value) of a symbol, which ToString refuses. */
static JSValue string_function = JS_UNDEFINED;

/* Append `text` (UTF-8) to the growing string at *out, form-encoded. */
static int append_form(JSContext *c, char **out, size_t *len, size_t *cap, const char *text, size_t n)
{
    size_t need = *len + 3 * n + 2;
    if (need > *cap) {
        size_t cap2 = need * 2;
        char *grown = js_realloc(c, *out, cap2);
        if (!grown)
            return -1;
        *out = grown;
        *cap = cap2;
    }
    *len += pe_write(PE_FORM, text, n, *out + *len);
    return 0;
}

/* redirectUrl(url, query): what the prelude's redirectTarget(url, query)
 * returns, made in one step for the common case: `url` a canonical absolute
 * http(s) URL (see simpleUrl) without port, query or fragment, and `query`
 * undefined or an object, whose own enumerable string-keyed properties are
 * appended in Object.keys order as form-encoded `key=String(value)` pairs,
 * undefined values left out. null for any other `url` (before reading
 * `query`): the prelude then takes its general path. */
static JSValue nat_redirect_url(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val;
    if (argc < 2 || !JS_IsString(argv[0]) || !(JS_IsUndefined(argv[1]) || JS_IsObject(argv[1])))
        return JS_NULL;
    size_t n;
    const char *s = JS_ToCStringLen(c, &n, argv[0]);
    if (!s)
        return JS_EXCEPTION;
    simple_url_t p;
    if (!scan_simple_url(s, n, &p) || p.flags || p.has_port || p.has_query || p.has_frag) {
        JS_FreeCString(c, s);
        return JS_NULL;
    }
    size_t len = 0, cap = n + 64;
    char *out = js_malloc(c, cap);
    JSValue result = JS_EXCEPTION;
    JSPropertyEnum *keys = NULL;
    uint32_t count = 0;
    if (!out)
        goto done;
    memcpy(out, s, n);
    len = n;
    if (p.path_end == p.path_start)
        out[len++] = '/';
    if (JS_IsObject(argv[1])) {
        if (JS_GetOwnPropertyNames(c, &keys, &count, argv[1], JS_GPN_STRING_MASK | JS_GPN_ENUM_ONLY) < 0) {
            keys = NULL;
            goto done;
        }
        int first = 1;
        for (uint32_t k = 0; k < count; k++) {
            JSValue v = JS_GetProperty(c, argv[1], keys[k].atom);
            if (JS_IsException(v))
                goto done;
            if (JS_IsUndefined(v))
                continue;
            JSValue text = JS_IsSymbol(v) ? JS_Call(c, string_function, JS_UNDEFINED, 1, (JSValueConst *)&v)
                                          : JS_ToString(c, v);
            JS_FreeValue(c, v);
            if (JS_IsException(text))
                goto done;
            size_t key_len, value_len;
            const char *key = JS_AtomToCStringLen(c, &key_len, keys[k].atom);
            const char *value = key ? JS_ToCStringLen(c, &value_len, text) : NULL;
            JS_FreeValue(c, text);
            int failed = !key || !value;
            if (!failed) {
                out[len++] = first ? '?' : '&'; /* append_form keeps room for one more byte */
                failed = append_form(c, &out, &len, &cap, key, key_len) ||
                         (out[len++] = '=', append_form(c, &out, &len, &cap, value, value_len));
            }
            JS_FreeCString(c, key);
            JS_FreeCString(c, value);
            if (failed)
                goto done;
            first = 0;
        }
    }
    result = JS_NewStringLen(c, out, len);
done:
    if (keys)
        JS_FreePropertyEnum(c, keys, count);
    js_free(c, out);
    JS_FreeCString(c, s);
    return result;
}

static const JSCFunctionListEntry native_functions[] = {
    JS_CFUNC_DEF("random", 0, nat_random),
    JS_CFUNC_DEF("randomBytes", 1, nat_random_bytes),
    JS_CFUNC_DEF("sha256", 1, nat_sha256),
    JS_CFUNC_DEF("hmacSha256", 2, nat_hmac_sha256),
    JS_CFUNC_DEF("utf8Encode", 1, nat_utf8_encode),
    JS_CFUNC_DEF("utf8Decode", 1, nat_utf8_decode),
    JS_CFUNC_DEF("utf8Length", 1, nat_utf8_length),
    JS_CFUNC_DEF("percentEncode", 2, nat_percent_encode),
    JS_CFUNC_DEF("hexEncode", 1, nat_hex_encode),
    JS_CFUNC_DEF("settleLazy", 2, nat_settle_lazy),
    JS_CFUNC_DEF("inspectPlain", 2, nat_inspect_plain),
    JS_CFUNC_DEF("hexDecode", 1, nat_hex_decode),
    JS_CFUNC_DEF("percentDecode", 2, nat_percent_decode),
    JS_CFUNC_DEF("base64Encode", 2, nat_base64_encode),
    JS_CFUNC_DEF("base64Decode", 1, nat_base64_decode),
    JS_CFUNC_DEF("advanceClock", 1, nat_advance_clock),
    JS_CFUNC_DEF("limit", 1, nat_limit),
    JS_CFUNC_DEF("hostCall", 2, nat_host_call),
    JS_CFUNC_DEF("log", 2, nat_log),
    JS_CFUNC_DEF("command", 1, nat_command),
    JS_CFUNC_DEF("simpleUrl", 1, nat_simple_url),
    JS_CFUNC_DEF("redirectUrl", 2, nat_redirect_url),
    JS_CFUNC_DEF("signJwt", 3, nat_sign_jwt),
};

/* ------------------------------------------------------------------ */
/* Exports                                                             */

TG_EXPORT("tg_status")
uint32_t tg_status_address(void)
{
    return (uint32_t)(uintptr_t)&tg_status;
}

/* Back to the static input buffer, after a call whose input needed a larger
 * one (tg_init's prelude, tg_preload's bytecode): the next call's input goes
 * to the static buffer, where the host writes it. */
static void release_input(void)
{
    if (tg_input != tg_input_static) {
        /* Cleared, the buffer's pages read as they did before it was used:
         * after tg_preload, the host then need not copy them. */
        memset(tg_input, 0, tg_input_cap);
        free(tg_input);
        tg_input = tg_input_static;
        tg_input_cap = TG_INPUT_STATIC_BYTES;
    }
}

/* A buffer of at least `len` bytes for the next input record. */
TG_EXPORT("tg_reserve")
uint32_t tg_reserve(uint32_t len)
{
    if (len > tg_input_cap) {
        uint8_t *p = malloc(len);
        if (!p)
            tg_abort(TG_ABORT_MEMORY);
        tg_input = p;
        tg_input_cap = len;
    }
    return (uint32_t)(uintptr_t)tg_input;
}

static JSValue get_hook(JSValueConst hooks, const char *name)
{
    JSValue f = JS_GetPropertyStr(ctx, hooks, name);
    if (!JS_IsFunction(ctx, f))
        tg_abort(TG_ABORT_INTERNAL);
    return f;
}

static void make_runtime(void)
{
    rt = JS_NewRuntime2(&tg_malloc_functions, NULL);
    if (!rt)
        tg_abort(TG_ABORT_INTERNAL);
    ctx = JS_NewContext(rt);
    if (!ctx)
        tg_abort(TG_ABORT_INTERNAL);
}

/* Once per engine build, in a throwaway instance: compile the prelude source
 * (the input, UTF-8) to bytecode without source text or debug information.
 * Loading that bytecode in tg_init leaves a smaller, less fragmented heap in
 * the snapshot than parsing the source there would. */
TG_EXPORT("tg_prelude_bytecode")
uint32_t tg_prelude_bytecode(uint32_t len)
{
    tg_status.magic = TG_STATUS_MAGIC;
    make_runtime();
    JSValue fn = JS_Eval(ctx, (const char *)tg_input, len, "prelude.js",
                         JS_EVAL_TYPE_GLOBAL | JS_EVAL_FLAG_COMPILE_ONLY);
    if (JS_IsException(fn)) {
        emit_json(JS_GetException(ctx));
        tg_status.fault = 1;
        return (uint32_t)(uintptr_t)&tg_status;
    }
    size_t n;
    uint8_t *bc = JS_WriteObject(ctx, &n, fn, JS_WRITE_OBJ_BYTECODE | JS_WRITE_OBJ_STRIP_SOURCE | JS_WRITE_OBJ_STRIP_DEBUG);
    if (!bc)
        tg_abort(TG_ABORT_MEMORY);
    tg_status.aux_ptr = (uint32_t)(uintptr_t)bc;
    tg_status.aux_len = (uint32_t)n;
    return (uint32_t)(uintptr_t)&tg_status;
}

/* Run the prelude's warm-up execution (see prelude/95_warm.js) and leave
 * no trace of it in the per-execution state. */
/* The event (depth 1) is decoded at once; its members (user, request...)
 * and the maps and arrays inside those (app_metadata, identities, geoip,
 * query...) on first use, when they take more than a few bytes: an action
 * reads a few of them. */
#define LAZY_FROM_DEPTH 2
#define LAZY_TO_DEPTH 3

/* The keys whose lazy accessors are made before the snapshot is taken: the
 * post-login event's members and the maps and lists inside them. */
static const char *const LAZY_KEYS[] = {
    "user", "client", "connection", "request", "authentication", "authorization", "organization",
    "resource_server", "refresh_token", "session", "stats", "tenant", "transaction", "secrets", "prompt",
    "security_context", "app_metadata", "user_metadata", "identities", "multifactor", "enrolledFactors",
    "metadata", "query", "body", "geoip", "methods", "requested_scopes", "response_type", "ui_locales",
    "acr_values", "roles", "permissions", "device", "ja3", "ja4", "scope",
};

static void warm_up(JSValueConst hooks)
{
    JSValue warm = get_hook(hooks, "warm");
    cmd_buf.limit = log_buf.limit = 1 << 20;
    max_commands = 1000;
    JSValue done = JS_Call(ctx, warm, JS_UNDEFINED, 0, NULL);
    JS_FreeValue(ctx, warm);
    if (JS_IsException(done))
        tg_abort(TG_ABORT_INTERNAL);
    drain_jobs();
    JSValue ok = JS_Call(ctx, done, JS_UNDEFINED, 0, NULL);
    JS_FreeValue(ctx, done);
    if (JS_IsException(ok))
        tg_abort(TG_ABORT_INTERNAL);
    free(cmd_buf.data);
    free(log_buf.data);
    memset(&cmd_buf, 0, sizeof(cmd_buf));
    memset(&log_buf, 0, sizeof(log_buf));
    uint32_t input_ptr = tg_status.input_ptr, input_cap = tg_status.input_cap;
    memset(&tg_status, 0, sizeof(tg_status));
    tg_status.magic = TG_STATUS_MAGIC;
    tg_status.input_ptr = input_ptr;
    tg_status.input_cap = input_cap;
    max_commands = 0;
}

/* Once per engine build: the prelude bytecode is the input. It evaluates to
 * a factory that takes the native functions and returns the hooks. */
TG_EXPORT("tg_init")
uint32_t tg_init(uint32_t len)
{
    tg_status.magic = TG_STATUS_MAGIC;
    tg_status.input_ptr = (uint32_t)(uintptr_t)tg_input_static;
    tg_status.input_cap = TG_INPUT_STATIC_BYTES;
    make_runtime();
    JSValue global_object = JS_GetGlobalObject(ctx);
    string_function = JS_GetPropertyStr(ctx, global_object, "String");
    JS_FreeValue(ctx, global_object);
    /* First, so that the accessors sit together on a few pages: an execution
     * reads the pages of those it uses. */
    tg_msgpack_prepare_keys(ctx, LAZY_KEYS, sizeof LAZY_KEYS / sizeof LAZY_KEYS[0]);
    tg_pack_init(ctx);
    tg_inspect_init(ctx);
    pe_init();

    JSValue obj = JS_ReadObject(ctx, tg_input, len, JS_READ_OBJ_BYTECODE);
    if (JS_IsException(obj))
        tg_abort(TG_ABORT_INTERNAL);
    JSValue factory = JS_EvalFunction(ctx, obj);
    if (JS_IsException(factory))
        tg_abort(TG_ABORT_INTERNAL);
    JSValue native = JS_NewObject(ctx);
    JS_SetPropertyFunctionList(ctx, native, native_functions,
                               sizeof(native_functions) / sizeof(native_functions[0]));
    JS_SetPropertyStr(ctx, native, "wrapPrefix", JS_NewInt32(ctx, (int32_t)(sizeof(WRAP_HEAD) - 1)));
    JSValue global = JS_GetGlobalObject(ctx);
    JSValue hooks = JS_Call(ctx, factory, global, 1, (JSValueConst *)&native);
    JS_FreeValue(ctx, global);
    JS_FreeValue(ctx, factory);
    JS_FreeValue(ctx, native);
    if (JS_IsException(hooks))
        tg_abort(TG_ABORT_INTERNAL);
    hook_start = get_hook(hooks, "start");
    hook_tick = get_hook(hooks, "tick");
    hook_finish = get_hook(hooks, "finish");
    hook_check = get_hook(hooks, "check");
    hook_describe = get_hook(hooks, "describeError");
    warm_up(hooks);
    JS_FreeValue(ctx, hooks);
    release_input();
    JS_RunGC(rt);
    return (uint32_t)(uintptr_t)&tg_status;
}

static const tg_input_t *read_input(uint32_t len, uint32_t magic)
{
    if (len < sizeof(tg_input_t) || len > tg_input_cap)
        tg_abort(TG_ABORT_BAD_INPUT);
    const tg_input_t *in = (const tg_input_t *)tg_input;
    if (in->magic != magic)
        tg_abort(TG_ABORT_BAD_INPUT);
    uint64_t need = (uint64_t)sizeof(tg_input_t) + in->code_len + in->request_len;
    if (need > len)
        tg_abort(TG_ABORT_BAD_INPUT);

    memcpy(rng, in->seed, sizeof(rng));
    if (!(rng[0] | rng[1] | rng[2] | rng[3]))
        rng[0] = 1;
    clock_base_ms = in->now_ms;
    clock_offset_ms = 0;
    max_host_calls = in->max_host_calls;
    max_commands = in->max_commands;
    log_buf.limit = in->log_bytes;
    cmd_buf.limit = in->output_bytes;
    /* The allowance starts where a fresh instance's heap ends: an action
     * loaded ahead (tg_preload) counts against it as one loaded in the run. */
    size_t heap_start = heap_used - preload_heap;
    heap_limit = heap_start + in->heap_bytes;
    heap_peak = heap_used;
    /* The instance is thrown away after this call, so garbage collection
     * only matters under memory pressure: collect when a quarter of the
     * allowance is used, not at QuickJS's 256 KiB default (which would
     * sweep the whole prelude heap on the first allocation). */
    JS_SetGCThreshold(rt, heap_start + in->heap_bytes / 4);
    JS_UpdateStackTop(rt);
    JS_SetMaxStackSize(rt, in->stack_bytes);
    return in;
}

/* Hand JSON text to the host through the status block. The hooks return
 * the text already serialised; any other value is serialised here. */
static void emit_json(JSValue v)
{
    JSValue text = v;
    if (!JS_IsString(v)) {
        text = JS_JSONStringify(ctx, v, JS_UNDEFINED, JS_UNDEFINED);
        JS_FreeValue(ctx, v);
    }
    if (JS_IsException(text) || !JS_IsString(text)) {
        JS_FreeValue(ctx, JS_GetException(ctx));
        tg_status.fault = 1;
        static const char msg[] = "\"the action's result could not be serialised\"";
        tg_status.out_ptr = (uint32_t)(uintptr_t)msg;
        tg_status.out_len = sizeof(msg) - 1;
        return;
    }
    size_t n;
    const char *s = JS_ToCStringLen(ctx, &n, text);
    JS_FreeValue(ctx, text);
    if (!s)
        tg_abort(TG_ABORT_MEMORY);
    tg_status.out_ptr = (uint32_t)(uintptr_t)s;
    tg_status.out_len = (uint32_t)n;
}

/* A JS exception escaped the prelude: report it as a fault. */
static void emit_fault(void)
{
    JSValue exc = JS_GetException(ctx);
    JSValue report = JS_Call(ctx, hook_describe, JS_UNDEFINED, 1, (JSValueConst *)&exc);
    JS_FreeValue(ctx, exc);
    if (JS_IsException(report)) {
        JS_FreeValue(ctx, JS_GetException(ctx));
        report = JS_NewString(ctx, "unknown failure");
    }
    emit_json(report);
    tg_status.fault = 1;
}

static void finish_call(void)
{
    tg_status.heap_peak_bytes = (uint32_t)heap_peak;
}


static JSValue decode_request(const char *data, uint32_t len, int lazy)
{
    const char *error;
    JSValue req = lazy ? tg_msgpack_decode_lazy(ctx, (const uint8_t *)data, len, LAZY_FROM_DEPTH, LAZY_TO_DEPTH, &error)
                       : tg_msgpack_decode(ctx, (const uint8_t *)data, len, &error);
    if (JS_IsException(req))
        tg_abort(TG_ABORT_BAD_INPUT);
    return req;
}


/* Compile an action: source text in, bytecode and a JSON report out. */
TG_EXPORT("tg_compile")
uint32_t tg_compile(uint32_t len)
{
    const tg_input_t *in = read_input(len, TG_INPUT_MAGIC_COMPILE);
    const char *source = (const char *)(in + 1);
    const char *request = source + in->code_len;

    size_t head = sizeof(WRAP_HEAD) - 1, tail = sizeof(WRAP_TAIL) - 1;
    size_t wrapped_len = head + in->code_len + tail;
    char *wrapped = js_malloc(ctx, wrapped_len + 1);
    if (!wrapped)
        tg_abort(TG_ABORT_MEMORY);
    memcpy(wrapped, WRAP_HEAD, head);
    memcpy(wrapped + head, source, in->code_len);
    memcpy(wrapped + head + in->code_len, WRAP_TAIL, tail + 1);

    JSValue fn = JS_Eval(ctx, wrapped, wrapped_len, "action.js",
                         JS_EVAL_TYPE_GLOBAL | JS_EVAL_FLAG_COMPILE_ONLY);
    js_free(ctx, wrapped);
    if (JS_IsException(fn)) {
        JSValue exc = JS_GetException(ctx);
        JSValue args[2] = {exc, JS_NewInt32(ctx, (int32_t)head)};
        JSValue report = JS_Call(ctx, hook_describe, JS_UNDEFINED, 2, (JSValueConst *)args);
        JS_FreeValue(ctx, exc);
        if (JS_IsException(report))
            emit_fault();
        else
            emit_json(report);
        finish_call();
        return (uint32_t)(uintptr_t)&tg_status;
    }

    size_t bc_len;
    uint8_t *bc = JS_WriteObject(ctx, &bc_len, fn, JS_WRITE_OBJ_BYTECODE);
    if (!bc)
        tg_abort(TG_ABORT_MEMORY);
    tg_status.aux_ptr = (uint32_t)(uintptr_t)bc;
    tg_status.aux_len = (uint32_t)bc_len;

    JSValue wrapper = JS_EvalFunction(ctx, fn);
    if (JS_IsException(wrapper)) {
        emit_fault();
        finish_call();
        return (uint32_t)(uintptr_t)&tg_status;
    }
    JSValue req = decode_request(request, in->request_len, 0);
    JSValue args[2] = {wrapper, req};
    JSValue report = JS_Call(ctx, hook_check, JS_UNDEFINED, 2, (JSValueConst *)args);
    JS_FreeValue(ctx, wrapper);
    JS_FreeValue(ctx, req);
    if (JS_IsException(report))
        emit_fault();
    else
        emit_json(report);
    finish_call();
    return (uint32_t)(uintptr_t)&tg_status;
}

static void drain_jobs(void)
{
    JSContext *job_ctx;
    for (;;) {
        int r = JS_ExecutePendingJob(rt, &job_ctx);
        if (r == 0)
            break;
        if (r < 0)
            JS_FreeValue(ctx, JS_GetException(ctx));
    }
}

/* The action's module wrapper, when tg_preload made it (see there). */
static JSValue preloaded = JS_UNDEFINED;

/* An action's bytecode in, its module wrapper made (not called: none of the
 * action's own code runs). The host runs this once per action in a fresh
 * instance and keeps the memory pages it changed; it then copies those pages
 * into each fresh instance that runs the action, and tg_run (with no code in
 * its input) finds the wrapper here instead of reading the bytecode again.
 * What the pages hold depends on the engine build and the bytecode only. */
TG_EXPORT("tg_preload")
uint32_t tg_preload(uint32_t len)
{
    const tg_input_t *in = read_input(len, TG_INPUT_MAGIC_PRELOAD);
    size_t heap_before = heap_used;
    JSValue obj = JS_ReadObject(ctx, (const uint8_t *)(in + 1), in->code_len, JS_READ_OBJ_BYTECODE);
    if (JS_IsException(obj))
        tg_abort(TG_ABORT_BAD_INPUT);
    JSValue wrapper = JS_EvalFunction(ctx, obj);
    if (JS_IsException(wrapper))
        tg_abort(TG_ABORT_BAD_INPUT);
    preloaded = wrapper;
    preload_heap = heap_used > heap_before ? heap_used - heap_before : 0;
    release_input();
    /* The status block is left as a fresh instance has it: a run that
     * traps reports what it did, not what this call did. */
    return (uint32_t)(uintptr_t)&tg_status;
}

/* Run one handler of an action: bytecode (or none, after tg_preload) and a
 * msgpack request in, a JSON result out. The request holds the handler
 * name, the event and the execution's context; see
 * runtime/sandbox/_protocol.py. */
TG_EXPORT("tg_run")
uint32_t tg_run(uint32_t len)
{
    const tg_input_t *in = read_input(len, TG_INPUT_MAGIC_RUN);
    const uint8_t *code = (const uint8_t *)(in + 1);
    const char *request = (const char *)code + in->code_len;

    JSValue wrapper = preloaded;
    if (in->code_len) {
        JSValue obj = JS_ReadObject(ctx, code, in->code_len, JS_READ_OBJ_BYTECODE);
        if (JS_IsException(obj))
            tg_abort(TG_ABORT_BAD_INPUT);
        wrapper = JS_EvalFunction(ctx, obj);
        if (JS_IsException(wrapper)) {
            emit_fault();
            finish_call();
            return (uint32_t)(uintptr_t)&tg_status;
        }
    } else if (!JS_IsFunction(ctx, wrapper)) {
        tg_abort(TG_ABORT_BAD_INPUT); /* no code, and none preloaded */
    }
    JSValue req = decode_request(request, in->request_len, 1);

    JSValue args[2] = {wrapper, req};
    JSValue r = JS_Call(ctx, hook_start, JS_UNDEFINED, 2, (JSValueConst *)args);
    /* The wrapper and the request are not freed: the instance is dropped
     * after this call, and freeing them would only walk the action's code
     * and the whole event to release memory nobody will use again. */
    if (JS_IsException(r)) {
        emit_fault();
        finish_call();
        return (uint32_t)(uintptr_t)&tg_status;
    }
    JS_FreeValue(ctx, r);

    for (;;) {
        drain_jobs();
        JSValue more = JS_Call(ctx, hook_tick, JS_UNDEFINED, 0, NULL);
        if (JS_IsException(more)) {
            emit_fault();
            finish_call();
            return (uint32_t)(uintptr_t)&tg_status;
        }
        int go_on = JS_ToBool(ctx, more);
        JS_FreeValue(ctx, more);
        if (go_on <= 0)
            break;
    }

    JSValue result = JS_Call(ctx, hook_finish, JS_UNDEFINED, 0, NULL);
    if (JS_IsException(result))
        emit_fault();
    else
        emit_json(result);
    finish_call();
    return (uint32_t)(uintptr_t)&tg_status;
}
