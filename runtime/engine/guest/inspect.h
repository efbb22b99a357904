#ifndef TOLLGATE_INSPECT_H
#define TOLLGATE_INSPECT_H

#include "quickjs.h"

/* Once per engine build, before any action runs: learn the intrinsic
 * prototypes and class ids that make a value plain data. */
void tg_inspect_init(JSContext *ctx);

/* What the prelude's util.inspect (prelude/10_inspect.js) writes for `value`
 * at `depth`, when the value is plain data: strings, numbers, booleans,
 * null, undefined, and ordinary objects and arrays of those (the event's
 * members not read yet are read first). JS_NULL for anything else, before
 * any output: the prelude's inspect then takes the value. */
JSValue tg_inspect_plain(JSContext *ctx, JSValueConst value, int depth);

#endif
