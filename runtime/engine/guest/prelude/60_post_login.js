// The post-login (v3) `api`. Every method checks its arguments the way the
// hosted product does, records a command and returns `api` where the
// product's does. Commands are applied by the host after the execution,
// which checks them again against the trigger's rules.
//
// The api is built once, before the snapshot: every execution starts from a
// pristine copy of it, so building it per execution would only cost time.
// What differs per execution (the event, the handler) is read from `ctx`,
// which start() fills in.

const NON_INTERACTIVE_PROTOCOLS = ['oauth2-resource-owner', 'oauth2-refresh-token', 'oauth2-password', 'oauth2-webauthn'];
const MFA_PROVIDERS = ['any', 'none', 'guardian', 'google-authenticator', 'duo'];
const FACTOR_TYPES = [
  'otp', 'email', 'phone', 'push', 'push-notification', 'webauthn-platform', 'webauthn-roaming', 'recovery-code',
];
const SCOPE_PATTERN = /^[^\s]{1,280}$/;
const MAX_SCOPE_CHANGES = 2000;
const RECORD_METHOD_MAX_URL = 2048;
const TX_METADATA_KEY_CHARS = 64;
const TX_METADATA_VALUE_BYTES = 8 * 1024;
const TX_METADATA_TOTAL_BYTES = 16 * 1024;
const SESSION_METADATA_KEYS = 25;
const SESSION_METADATA_CHARS = 255;
const SESSION_METADATA_KEY = /^[a-zA-Z0-9_-]+$/;
const PRIMARY_USER_MAX_CHARS = 128;

function requireString(value, what) {
  if (typeof value !== 'string') throw new TypeErrorCtor(`${what} must be a string`);
  return value;
}

function isInteractive(event) {
  const request = event.request || {};
  const query = isPlainRecord(request.query) ? request.query : {};
  if (query.prompt === 'none') return false;
  const protocol = event.transaction && event.transaction.protocol;
  return NON_INTERACTIVE_PROTOCOLS.indexOf(protocol) === -1;
}

function checkFactor(factor, method) {
  if (!isObject(factor) || FACTOR_TYPES.indexOf(factor.type) === -1)
    throw new TypeErrorCtor(`api.authentication.${method}() needs factors of a known type (${FACTOR_TYPES.join(', ')})`);
  const out = { type: factor.type };
  if (factor.options !== undefined) out.options = factor.options;
  return out;
}

function checkFactorList(factors, method) {
  if (!ArrayIsArray(factors) || factors.length === 0)
    throw new TypeErrorCtor(`api.authentication.${method}() needs a non-empty array of factors`);
  return factors.map((f) => checkFactor(f, method));
}

// JSON values only; the shim refuses (with a TypeError) what JSON cannot hold.
const jsonValue = (value) => (value === undefined ? null : value);

// Session and refresh-token metadata share one rule set.
function metadataStore(holder, what) {
  const check = (key) => {
    if (holder() === undefined) throw new ErrorCtor(`There is no ${what} in this transaction`);
    requireString(key, `The ${what} metadata key`);
    if (key.length > SESSION_METADATA_CHARS || !(SESSION_METADATA_KEY).test(key))
      throw new TypeErrorCtor(`The ${what} metadata key must be 1 to ${SESSION_METADATA_CHARS} characters of [a-zA-Z0-9_-]`);
    const h = holder();
    if (!isPlainRecord(h.metadata)) h.metadata = {};
    return h.metadata;
  };
  return {
    set(key, value) {
      const md = check(key);
      if (value === null) {
        delete md[key];
        return;
      }
      requireString(value, `The ${what} metadata value`);
      if (value.length > SESSION_METADATA_CHARS || value.indexOf('\u0000') !== -1)
        throw new TypeErrorCtor(`The ${what} metadata value must be at most ${SESSION_METADATA_CHARS} characters, without NUL`);
      if (!hasOwn(md, key) && ObjectKeys(md).length >= SESSION_METADATA_KEYS)
        throw new RangeErrorCtor(`The ${what} metadata holds at most ${SESSION_METADATA_KEYS} keys`);
      md[key] = value;
    },
    remove(key) {
      delete check(key)[key];
    },
    evict() {
      if (holder() === undefined) throw new ErrorCtor(`There is no ${what} in this transaction`);
      holder().metadata = {};
    },
  };
}

