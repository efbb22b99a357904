/*
 * The hot path of one execution, on the host: make a store and an instance,
 * copy the input in, make the one guest call, read the fuel left. Python
 * (runtime/sandbox/_wasmtime.py) calls these two functions instead of a
 * dozen of wasmtime's C functions one by one: each foreign call from Python
 * costs about half a microsecond of argument conversion, and an execution
 * made some twenty.
 *
 * This file is built for the host (not the guest) by the engine build. It
 * links against nothing: wasmtime's functions arrive as pointers in
 * `tg_api`, taken from the wasmtime library that wasmtime-py loaded, whose
 * version the project pins. The sizes of wasmtime's C structures come from
 * wasmtime-py's own definitions and are checked against the room kept for
 * them here (tg_check).
 *
 * The epoch ticker is here too: a thread of its own that advances the
 * engine's epoch (the clock a store's wall-time deadline counts in) while
 * guest code may run. It never takes Python's interpreter lock, so a tick
 * neither waits for the executor's Python code nor interrupts it.
 *
 * Everything the guest controls (the size of its memory, where its input
 * buffer is) is checked before it is used: a copy into guest memory never
 * runs past the memory's end.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void *(*store_new_fn)(void *engine, void *data, void *finalizer);
typedef void *(*store_context_fn)(void *store);
typedef void (*store_limiter_fn)(void *store, int64_t memory_size, int64_t table_elements, int64_t instances,
                                 int64_t tables, int64_t memories);
typedef void *(*set_fuel_fn)(void *ctx, uint64_t fuel);
typedef void *(*get_fuel_fn)(void *ctx, uint64_t *fuel);
typedef void (*set_epoch_deadline_fn)(void *ctx, uint64_t ticks);
typedef void *(*pre_instantiate_fn)(void *pre, void *ctx, void *instance, void **trap);
typedef int (*export_get_fn)(void *ctx, const void *instance, const char *name, size_t name_len, void *item);
typedef uint8_t *(*memory_data_fn)(const void *ctx, const void *memory);
typedef size_t (*memory_data_size_fn)(const void *ctx, const void *memory);
typedef void *(*call_unchecked_fn)(void *ctx, const void *func, void *args, size_t nargs, void **trap);
typedef void *(*memory_grow_fn)(void *ctx, const void *memory, uint64_t delta_pages, uint64_t *previous_pages);
typedef void (*increment_epoch_fn)(void *engine);

/* The epoch ticker of one engine: every `tick_ms` it advances the epoch,
 * while a guest call runs and for `linger` ticks after the last one; then it
 * sleeps until the next call starts, so an idle process is never woken. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    increment_epoch_fn increment;
    void *engine;
    uint32_t tick_ms;
    uint32_t linger;
    int64_t calls;   /* guest calls in progress, on any thread */
    int asleep;
    int closing;
} tg_ticker;

/* Room for wasmtime's structures; tg_check says whether the real sizes fit. */
#define TG_INSTANCE_ROOM 32
#define TG_EXTERN_ROOM 64
#define TG_ARG_SLOTS 4
#define TG_ARG_BYTES 16
#define TG_PAGE_BYTES 4096
#define TG_WASM_PAGE_BYTES 65536

/* Set once per process. */
typedef struct {
    store_new_fn store_new;
    store_context_fn store_context;
    store_limiter_fn store_limiter;
    set_fuel_fn set_fuel;
    get_fuel_fn get_fuel;
    set_epoch_deadline_fn set_epoch_deadline;
    pre_instantiate_fn pre_instantiate;
    export_get_fn export_get;
    memory_data_fn memory_data;
    memory_data_size_fn memory_data_size;
    call_unchecked_fn call_unchecked;
    memory_grow_fn memory_grow;
    void *engine;
    void *pre;
    uint64_t extern_of_offset; /* where wasmtime_extern_t's union starts */
    tg_ticker *ticker;         /* told when each guest call starts and ends (NULL: nobody) */
} tg_api;

/* One instance. The caller sets the first three fields; tg_open fills the rest. */
typedef struct {
    uint64_t fuel;
    uint64_t epoch_ticks;
    int64_t memory_bytes;
    void *store;
    void *ctx;
    uint8_t *base;     /* the linear memory's base address */
    uint64_t size;     /* and its size in bytes, both as of the last call */
    void *error;       /* a wasmtime_error_t* when a step failed */
    void *trap;        /* a wasm_trap_t* when the guest trapped */
    uint64_t fuel_left;
    uint32_t result;   /* the guest call's i32 result */
    uint32_t step;     /* which step failed (TG_STEP_*) */
    /* Whole pages (TG_PAGE_BYTES each, `page_count` of them, one after the
     * other) that tg_open copies into the new instance's memory, page
     * `page_index[i]` from the i-th: an action loaded ahead (see tg_preload
     * in the shim). NULL for none. */
    const uint8_t *pages;
    const uint32_t *page_index;
    uint64_t page_count;
    uint64_t memory_needed; /* bytes the memory must have for them (grown first) */
    uint8_t instance[TG_INSTANCE_ROOM];
    uint8_t memory[TG_EXTERN_ROOM];
    uint8_t func[TG_EXTERN_ROOM];
    uint8_t args[TG_ARG_SLOTS * TG_ARG_BYTES];
} tg_instance;

