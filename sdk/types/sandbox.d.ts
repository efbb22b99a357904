// The JavaScript environment of the Tollgate sandbox beyond ECMAScript 2022:
// the globals the guest prelude installs (runtime/engine/guest/prelude/) and
// the built-in modules require() accepts. Only what the sandbox really has is
// declared, so that reaching for anything else (fetch, process, fs, an npm
// package...) is a type error in the editor rather than a failed login.
// tests/sdk/test_typings.py compares these declarations with the sandbox.
//
// A script, not a module: everything declared here is global, as in the sandbox.

/** The text encodings `Buffer` and the `crypto` module understand (any letter case). */
type BufferEncoding = 'utf8' | 'utf-8' | 'hex' | 'base64' | 'base64url' | 'latin1' | 'binary' | 'ascii';

// --- console ------------------------------------------------------------------

/**
 * The execution's log. Each call becomes one entry of the execution record
 * (and of `tollgate run`'s output), with its level. Values are formatted as
 * Node's `util.format` formats them. Printing past the tenant's `log_bytes`
 * limit ends the execution (`action_limit`).
 */
interface Console {
  log(...data: unknown[]): void;
  info(...data: unknown[]): void;
  debug(...data: unknown[]): void;
  warn(...data: unknown[]): void;
  error(...data: unknown[]): void;
  /** Logs the message followed by the stack of the action's own frames. */
  trace(...data: unknown[]): void;
  /** Logs `util.inspect(value, options)`. */
  dir(value: unknown, options?: import('util').InspectOptions): void;
  /** Logs `util.inspect(value)`: there are no tables in the log. */
  table(value: unknown): void;
  /** Logs `Assertion failed` (and `data`) at the error level when `condition` is falsy; never throws. */
  assert(condition?: unknown, ...data: unknown[]): void;
  count(label?: string): void;
  countReset(label?: string): void;
  /** Starts a timer on the execution's virtual clock (see `setTimeout`). */
  time(label?: string): void;
  timeLog(label?: string, ...data: unknown[]): void;
  timeEnd(label?: string): void;
  /** Logs `data`, if any; the log has no indentation, so groups only mark where they start. */
  group(...data: unknown[]): void;
  groupEnd(): void;
}
declare var console: Console;

// --- timers and the clock -----------------------------------------------------

/**
 * A timer's handle, as Node's timers return it. Converts to its numeric id,
 * which `clearTimeout` also accepts.
 */
interface Timeout {
  ref(): this;
  unref(): this;
  hasRef(): boolean;
  /** Starts the timer's delay again from the current (virtual) time. */
  refresh(): this;
  [Symbol.toPrimitive](): number;
}

/**
 * Runs `callback` after `ms` milliseconds of virtual time. Nothing really
 * waits in the sandbox: when the action has nothing else to do, the earliest
 * timer fires and `Date.now()` moves forward by its delay. So
 * `await new Promise((resolve) => setTimeout(resolve, 100))` works, costs no
 * wall-clock time, and counts against the fuel limit only for the code it runs.
 */
declare function setTimeout<TArgs extends unknown[]>(
  callback: (...args: TArgs) => void,
  ms?: number,
  ...args: TArgs
): Timeout;
/** Runs `callback` every `ms` milliseconds of virtual time; an interval never cleared runs until the fuel limit. */
declare function setInterval<TArgs extends unknown[]>(
  callback: (...args: TArgs) => void,
  ms?: number,
  ...args: TArgs
): Timeout;
/** Runs `callback` once the current jobs are done, before any timer that is due later. */
declare function setImmediate<TArgs extends unknown[]>(callback: (...args: TArgs) => void, ...args: TArgs): Timeout;
declare function clearTimeout(timeout: Timeout | number | null | undefined): void;
declare function clearInterval(timeout: Timeout | number | null | undefined): void;
declare function clearImmediate(timeout: Timeout | number | null | undefined): void;
declare function queueMicrotask(callback: () => void): void;

/** The execution's clock. `Date.now()` is read once when the execution starts and moves only with timers. */
interface Performance {
  /** Milliseconds of virtual time since the execution started. */
  now(): number;
  /** Always 0: `now()` counts from the start of the execution. */
  readonly timeOrigin: number;
}
declare var performance: Performance;

// --- text and bytes -------------------------------------------------------------

/** Decodes base64 into a string of Latin-1 characters; throws `InvalidCharacterError` on malformed input. */
declare function atob(data: string): string;
/** Encodes a string of Latin-1 characters as base64; throws `InvalidCharacterError` past U+00FF. */
declare function btoa(data: string): string;