function checkEpochMs(value, what) {
  if (typeof value !== 'number' || !NumberIsFinite(value) || value <= 0)
    throw new TypeErrorCtor(`${what} must be a time in milliseconds since the epoch`);
  return value;
}

function transactionMetadata(event) {
  if (!isPlainRecord(event.transaction)) event.transaction = {};
  if (!isPlainRecord(event.transaction.metadata)) event.transaction.metadata = {};
  return event.transaction.metadata;
}

function setTransactionMetadata(event, key, value) {
  requireString(key, 'The transaction metadata key');
  if (key.length === 0 || key.length > TX_METADATA_KEY_CHARS)
    throw new TypeErrorCtor(`The transaction metadata key must be 1 to ${TX_METADATA_KEY_CHARS} characters`);
  const md = transactionMetadata(event);
  if (value === null || value === undefined) {
    delete md[key];
    return null;
  }
  const t = typeof value;
  if (t !== 'string' && t !== 'number' && t !== 'boolean')
    throw new TypeErrorCtor('Transaction metadata values must be strings, numbers or booleans');
  if (t === 'number' && (!NumberIsFinite(value) || (NumberIsInteger(value) && !NumberIsSafeInteger(value))))
    throw new RangeErrorCtor('Transaction metadata numbers must be finite and integers must be safe integers');
  if (t === 'string' && utf8Length(value) > TX_METADATA_VALUE_BYTES)
    throw new RangeErrorCtor(`A transaction metadata value must be at most ${TX_METADATA_VALUE_BYTES} bytes`);
  const next = { ...md, [key]: value };
  if (utf8Length(JSONStringify(next)) > TX_METADATA_TOTAL_BYTES)
    throw new RangeErrorCtor(`Transaction metadata must stay within ${TX_METADATA_TOTAL_BYTES} bytes in total`);
  md[key] = value;
  return value;
}

// The URL sendUserTo sends the browser to: `url` with each `query` entry set
// (replacing a parameter of the same name, as URLSearchParams.set does).
function redirectTarget(url, query) {
  // A canonical https URL without query (the usual target) is made in one native step.
  const made = native.redirectUrl(url, query);
  if (made !== null) return made;
  const target = new URL(url);
  if (query === undefined) return target.href;
  if (!isObject(query)) throw new TypeErrorCtor('The "query" option must be an object');
  const keys = ObjectKeys(query);
  if (target._record.query === null) {
    // Form-encoded text needs no further encoding: append it as it is.
    let text = '';
    for (const key of keys) {
      const v = query[key];
      if (v !== undefined) text += (text ? '&' : '') + formEncode(key) + '=' + formEncode(String(v));
    }
    const record = target._record;
    if (!text) return serializeURL(record, false);
    // The query goes before the fragment, an empty one ("#") included.
    return serializeURL(record, true) + '?' + text + (record.fragment === null ? '' : '#' + record.fragment);
  }
  for (const key of keys) {
    const v = query[key];
    if (v !== undefined) target.searchParams.set(key, String(v));
  }
  return target.href;
}

