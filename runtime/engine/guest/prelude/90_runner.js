// The hooks the shim calls: check (compile), start, tick and finish (run),
// describeError (anything that escaped). Each returns the JSON text the
// host reads; the formats are documented in runtime/sandbox/_protocol.py.

const TRIGGER_HANDLERS = {
  'post-login': ['onExecutePostLogin', 'onContinuePostLogin'],
};

// Each trigger's api, built once; `ctx` carries what differs per execution.
const apiContext = { event: null, handler: null, scopeChanges: 0, primaryUserSet: false, cache: makeCache() };
const APIS = {
  'post-login': makePostLoginApi(apiContext),
};

// --- require(): an allowlist of built-in modules ----------------------------------

const BUILTIN_MODULES = {
  buffer: () => ({ Buffer }),
  crypto: () => cryptoModule,
  querystring: () => ({
    parse: querystringParse,
    decode: querystringParse,
    stringify: querystringStringify,
    encode: querystringStringify,
    escape: querystringEscape,
    unescape: percentDecode,
  }),
  url: () => ({ URL, URLSearchParams, parse: legacyParse, format: legacyFormat }),
  util: () => ({
    format,
    inspect,
    TextEncoder,
    TextDecoder,
    inherits(ctor, superCtor) {
      Object.setPrototypeOf(ctor.prototype, superCtor.prototype);
      Object.setPrototypeOf(ctor, superCtor);
    },
    promisify(fn) {
      return (...args) =>
        new Promise((resolve, reject) => {
          ReflectApply(fn, undefined, [...args, (err, value) => (err ? reject(err) : resolve(value))]);
        });
    },
    isDeepStrictEqual: (a, b) => JSONStringify(a) === JSONStringify(b),
  }),
};
const BUILTIN_NAMES = (ObjectKeys(BUILTIN_MODULES)).join(', ');
const loadedModules = new MapCtor();

function require(name) {
  let id = String(name);
  if (id.slice(0, 5) === 'node:') id = id.slice(5);
  if (!hasOwn(BUILTIN_MODULES, id)) {
    const err = new ErrorCtor(
      `Cannot find module '${name}'. Actions here run without npm packages or network access; ` +
        `the built-in modules are: ${BUILTIN_NAMES}.`,
    );
    err.code = 'MODULE_NOT_FOUND';
    throw err;
  }
  if (!loadedModules.has(id)) loadedModules.set(id, ObjectFreeze(BUILTIN_MODULES[id]()));
  return loadedModules.get(id);
}

// --- errors ------------------------------------------------------------------------------

const ACTION_FRAME = /action\.js:(\d+):(\d+)/;
const LINE_ONE = /action\.js:1:(\d+)/g;

// The stack as Node prints it: a "Name: message" line, then the frames of
// the action's own code (and the built-ins it called), never the platform's.
function actionStack(header, stack) {
  const frames = stack.split('\n');
  let last = -1;
  for (let i = 0; i < frames.length; i++) if (frames[i].indexOf('action.js:') !== -1) last = i;
  const kept = [];
  for (let i = 0; i <= last; i++) {
    const frame = frames[i];
    if (frame.indexOf('action.js:') !== -1 || frame.indexOf('(native)') !== -1)
      kept[kept.length] = frame.replace(LINE_ONE, (m, col) => `action.js:1:${MathMax(1, Number(col) - native.wrapPrefix)}`);
  }
  return kept.length ? `${header}\n${kept.join('\n')}` : header;
}

function describeThrown(value) {
  try {
    if (value instanceof ErrorCtor) {
      const name = String(value.name === undefined ? 'Error' : value.name);
      const message = String(value.message === undefined ? '' : value.message);
      const header = message ? `${name}: ${message}` : name;
      return { name, message, stack: actionStack(header, typeof value.stack === 'string' ? value.stack : '') };
    }
    const message = typeof value === 'string' ? value : inspect(value);
    return { name: 'Error', message, stack: `Uncaught ${message}` };
  } catch {
    return { name: 'Error', message: 'a value that could not be described was thrown', stack: '' };
  }
}

// Line and column of the innermost frame in the action's own code.
function locate(error) {
  const m = ACTION_FRAME.exec(error.stack);
  if (!m) return;
  error.line = Number(m[1]);
  error.column = Number(m[2]);
}

