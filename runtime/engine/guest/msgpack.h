#ifndef TOLLGATE_MSGPACK_H
#define TOLLGATE_MSGPACK_H

#include <stddef.h>
#include <stdint.h>

#include "quickjs.h"

/* Decode one msgpack value from `data`; JS_EXCEPTION with `*error` set (or
 * a pending JS exception, when QuickJS itself failed) on bad input. */
JSValue tg_msgpack_decode(JSContext *ctx, const uint8_t *data, size_t len, const char **error);

/* The same, with maps and arrays found at depths lazy_from..lazy_to (the
 * root is depth 0) decoded on first access. `data` must stay valid while
 * the values are in use. */
JSValue tg_msgpack_decode_lazy(JSContext *ctx, const uint8_t *data, size_t len, int lazy_from, int lazy_to,
                               const char **error);

/* If `key` of `obj` is a lazy property still waiting to be read, read it now
 * (it becomes a plain data property) and return 1; 0 for any other property
 * (one the action has since replaced included), -1 with an exception. */
int tg_msgpack_settle(JSContext *ctx, JSValueConst obj, JSAtom key);

/* Make the shared accessors of lazy properties for these keys now (before
 * the snapshot is taken), so that executions need not. */
void tg_msgpack_prepare_keys(JSContext *ctx, const char *const *keys, size_t count);

#endif