interface TextEncoder {
  readonly encoding: 'utf-8';
  /** The UTF-8 bytes of `input` (lone surrogates become U+FFFD). */
  encode(input?: string): Uint8Array;
  encodeInto(source: string, destination: Uint8Array): { read: number; written: number };
}
declare var TextEncoder: {
  readonly prototype: TextEncoder;
  new (): TextEncoder;
};

interface TextDecoder {
  readonly encoding: 'utf-8';
  readonly fatal: boolean;
  readonly ignoreBOM: boolean;
  /** The text of UTF-8 bytes; with `fatal`, malformed bytes throw a TypeError instead of becoming U+FFFD. */
  decode(input?: ArrayBuffer | ArrayBufferView): string;
}
declare var TextDecoder: {
  readonly prototype: TextDecoder;
  /** UTF-8 only: any other label throws a RangeError. */
  new (label?: 'utf-8' | 'utf8' | 'unicode-1-1-utf-8', options?: { fatal?: boolean; ignoreBOM?: boolean }): TextDecoder;
};

/**
 * Node's `Buffer`, the part of it login actions use: a `Uint8Array` with text
 * encodings, comparison and a few readers and writers.
 */
interface Buffer extends Uint8Array {
  /** The bytes from `start` to `end` as text in `encoding` (default utf8). */
  toString(encoding?: BufferEncoding, start?: number, end?: number): string;
  toJSON(): { type: 'Buffer'; data: number[] };
  equals(other: Uint8Array): boolean;
  compare(other: Uint8Array): -1 | 0 | 1;
  /** A view of the same bytes, as in Node (not a copy, unlike `Uint8Array.prototype.slice`). */
  slice(start?: number, end?: number): Buffer;
  subarray(start?: number, end?: number): Buffer;
  /** Writes the encoded `string` into this buffer; returns the number of bytes written. */
  write(string: string, encoding?: BufferEncoding): number;
  write(string: string, offset: number, encoding?: BufferEncoding): number;
  write(string: string, offset: number, length: number, encoding?: BufferEncoding): number;
  fill(value: string | number, start?: number, end?: number, encoding?: BufferEncoding): this;
  /** Copies bytes into `target`; returns how many were copied. */
  copy(target: Uint8Array, targetStart?: number, sourceStart?: number, sourceEnd?: number): number;
  readUInt8(offset?: number): number;
  readUInt16BE(offset?: number): number;
  readUInt32BE(offset?: number): number;
  /** Returns the offset after the byte written. */
  writeUInt8(value: number, offset?: number): number;
}
interface BufferConstructor {
  readonly prototype: Buffer;
  /** The bytes of `string` in `encoding` (default utf8). */
  from(string: string, encoding?: BufferEncoding): Buffer;
  /** A view of `arrayBuffer`'s memory (not a copy). */
  from(arrayBuffer: ArrayBuffer, byteOffset?: number, length?: number): Buffer;
  /** A copy of the bytes of a typed array, of an array of byte values, or of a Buffer's JSON form. */
  from(data: ArrayBufferView | ArrayLike<number> | { type: 'Buffer'; data: readonly number[] }): Buffer;
  alloc(size: number, fill?: string | number, encoding?: BufferEncoding): Buffer;
  /** Same as `alloc(size)`: memory in the sandbox always starts zeroed. */
  allocUnsafe(size: number): Buffer;
  isBuffer(value: unknown): value is Buffer;
  isEncoding(encoding: string): boolean;
  /** The number of bytes of `value` (a string in `encoding`, default utf8). */
  byteLength(value: string | ArrayBufferView | ArrayBuffer, encoding?: BufferEncoding): number;
  concat(list: readonly Uint8Array[], totalLength?: number): Buffer;
  compare(a: Buffer, b: Uint8Array): -1 | 0 | 1;
}
declare var Buffer: BufferConstructor;

// --- randomness -------------------------------------------------------------------

/**
 * The Web Crypto subset the sandbox has: random values only (no `subtle`).
 * The host seeds the sandbox's generator from its own CSPRNG for every execution.
 */
interface Crypto {
  /** Fills an integer typed array (at most 65,536 bytes) with random values and returns it. */
  getRandomValues<
    T extends
      | Int8Array
      | Uint8Array
      | Uint8ClampedArray
      | Int16Array
      | Uint16Array
      | Int32Array
      | Uint32Array
      | BigInt64Array
      | BigUint64Array,
  >(array: T): T;
  /** A random version 4 UUID, e.g. `1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed`. */
  randomUUID(): string;
}
declare var crypto: Crypto;

// --- URLs -------------------------------------------------------------------------

/**
 * A URL parsed with the WHATWG URL standard, as Node's `URL` parses it (and as
 * the platform parses the targets of `api.redirect.sendUserTo`).
 */