function makePostLoginApi(ctx) {
  const api = {};
  // Every api method takes at most three arguments; a fixed arity is much
  // cheaper in QuickJS than rest arguments and Reflect.apply.
  const chain = (fn) => (a, b, c) => {
    fn(a, b, c);
    return api;
  };

  const scopeChange = (token, type, scope) => {
    if (typeof scope !== 'string' || !(SCOPE_PATTERN).test(scope))
      throw new TypeErrorCtor('A scope must be 1 to 280 characters without whitespace');
    if (++ctx.scopeChanges > MAX_SCOPE_CHANGES) throw new RangeErrorCtor(`At most ${MAX_SCOPE_CHANGES} scope changes are allowed`);
    recordCommand({ type, token, scope });
  };
  const tokenApi = (token) => ({
    setCustomClaim: chain((key, value) => {
      requireString(key, 'The claim name');
      recordCommand({ type: 'set_claim', token, key, value: jsonValue(value) });
    }),
    addScope: chain((scope) => scopeChange(token, 'add_scope', scope)),
    removeScope: chain((scope) => scopeChange(token, 'remove_scope', scope)),
  });

  api.access = {
    deny: chain((reason) => {
      recordCommand({ type: 'deny', reason: reason === undefined ? '' : String(reason) });
    }),
  };
  api.accessToken = tokenApi('access');
  api.idToken = tokenApi('id');

  api.authentication = {
    challengeWith: chain((factor, options) => {
      const additional = isObject(options) && options.additionalFactors !== undefined
        ? checkFactorList(options.additionalFactors, 'challengeWith') : [];
      recordCommand({ type: 'challenge_with', factor: checkFactor(factor, 'challengeWith'), additional_factors: additional });
    }),
    challengeWithAny: chain((factors) => {
      recordCommand({ type: 'challenge_with_any', factors: checkFactorList(factors, 'challengeWithAny') });
    }),
    enrollWith: chain((factor, options) => {
      const additional = isObject(options) && options.additionalFactors !== undefined
        ? checkFactorList(options.additionalFactors, 'enrollWith') : [];
      recordCommand({ type: 'enroll_with', factor: checkFactor(factor, 'enrollWith'), additional_factors: additional });
    }),
    enrollWithAny: chain((factors) => {
      recordCommand({ type: 'enroll_with_any', factors: checkFactorList(factors, 'enrollWithAny') });
    }),
    recordMethod: chain((url) => {
      if (ctx.handler !== 'onContinuePostLogin')
        throw new ErrorCtor(
          'api.authentication.recordMethod() can only be called in onContinuePostLogin, after the user returns from a redirect',
        );
      let parsed = null;
      if (typeof url === 'string' && url.length <= RECORD_METHOD_MAX_URL) parsed = URL.parse(url);
      if (!parsed || parsed.protocol !== 'https:')
        throw new TypeErrorCtor(
          `api.authentication.recordMethod() needs an absolute https URL of at most ${RECORD_METHOD_MAX_URL} characters`,
        );
      recordCommand({ type: 'record_method', url: parsed.href });
    }),
    setPrimaryUser: chain((userId) => {
      if (typeof userId !== 'string' || userId.length === 0 || userId.length > PRIMARY_USER_MAX_CHARS)
        throw new TypeErrorCtor(`The primary user id must be a string of 1 to ${PRIMARY_USER_MAX_CHARS} characters`);
      if (ctx.primaryUserSet) throw new ErrorCtor('The primary user can only be altered once per transaction');
      ctx.primaryUserSet = true;
      recordCommand({ type: 'set_primary_user', user_id: userId });
    }),
  };

  api.multifactor = {
    enable: chain((provider, options) => {
      if (MFA_PROVIDERS.indexOf(provider) === -1)
        throw new TypeErrorCtor(`api.multifactor.enable() needs a provider among ${MFA_PROVIDERS.join(', ')}`);
      const opts = isObject(options) ? options : {};
      const providerOptions = opts.providerOptions;
      if (provider === 'duo') {
        const p = isObject(providerOptions) ? providerOptions : {};
        for (const k of ['host', 'ikey', 'skey'])
          if (typeof p[k] !== 'string' || !p[k]) throw new TypeErrorCtor(`Duo needs providerOptions.${k}`);
      }
      const command = { type: 'enable_mfa', provider, allow_remember_browser: !!opts.allowRememberBrowser };
      if (providerOptions !== undefined) command.provider_options = jsonValue(providerOptions);
      recordCommand(command);
    }),
  };

  api.redirect = {
    sendUserTo: chain((url, options) => {
      requireString(url, 'The redirect URL');
      recordCommand({ type: 'redirect', url: redirectTarget(url, isObject(options) ? options.query : undefined) });
    }),
    encodeToken: (options) => encodeToken(ctx.event, options),
    validateToken: (options) => validateToken(ctx.event, options),
    canRedirect: () => isInteractive(ctx.event),
  };

  api.user = {
    setAppMetadata: chain((key, value) => {
      requireString(key, 'The app_metadata key');
      recordCommand({ type: 'set_app_metadata', key, value: jsonValue(value) });
    }),
    setUserMetadata: chain((key, value) => {
      requireString(key, 'The user_metadata key');
      recordCommand({ type: 'set_user_metadata', key, value: jsonValue(value) });
    }),
  };

  api.transaction = {
    setMetadata: chain((key, value) => {
      const stored = setTransactionMetadata(ctx.event, key, value);
      recordCommand({ type: 'set_transaction_metadata', key, value: stored });
    }),
  };

  api.validation = {
    error: chain((code, message) => {
      recordCommand({ type: 'validation_error', code: String(code), message: message === undefined ? '' : String(message) });
    }),
  };

  const session = metadataStore(() => (isPlainRecord(ctx.event.session) ? ctx.event.session : undefined), 'session');
  api.session = {
    revoke: chain((reason, options) => {
      recordCommand({
        type: 'revoke_session',
        reason: reason === undefined ? '' : String(reason),
        preserve_refresh_tokens: !!(isObject(options) && options.preserveRefreshTokens),
      });
    }),
    setExpiresAt: chain((ms) => recordCommand({ type: 'set_session_expires_at', at_ms: checkEpochMs(ms, 'The session expiry') })),
    setIdleExpiresAt: chain((ms) =>
      recordCommand({ type: 'set_session_idle_expires_at', at_ms: checkEpochMs(ms, 'The session idle expiry') }),
    ),
    setCookieMode: chain((mode) => {
      if (mode !== 'persistent' && mode !== 'non-persistent')
        throw new TypeErrorCtor('The cookie mode must be "persistent" or "non-persistent"');
      recordCommand({ type: 'set_session_cookie_mode', mode });
    }),
    setMetadata: chain((key, value) => {
      session.set(key, value);
      recordCommand({ type: 'set_session_metadata', key, value });
    }),
    deleteMetadata: chain((key) => {
      session.remove(key);
      recordCommand({ type: 'set_session_metadata', key, value: null });
    }),
    evictMetadata: chain(() => {
      session.evict();
      recordCommand({ type: 'evict_session_metadata' });
    }),
  };

  const refreshHolder = () => (isPlainRecord(ctx.event.refresh_token) ? ctx.event.refresh_token : undefined);
  const refresh = metadataStore(refreshHolder, 'refresh token');
  const requireRefresh = () => {
    if (refreshHolder() === undefined)
      throw new ErrorCtor('api.refreshToken is only available during a refresh token exchange');
  };
  api.refreshToken = {
    revoke: chain((reason) => {
      requireRefresh();
      recordCommand({ type: 'revoke_refresh_token', reason: reason === undefined ? '' : String(reason) });
    }),
    setExpiresAt: chain((ms) => {
      requireRefresh();
      recordCommand({ type: 'set_refresh_token_expires_at', at_ms: checkEpochMs(ms, 'The refresh token expiry') });
    }),
    setIdleExpiresAt: chain((ms) => {
      requireRefresh();
      recordCommand({ type: 'set_refresh_token_idle_expires_at', at_ms: checkEpochMs(ms, 'The refresh token idle expiry') });
    }),
    setMetadata: chain((key, value) => {
      refresh.set(key, value);
      recordCommand({ type: 'set_refresh_token_metadata', key, value });
    }),
    deleteMetadata: chain((key) => {
      refresh.remove(key);
      recordCommand({ type: 'set_refresh_token_metadata', key, value: null });
    }),
    evictMetadata: chain(() => {
      refresh.evict();
      recordCommand({ type: 'evict_refresh_token_metadata' });
    }),
  };

  api.cache = ctx.cache;
  api.rules = { wasExecuted: () => false };
  api.prompt = {
    render() {
      throw new ErrorCtor(
        'api.prompt.render() is not available: this platform has no Forms. Send the user to your own page with api.redirect.sendUserTo().',
      );
    },
  };
  return api;
}
