// The guest prelude: evaluated once per engine build, before the snapshot.
//
// The build concatenates the files of this folder, in name order, into one
// function `(function (native) { ... })` that the shim calls with its native
// functions. Nothing here is reachable from an action except the globals it
// installs on purpose (console, timers, URL, TextEncoder, Buffer, crypto...).
//
// Static built-ins are captured here, so that an action replacing
// JSON.stringify or Object.keys cannot change how its commands and logs are
// recorded. (Prototype methods are called directly: in QuickJS a bound
// "uncurried" method costs several times more per call. The host validates
// every result anyway.)

const global = globalThis;

const ObjectKeys = Object.keys;
const ObjectFreeze = Object.freeze;
const ObjectCreate = Object.create;
const ObjectGetPrototypeOf = Object.getPrototypeOf;
const ObjectDefineProperty = Object.defineProperty;
const ArrayIsArray = Array.isArray;
const StringFromCharCode = String.fromCharCode;
const JSONStringify = JSON.stringify;
const JSONParse = JSON.parse;
const MathFloor = Math.floor;
const MathMin = Math.min;
const MathMax = Math.max;
const NumberIsFinite = Number.isFinite;
const NumberIsSafeInteger = Number.isSafeInteger;
const NumberIsInteger = Number.isInteger;
const ReflectApply = Reflect.apply;
const ReflectOwnKeys = Reflect.ownKeys;
const DateNow = Date.now;
const ErrorCtor = Error;
const TypeErrorCtor = TypeError;
const RangeErrorCtor = RangeError;
const Uint8ArrayCtor = Uint8Array;
const ArrayBufferCtor = ArrayBuffer;
const ArrayBufferIsView = ArrayBuffer.isView;
const MapCtor = Map;
const SetCtor = Set;
const SymbolIterator = Symbol.iterator;
const SymbolToPrimitive = Symbol.toPrimitive;
const SymbolToStringTag = Symbol.toStringTag;
const AsyncFunctionPrototype = ObjectGetPrototypeOf(async function () {});

const hasOwn = (o, k) => o !== null && o !== undefined && Object.prototype.hasOwnProperty.call(o, k);
const isObject = (v) => v !== null && typeof v === 'object';
const isPlainRecord = (v) => isObject(v) && !ArrayIsArray(v);

// UTF-8 length of a string (lone surrogates count as the 3 bytes of U+FFFD).
const utf8Length = native.utf8Length;

function defineGlobal(name, value) {
  ObjectDefineProperty(global, name, { value, writable: true, configurable: true, enumerable: false });
}

// The sandbox has no shared memory and one source of randomness: the host
// seeds it for every execution, so a snapshot never replays a sequence.
delete global.SharedArrayBuffer;
delete global.Atomics;
ObjectDefineProperty(Math, 'random', {
  value: function random() {
    return native.random();
  },
  writable: true,
  configurable: true,
  enumerable: false,
});