interface URL {
  href: string;
  readonly origin: string;
  protocol: string;
  username: string;
  password: string;
  host: string;
  hostname: string;
  port: string;
  pathname: string;
  search: string;
  /** The query, live: changing it changes `search` and `href`. */
  readonly searchParams: URLSearchParams;
  hash: string;
  toString(): string;
  toJSON(): string;
}
declare var URL: {
  readonly prototype: URL;
  /** Throws a TypeError (code `ERR_INVALID_URL`) when `input` is not a URL (relative to `base`, if given). */
  new (input: string | URL, base?: string | URL): URL;
  canParse(input: string | URL, base?: string | URL): boolean;
  /** Like `new URL(input, base)`, but null instead of throwing. */
  parse(input: string | URL, base?: string | URL): URL | null;
};

/** Form-encoded parameters (`application/x-www-form-urlencoded`), in order, names repeatable. */
interface URLSearchParams {
  readonly size: number;
  append(name: string, value: string): void;
  /** Removes every parameter called `name` (with that `value` only, if given). */
  delete(name: string, value?: string): void;
  /** The first value of `name`, or null. */
  get(name: string): string | null;
  getAll(name: string): string[];
  has(name: string, value?: string): boolean;
  /** Replaces every parameter called `name` with one, where the first was. */
  set(name: string, value: string): void;
  sort(): void;
  forEach<This = undefined>(callback: (this: This, value: string, name: string, parent: URLSearchParams) => void, thisArg?: This): void;
  keys(): IterableIterator<string>;
  values(): IterableIterator<string>;
  entries(): IterableIterator<[string, string]>;
  [Symbol.iterator](): IterableIterator<[string, string]>;
  /** The parameters form-encoded, without a leading `?`. */
  toString(): string;
}
declare var URLSearchParams: {
  readonly prototype: URLSearchParams;
  /** From a query string (a leading `?` is skipped), name/value pairs, or an object's own properties. */
  new (init?: string | Iterable<readonly [string, string]> | Record<string, string>): URLSearchParams;
};

// --- CommonJS ---------------------------------------------------------------------

/** The action's file name inside the sandbox: always `/action.js`. */
declare const __filename: string;
/** The action's folder inside the sandbox: always `/`. */
declare const __dirname: string;

// --- require(): the built-in modules ------------------------------------------------
// Actions run without npm packages, a file system or a network: require()
// knows these five modules, with or without the `node:` prefix, and throws
// MODULE_NOT_FOUND for anything else (so does the upload).

declare module 'buffer' {
  export const Buffer: BufferConstructor;
  export type Buffer = globalThis.Buffer;
}

declare module 'crypto' {
  /** Bytes, or a string taken in the given encoding (default utf8). */
  export type BinaryLike = string | ArrayBufferView | ArrayBuffer;
  /** SHA-256 is the one digest the sandbox has; any other name throws `ERR_CRYPTO_INVALID_DIGEST`. */
  export type HashAlgorithm = 'sha256' | 'SHA256';
  /** A SHA-256 hash or HMAC being computed. */
  export interface Hash {
    /** Adds `data` (a string in `inputEncoding`, default utf8); throws after `digest()`. */
    update(data: BinaryLike, inputEncoding?: BufferEncoding): this;
    /** The digest as a Buffer, or as text in `encoding` (e.g. `hex`, `base64url`); can be called once. */
    digest(): Buffer;
    digest(encoding: 'buffer'): Buffer;
    digest(encoding: BufferEncoding): string;
  }
  export type Hmac = Hash;
  export function createHash(algorithm: HashAlgorithm): Hash;
  /** An HMAC-SHA-256 with `key` (bytes, a utf8 string, or a key object with `export()`). */
  export function createHmac(algorithm: HashAlgorithm, key: BinaryLike | { export(): ArrayBufferView | ArrayBuffer }): Hmac;
  /** `size` random bytes (synchronously: there is no callback form). */
  export function randomBytes(size: number): Buffer;
  export function randomUUID(): string;
  /** A random integer in [0, max) or [min, max), safe integers with min < max (synchronously). */
  export function randomInt(max: number): number;
  export function randomInt(min: number, max: number): number;
  /** Compares two byte sequences of the same length in constant time; throws a RangeError for different lengths. */
  export function timingSafeEqual(a: ArrayBufferView | ArrayBuffer, b: ArrayBufferView | ArrayBuffer): boolean;
  export const getRandomValues: Crypto['getRandomValues'];
  /** The Web Crypto subset, the same as the global `crypto`. */
  export const webcrypto: Crypto;
}

