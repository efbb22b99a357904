// api.cache: the host hands the tenant's live entries for the trigger to the
// execution with its request; get/set/delete work on that copy and the
// changes come back as commands that the host applies. No crossing at all.
// Built once before the snapshot; resetCache() loads an execution's entries.

const CACHE_KEY_BYTES = 64;
const CACHE_VALUE_BYTES = 4096;
const CACHE_MAX_ENTRIES = 20;
const CACHE_TOTAL_BYTES = 8192;
const CACHE_DEFAULT_TTL_MS = 15 * 60 * 1000;
const CACHE_MAX_TTL_MS = 24 * 60 * 60 * 1000;
const CACHE_MAX_SIDE_EFFECTS = 20;

const cacheState = { entries: new MapCtor(), sideEffects: 0 };

function resetCache(initial) {
  const entries = new MapCtor();
  if (isPlainRecord(initial)) {
    for (const key of ObjectKeys(initial)) {
      const e = initial[key];
      if (isObject(e) && typeof e.value === 'string' && typeof e.expires_at === 'number')
        entries.set(key, { value: e.value, expires_at: e.expires_at });
    }
  }
  cacheState.entries = entries;
  cacheState.sideEffects = 0;
}

function makeCache() {
  const live = (key) => {
    const e = cacheState.entries.get(key);
    if (e === undefined) return undefined;
    if (e.expires_at <= DateNow()) {
      cacheState.entries.delete(key);
      return undefined;
    }
    return e;
  };
  const error = (code) => ({ type: 'error', code });

  return {
    get(key) {
      const e = live(String(key));
      return e === undefined ? undefined : { value: e.value, expires_at: e.expires_at };
    },
    set(key, value, options) {
      key = String(key);
      if (typeof value !== 'string') throw new TypeErrorCtor('api.cache.set() stores string values');
      if (utf8Length(key) > CACHE_KEY_BYTES) return error('CacheKeySizeExceeded');
      if (utf8Length(value) > CACHE_VALUE_BYTES) return error('CacheValueSizeExceeded');
      if (cacheState.sideEffects >= CACHE_MAX_SIDE_EFFECTS) return error('MaxSideEffectsExceeded');
      const now = DateNow();
      const opts = isObject(options) ? options : {};
      let expiresAt = Infinity;
      if (opts.ttl !== undefined) {
        if (typeof opts.ttl !== 'number' || !NumberIsFinite(opts.ttl)) return error('InvalidExpiry');
        expiresAt = now + opts.ttl;
      }
      if (opts.expires_at !== undefined) {
        if (typeof opts.expires_at !== 'number' || !NumberIsFinite(opts.expires_at)) return error('InvalidExpiry');
        expiresAt = MathMin(expiresAt, opts.expires_at);
      }
      if (expiresAt === Infinity) expiresAt = now + CACHE_DEFAULT_TTL_MS;
      expiresAt = MathFloor(expiresAt);
      if (expiresAt <= now) return error('ItemAlreadyExpired');
      if (expiresAt > now + CACHE_MAX_TTL_MS) return error('InvalidExpiry');
      let count = 1;
      let total = utf8Length(key) + utf8Length(value);
      for (const k of Array.from(cacheState.entries.keys())) {
        if (k === key || live(k) === undefined) continue;
        count++;
        total += utf8Length(k) + utf8Length(cacheState.entries.get(k).value);
      }
      if (count > CACHE_MAX_ENTRIES || total > CACHE_TOTAL_BYTES) return error('CacheSizeExceeded');
      cacheState.sideEffects++;
      cacheState.entries.set(key, { value, expires_at: expiresAt });
      recordCommand({ type: 'cache_set', key, value, expires_at: expiresAt });
      return { type: 'success', record: { value, expires_at: expiresAt } };
    },
    delete(key) {
      key = String(key);
      const e = live(key);
      if (e === undefined) return error('CacheKeyDoesNotExist');
      if (cacheState.sideEffects >= CACHE_MAX_SIDE_EFFECTS) return error('MaxSideEffectsExceeded');
      cacheState.sideEffects++;
      cacheState.entries.delete(key);
      recordCommand({ type: 'cache_delete', key });
      return { type: 'success', record: { value: e.value, expires_at: e.expires_at } };
    },
  };
}
