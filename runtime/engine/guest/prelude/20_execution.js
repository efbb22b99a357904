// The state of the one execution this instance runs: its recorded commands,
// console output and timers. Reset by start(); never shared, because every
// execution gets a fresh instance.

const run = {
  quiet: false, // compile: top-level code runs, its console output is dropped
  timers: new MapCtor(),
  timerSeq: 0,
  now: 0, // virtual milliseconds since the start of the execution
};

function resetRun() {
  run.timers = new MapCtor();
  run.timerSeq = 0;
  run.now = 0;
}

// Every api call that records intent ends here. The shim packs the command
// at once (later changes to the objects it was given do not alter it) into
// the buffer the host reads, and enforces max_commands and output_bytes.
function recordCommand(command) {
  native.command(command);
}

// Console output goes straight to the shim's log buffer (which enforces
// log_bytes), so the host still has it when a limit ends the execution.
function recordLog(level, args) {
  if (run.quiet) return;
  native.log(level, formatWithOptions(args));
}

// --- console ---------------------------------------------------------------

const counters = new MapCtor();
const timings = new MapCtor();
const console = {
  log: (...args) => recordLog('log', args),
  info: (...args) => recordLog('info', args),
  debug: (...args) => recordLog('debug', args),
  warn: (...args) => recordLog('warn', args),
  error: (...args) => recordLog('error', args),
  trace: (...args) => {
    const e = new ErrorCtor(formatWithOptions(args));
    recordLog('trace', [`Trace: ${e.message}\n${(e.stack || '').replace(/^[^\n]*\n/, '')}`]);
  },
  dir: (value, options) => recordLog('log', [inspect(value, options)]),
  table: (value) => recordLog('log', [inspect(value)]),
  assert: (condition, ...args) => {
    if (!condition) recordLog('error', args.length ? ['Assertion failed:', ...args] : ['Assertion failed']);
  },
  count: (label = 'default') => {
    const n = (counters.get(label) || 0) + 1;
    counters.set(label, n);
    recordLog('info', [`${label}: ${n}`]);
  },
  countReset: (label = 'default') => counters.delete(label),
  time: (label = 'default') => timings.set(label, run.now),
  timeLog: (label = 'default', ...args) => recordLog('info', [`${label}: ${run.now - (timings.get(label) || 0)}ms`, ...args]),
  timeEnd: (label = 'default') => {
    recordLog('info', [`${label}: ${run.now - (timings.get(label) || 0)}ms`]);
    timings.delete(label);
  },
  group: (...args) => (args.length ? recordLog('log', args) : undefined),
  groupEnd: () => {},
};
defineGlobal('console', console);

// --- timers on virtual time -------------------------------------------------
// There is no real waiting in the sandbox. When the job queue is empty the
// host loop runs the earliest timer and advances the clock to its due time,
// so `await new Promise(r => setTimeout(r, 100))` works and Date.now() moves
// by 100 ms. An interval that never stops runs until the fuel limit.

class Timeout {
  constructor(id) {
    this._id = id;
  }
  ref() {
    return this;
  }
  unref() {
    return this;
  }
  hasRef() {
    return true;
  }
  refresh() {
    const t = run.timers.get(this._id);
    if (t) t.at = run.now + t.delay;
    return this;
  }
  [SymbolToPrimitive]() {
    return this._id;
  }
}

function addTimer(fn, ms, args, repeat) {
  if (typeof fn !== 'function') throw new TypeErrorCtor('The "callback" argument must be of type function');
  let delay = Number(ms);
  if (!(delay >= 1 && delay <= 2147483647)) delay = repeat === null ? 0 : 1;
  delay = MathFloor(delay);
  const id = ++run.timerSeq;
  run.timers.set(id, { id, at: run.now + delay, delay, fn, args, repeat });
  return new Timeout(id);
}

function clearTimer(handle) {
  if (handle === null || handle === undefined) return;
  run.timers.delete(typeof handle === 'object' ? handle._id : Number(handle));
}

defineGlobal('setTimeout', (fn, ms, ...args) => addTimer(fn, ms, args, false));
defineGlobal('setInterval', (fn, ms, ...args) => addTimer(fn, ms, args, true));
defineGlobal('setImmediate', (fn, ...args) => addTimer(fn, 0, args, null));
defineGlobal('clearTimeout', clearTimer);
defineGlobal('clearInterval', clearTimer);
defineGlobal('clearImmediate', clearTimer);

// Run the earliest due timer; false when none is left.
function runNextTimer() {
  let next = null;
  for (const t of run.timers.values()) {
    if (next === null || t.at < next.at || (t.at === next.at && t.id < next.id)) next = t;
  }
  if (next === null) return false;
  if (next.at > run.now) {
    native.advanceClock(next.at - run.now);
    run.now = next.at;
  }
  if (next.repeat === true) next.at = run.now + next.delay;
  else run.timers.delete(next.id);
  ReflectApply(next.fn, undefined, next.args);
  return true;
}