function describeError(value, compiling) {
  const error = describeThrown(value);
  locate(error);
  if (compiling) {
    error.class = 'action_syntax';
    return JSONStringify({ ok: false, error });
  }
  return JSONStringify(error);
}

function actionError(value, messagePrefix = '') {
  const error = describeThrown(value);
  error.class = 'action_error';
  error.message = messagePrefix + error.message;
  locate(error);
  return error;
}

function loadModule(wrapper) {
  const module = { exports: {}, id: '.', filename: '/action.js', loaded: false };
  ReflectApply(wrapper, module.exports, [module.exports, require, module, '/action.js', '/']);
  module.loaded = true;
  return module.exports;
}

const isAsyncFunction = (fn) => typeof fn === 'function' && ObjectGetPrototypeOf(fn) === AsyncFunctionPrototype;

function signatureMessage(name) {
  return `Invalid function signature for the "${name}" handler. Use "exports.${name} = async function(event, api) { }" as the signature.`;
}

// --- compile ------------------------------------------------------------------------------

function check(wrapper, request) {
  resetRun();
  run.quiet = true;
  const names = TRIGGER_HANDLERS[request.trigger];
  if (names === undefined)
    return JSONStringify({ ok: false, error: { class: 'action_syntax', name: 'Error', message: `Unknown trigger: ${request.trigger}` } });
  let exported;
  try {
    exported = loadModule(wrapper);
  } catch (e) {
    return JSONStringify({ ok: false, error: actionError(e, "The action's top-level code threw: ") });
  }
  const found = [];
  for (const name of names) {
    if (exported === null || exported === undefined || exported[name] === undefined) continue;
    if (!isAsyncFunction(exported[name]))
      return JSONStringify({ ok: false, error: { class: 'action_syntax', name: 'TypeError', message: signatureMessage(name) } });
    found[found.length] = name;
  }
  if (found.length === 0) {
    const message = `The action exports no ${request.trigger} handler. Export one as "exports.${names[0]} = async function(event, api) { }".`;
    return JSONStringify({ ok: false, error: { class: 'action_syntax', name: 'Error', message } });
  }
  return JSONStringify({ ok: true, handlers: found });
}

// --- run -----------------------------------------------------------------------------------

const outcome = { settled: false, error: null };

function settle(error) {
  if (outcome.settled) return;
  outcome.settled = true;
  outcome.error = error;
}

function start(wrapper, request) {
  resetRun();
  run.quiet = false;
  outcome.settled = false;
  outcome.error = null;
  try {
    const name = request.handler;
    const api = APIS[request.trigger];
    if (api === undefined) throw new ErrorCtor(`Unknown trigger: ${request.trigger}`);
    const exported = loadModule(wrapper);
    const handler = exported === null || exported === undefined ? undefined : exported[name];
    if (handler === undefined)
      throw new ErrorCtor(
        `The action has no ${name} handler. Export it as "exports.${name} = async function(event, api) { }".`,
      );
    if (!isAsyncFunction(handler)) throw new TypeErrorCtor(signatureMessage(name));
    const event = request.event;
    apiContext.event = event;
    apiContext.handler = name;
    apiContext.scopeChanges = 0;
    apiContext.primaryUserSet = false;
    resetCache(request.cache);
    (ReflectApply(handler, exported, [event, api])).then(() => settle(null),
      (e) => settle(actionError(e)),
    );
  } catch (e) {
    settle(actionError(e));
  }
}

function tick() {
  if (outcome.settled) return false;
  try {
    return runNextTimer();
  } catch (e) {
    settle(actionError(e, 'Uncaught exception in a timer callback: '));
    return false;
  }
}

function finish() {
  let status = 'completed';
  let error = outcome.error;
  if (!outcome.settled) {
    status = 'incomplete';
    error = {
      class: 'action_incomplete',
      name: 'Error',
      message:
        "The handler's promise can never settle: it is waiting on something that nothing in the sandbox will resolve.",
    };
  } else if (error !== null) status = 'failed';
  // The host recognises this exact text for a completed run (_protocol.py).
  if (status === 'completed') return '{"status":"completed","error":null}';
  return JSONStringify({ status, error });
}