declare module 'querystring' {
  /** Parsed parameters; a name given more than once has an array of its values. */
  export interface ParsedUrlQuery {
    [name: string]: string | string[] | undefined;
  }
  /** Values `stringify` writes as text; any other (null, undefined, NaN) is written as an empty value. */
  export type StringifiableValue = string | number | boolean | bigint | null | undefined;
  export interface ParsedUrlQueryInput {
    [name: string]: StringifiableValue | readonly StringifiableValue[];
  }
  /** Parses form-encoded text (`+` is a space); the result has no prototype. */
  export function parse(text: string, sep?: string, eq?: string): ParsedUrlQuery;
  export const decode: typeof parse;
  export function stringify(obj: ParsedUrlQueryInput, sep?: string, eq?: string): string;
  export const encode: typeof stringify;
  /** Percent-encodes `text` as `encodeURIComponent` does. */
  export function escape(text: string): string;
  export function unescape(text: string): string;
}

declare module 'url' {
  export const URL: typeof globalThis.URL;
  export type URL = globalThis.URL;
  export const URLSearchParams: typeof globalThis.URLSearchParams;
  export type URLSearchParams = globalThis.URLSearchParams;
  /** Node's legacy URL object, as `parse` returns it. */
  export interface UrlWithStringQuery {
    protocol: string;
    slashes: true;
    auth: string | null;
    host: string;
    port: string | null;
    hostname: string;
    hash: string | null;
    search: string | null;
    query: string | null;
    pathname: string;
    path: string;
    href: string;
  }
  export interface UrlWithParsedQuery extends Omit<UrlWithStringQuery, 'query'> {
    query: import('querystring').ParsedUrlQuery;
  }
  /** What `format` reads: `search` when it is set, otherwise `query` as an object. */
  export interface UrlObject {
    protocol?: string | null;
    slashes?: boolean | null;
    auth?: string | null;
    host?: string | null;
    hostname?: string | null;
    port?: string | number | null;
    pathname?: string | null;
    search?: string | null;
    query?: import('querystring').ParsedUrlQueryInput | null;
    hash?: string | null;
  }
  /**
   * Node's legacy `url.parse`, over the WHATWG parser: the URL must be
   * absolute (a relative one throws a TypeError, unlike in Node).
   */
  export function parse(urlString: string, parseQueryString: true): UrlWithParsedQuery;
  export function parse(urlString: string, parseQueryString?: false): UrlWithStringQuery;
  export function format(url: string | URL | UrlObject): string;
}

declare module 'util' {
  export interface InspectOptions {
    /** How many levels of nested objects to show (default 2; null for all). */
    depth?: number | null;
  }
  /** Formats like `console.log`: `%s`, `%d`, `%i`, `%f`, `%j`, `%o`, `%O` and `%%`, then the rest separated by spaces. */
  export function format(...args: unknown[]): string;
  /** A readable representation of `value`, as Node prints it. */
  export function inspect(value: unknown, options?: InspectOptions): string;
  export const TextEncoder: typeof globalThis.TextEncoder;
  export type TextEncoder = globalThis.TextEncoder;
  export const TextDecoder: typeof globalThis.TextDecoder;
  export type TextDecoder = globalThis.TextDecoder;
  /** Makes `constructor` inherit from `superConstructor` (prototype and statics), for pre-class code. */
  export function inherits(constructor: Function, superConstructor: Function): void;
  /**
   * A promise-returning version of a function that takes a Node-style
   * callback `(error, result)` last. The function is called without `this`.
   */
  export function promisify<T>(fn: (callback: (error: unknown, result: T) => void) => void): () => Promise<T>;
  export function promisify<A1, T>(
    fn: (a1: A1, callback: (error: unknown, result: T) => void) => void,
  ): (a1: A1) => Promise<T>;
  export function promisify<A1, A2, T>(
    fn: (a1: A1, a2: A2, callback: (error: unknown, result: T) => void) => void,
  ): (a1: A1, a2: A2) => Promise<T>;
  export function promisify<A1, A2, A3, T>(
    fn: (a1: A1, a2: A2, a3: A3, callback: (error: unknown, result: T) => void) => void,
  ): (a1: A1, a2: A2, a3: A3) => Promise<T>;
  /**
   * Whether two JSON-like values are equal. The sandbox compares their
   * `JSON.stringify` forms: key order counts, and what JSON cannot hold
   * (functions, undefined, Maps) is ignored.
   */
  export function isDeepStrictEqual(a: unknown, b: unknown): boolean;
}

declare module 'node:buffer' {
  export * from 'buffer';
}
declare module 'node:crypto' {
  export * from 'crypto';
}
declare module 'node:querystring' {
  export * from 'querystring';
}
declare module 'node:url' {
  export * from 'url';
}
declare module 'node:util' {
  export * from 'util';
}
