#ifndef TOLLGATE_MSGPACK_H
#define TOLLGATE_MSGPACK_H

#include <stddef.h>
#include <stdint.h>

#include "quickjs.h"

/* Decode one msgpack value from `data`; JS_EXCEPTION with `*error` set (or
 * a pending JS exception, when QuickJS itself failed) on bad input. */
JSValue tg_msgpack_decode(JSContext *ctx, const uint8_t *data, size_t len, const char **error);

#endif