enum {
    TG_OK = 0,
    TG_FAILED = 1,   /* wasmtime refused: `error` is set */
    TG_TRAPPED = 2,  /* the guest trapped: `trap` is set */
    TG_REFUSED = 3,  /* no such export, or the input does not fit the memory */
};

enum {
    TG_STEP_FUEL = 1,
    TG_STEP_INSTANTIATE = 2,
    TG_STEP_MEMORY = 3,
    TG_STEP_EXPORT = 4,
    TG_STEP_CALL = 5,
    TG_STEP_INPUT = 6,
    TG_STEP_PAGES = 7,
};

/* 1 when wasmtime's structures (sizes from wasmtime-py) fit the room kept
 * here, and the caller's idea of tg_instance is this file's. */
int tg_check(uint64_t instance_size, uint64_t extern_size, uint64_t val_raw_size, uint64_t state_size,
             uint64_t args_offset) {
    return instance_size <= TG_INSTANCE_ROOM && extern_size <= TG_EXTERN_ROOM && val_raw_size == TG_ARG_BYTES &&
           state_size == sizeof(tg_instance) && args_offset == offsetof(tg_instance, args);
}

static void *tick(void *arg) {
    tg_ticker *t = arg;
    struct timespec period = {t->tick_ms / 1000, (long)(t->tick_ms % 1000) * 1000000L};
    pthread_mutex_lock(&t->lock);
    uint32_t quiet = t->linger; /* nothing has run yet: asleep at once */
    while (!t->closing) {
        if (t->calls == 0 && quiet >= t->linger) {
            t->asleep = 1;
            pthread_cond_wait(&t->wake, &t->lock);
            t->asleep = 0;
            quiet = 0;
            continue;
        }
        pthread_mutex_unlock(&t->lock);
        nanosleep(&period, NULL);
        t->increment(t->engine);
        pthread_mutex_lock(&t->lock);
        quiet = t->calls ? 0 : quiet + 1;
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

/* Start the ticker of `engine` (asleep until the first call); NULL if no thread could be made. */
tg_ticker *tg_ticker_start(void *engine, increment_epoch_fn increment, uint32_t tick_ms, uint32_t linger) {
    tg_ticker *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->engine = engine;
    t->increment = increment;
    t->tick_ms = tick_ms ? tick_ms : 1;
    t->linger = linger;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->wake, NULL);
    if (pthread_create(&t->thread, NULL, tick, t) != 0) {
        pthread_cond_destroy(&t->wake);
        pthread_mutex_destroy(&t->lock);
        free(t);
        return NULL;
    }
    pthread_setname_np(t->thread, "tollgate-epoch"); /* as `top -H` shows it */
    return t;
}

/* Ticks to go on for once no call runs (takes effect from the next tick). */
void tg_ticker_set_linger(tg_ticker *t, uint32_t linger) {
    pthread_mutex_lock(&t->lock);
    t->linger = linger;
    pthread_mutex_unlock(&t->lock);
}

/* 1 while the ticker sleeps for want of guest calls. */
int tg_ticker_asleep(tg_ticker *t) {
    pthread_mutex_lock(&t->lock);
    int asleep = t->asleep && t->calls == 0;
    pthread_mutex_unlock(&t->lock);
    return asleep;
}

/* Stop the ticker, wait for its thread (at most a tick) and free it. */
void tg_ticker_stop(tg_ticker *t) {
    pthread_mutex_lock(&t->lock);
    t->closing = 1;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static void call_starts(tg_ticker *t) {
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    if (t->calls++ == 0 && t->asleep)
        pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
}

static void call_ends(tg_ticker *t) {
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    t->calls--;
    pthread_mutex_unlock(&t->lock);
}

static int fail(tg_instance *inst, uint32_t step, int code) {
    inst->step = step;
    return code;
}

static void refresh(const tg_api *api, tg_instance *inst) {
    const void *memory = inst->memory + api->extern_of_offset;
    inst->size = api->memory_data_size(inst->ctx, memory);
    inst->base = api->memory_data(inst->ctx, memory);
}

/* A fresh store with its limits, an instance from the pre-instance, its
 * memory, and the pages given (if any) copied in, the memory grown for them
 * first if need be (within the store's limit). */
int tg_open(const tg_api *api, tg_instance *inst) {
    inst->error = NULL;
    inst->trap = NULL;
    inst->store = api->store_new(api->engine, NULL, NULL);
    inst->ctx = api->store_context(inst->store);
    api->store_limiter(inst->store, inst->memory_bytes, -1, 1, -1, 1);
    inst->error = api->set_fuel(inst->ctx, inst->fuel);
    if (inst->error)
        return fail(inst, TG_STEP_FUEL, TG_FAILED);
    api->set_epoch_deadline(inst->ctx, inst->epoch_ticks);
    inst->error = api->pre_instantiate(api->pre, inst->ctx, inst->instance, &inst->trap);
    if (inst->error)
        return fail(inst, TG_STEP_INSTANTIATE, TG_FAILED);
    if (inst->trap)
        return fail(inst, TG_STEP_INSTANTIATE, TG_TRAPPED);
    if (!api->export_get(inst->ctx, inst->instance, "memory", 6, inst->memory))
        return fail(inst, TG_STEP_MEMORY, TG_REFUSED);
    refresh(api, inst);
    if (inst->pages && inst->memory_needed > inst->size) {
        uint64_t grow = (inst->memory_needed - inst->size + TG_WASM_PAGE_BYTES - 1) / TG_WASM_PAGE_BYTES, previous;
        inst->error = api->memory_grow(inst->ctx, inst->memory + api->extern_of_offset, grow, &previous);
        if (inst->error)
            return fail(inst, TG_STEP_PAGES, TG_FAILED);
        refresh(api, inst);
    }
    for (uint64_t i = 0; inst->pages && i < inst->page_count; i++) {
        uint64_t at = (uint64_t)inst->page_index[i] * TG_PAGE_BYTES;
        if (at + TG_PAGE_BYTES > inst->size)
            return fail(inst, TG_STEP_PAGES, TG_REFUSED);
        memcpy(inst->base + at, inst->pages + i * TG_PAGE_BYTES, TG_PAGE_BYTES);
    }
    return TG_OK;
}

static int call(const tg_api *api, tg_instance *inst, const char *name, size_t name_len, int has_arg, uint32_t arg) {
    if (!api->export_get(inst->ctx, inst->instance, name, name_len, inst->func))
        return fail(inst, TG_STEP_EXPORT, TG_REFUSED);
    memset(inst->args, 0, sizeof inst->args);
    if (has_arg)
        memcpy(inst->args, &arg, sizeof arg);
    inst->trap = NULL;
    call_starts(api->ticker);
    inst->error = api->call_unchecked(inst->ctx, inst->func + api->extern_of_offset, inst->args, TG_ARG_SLOTS,
                                      &inst->trap);
    call_ends(api->ticker);
    refresh(api, inst); /* the call may have grown the memory */
    api->get_fuel(inst->ctx, &inst->fuel_left);
    if (inst->error)
        return fail(inst, TG_STEP_CALL, TG_FAILED);
    if (inst->trap)
        return fail(inst, TG_STEP_CALL, TG_TRAPPED);
    memcpy(&inst->result, inst->args, sizeof inst->result);
    return TG_OK;
}

/*
 * Call export `name` with one i32 argument (has_arg) or none. With `input`,
 * first copy it into the guest: at `input_at`, or, when `input_at` is 0, in
 * a buffer the guest's `tg_reserve` export gives; the argument is then the
 * input's length.
 */
int tg_call(const tg_api *api, tg_instance *inst, const char *name, size_t name_len, int has_arg, uint32_t arg,
            const uint8_t *input, uint64_t input_len, uint32_t input_at) {
    inst->step = 0;
    if (input) {
        if (input_len > UINT32_MAX)
            return fail(inst, TG_STEP_INPUT, TG_REFUSED);
        if (input_at == 0) {
            int rc = call(api, inst, "tg_reserve", 10, 1, (uint32_t)input_len);
            if (rc != TG_OK)
                return rc;
            input_at = inst->result;
            if (input_at == 0)
                return fail(inst, TG_STEP_INPUT, TG_REFUSED);
        }
        if ((uint64_t)input_at + input_len > inst->size)
            return fail(inst, TG_STEP_INPUT, TG_REFUSED);
        memcpy(inst->base + input_at, input, input_len);
        has_arg = 1;
        arg = (uint32_t)input_len;
    }
    return call(api, inst, name, name_len, has_arg, arg);
}

