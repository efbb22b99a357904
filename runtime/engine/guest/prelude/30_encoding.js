// TextEncoder, TextDecoder, atob/btoa, Buffer and crypto: the parts of Node
// and the web platform that login actions use, implemented over the shim's
// native UTF-8, base64, SHA-256 and random functions.

function bytesOf(buffer) {
  return new Uint8ArrayCtor(buffer);
}

function viewBytes(input) {
  if (input instanceof Uint8ArrayCtor) return input;
  if (input instanceof ArrayBufferCtor) return new Uint8ArrayCtor(input);
  if (ArrayBufferIsView(input)) return new Uint8ArrayCtor(input.buffer, input.byteOffset, input.byteLength);
  throw new TypeErrorCtor('The "input" argument must be an ArrayBuffer or an ArrayBufferView');
}

class TextEncoder {
  get encoding() {
    return 'utf-8';
  }
  encode(input = '') {
    return bytesOf(native.utf8Encode(String(input)));
  }
  encodeInto(source, destination) {
    const bytes = this.encode(source);
    const n = MathMin(bytes.length, destination.length);
    destination.set(bytes.subarray(0, n));
    return { read: source.length, written: n };
  }
}

class TextDecoder {
  constructor(label = 'utf-8', options = {}) {
    const l = (String(label)).toLowerCase();
    if (l !== 'utf-8' && l !== 'utf8' && l !== 'unicode-1-1-utf-8')
      throw new RangeErrorCtor(`The "${label}" encoding is not supported; only utf-8 is`);
    this.fatal = !!(options && options.fatal);
    this.ignoreBOM = !!(options && options.ignoreBOM);
  }
  get encoding() {
    return 'utf-8';
  }
  decode(input) {
    if (input === undefined) return '';
    let bytes = viewBytes(input);
    if (!this.ignoreBOM && bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf)
      bytes = bytes.subarray(3);
    const text = native.utf8Decode(bytes);
    if (this.fatal && text.indexOf('\ufffd') !== -1 && utf8Length(text) !== bytes.length)
      throw new TypeErrorCtor('The encoded data was not valid utf-8');
    return text;
  }
}
defineGlobal('TextEncoder', TextEncoder);
defineGlobal('TextDecoder', TextDecoder);

// --- Buffer -------------------------------------------------------------------

const ENCODINGS = ['utf8', 'utf-8', 'hex', 'base64', 'base64url', 'latin1', 'binary', 'ascii'];

function normalizeEncoding(enc) {
  if (enc === undefined || enc === null) return 'utf8';
  const e = (String(enc)).toLowerCase();
  if (e === 'utf-8') return 'utf8';
  if (e === 'binary') return 'latin1';
  if (ENCODINGS.indexOf(e) === -1) {
    const err = new TypeErrorCtor(`Unknown encoding: ${enc}`);
    err.code = 'ERR_UNKNOWN_ENCODING';
    throw err;
  }
  return e;
}

function encodeString(string, encoding) {
  switch (normalizeEncoding(encoding)) {
    case 'utf8':
      return bytesOf(native.utf8Encode(string));
    case 'hex':
      return bytesOf(native.hexDecode(string));
    case 'base64':
    case 'base64url': {
      const buf = native.base64Decode(string.replace(/[^A-Za-z0-9+/\-_=\s]/g, ''));
      return bytesOf(buf || new ArrayBufferCtor(0));
    }
    case 'latin1':
    case 'ascii': {
      const out = new Uint8ArrayCtor(string.length);
      for (let i = 0; i < string.length; i++) out[i] = string.charCodeAt(i) & 0xff;
      return out;
    }
  }
}

function decodeBytes(bytes, encoding) {
  switch (normalizeEncoding(encoding)) {
    case 'utf8':
      return native.utf8Decode(bytes);
    case 'hex':
      return native.hexEncode(bytes);
    case 'base64':
      return native.base64Encode(bytes, false);
    case 'base64url':
      return native.base64Encode(bytes, true);
    case 'latin1': {
      let s = '';
      for (let i = 0; i < bytes.length; i++) s += StringFromCharCode(bytes[i]);
      return s;
    }
    case 'ascii': {
      let s = '';
      for (let i = 0; i < bytes.length; i++) s += StringFromCharCode(bytes[i] & 0x7f);
      return s;
    }
  }
}

class Buffer extends Uint8ArrayCtor {
  static from(value, encodingOrOffset, length) {
    if (typeof value === 'string') {
      const bytes = encodeString(value, encodingOrOffset);
      return new Buffer(bytes.buffer, bytes.byteOffset, bytes.length);
    }
    if (value instanceof ArrayBufferCtor) {
      const offset = encodingOrOffset === undefined ? 0 : Number(encodingOrOffset);
      const len = length === undefined ? value.byteLength - offset : Number(length);
      return new Buffer(value, offset, len);
    }
    if (ArrayBufferIsView(value)) {
      const copy = new Buffer(value.byteLength);
      copy.set(new Uint8ArrayCtor(value.buffer, value.byteOffset, value.byteLength));
      return copy;
    }
    if (ArrayIsArray(value) || (isObject(value) && typeof value.length === 'number')) {
      const b = new Buffer(value.length);
      for (let i = 0; i < value.length; i++) b[i] = value[i] & 0xff;
      return b;
    }
    if (isObject(value) && value.type === 'Buffer' && ArrayIsArray(value.data)) return Buffer.from(value.data);
    throw new TypeErrorCtor(
      'The first argument must be of type string, Buffer, ArrayBuffer, Array, or Array-like Object',
    );
  }
  static alloc(size, fill, encoding) {
    const b = new Buffer(size);
    if (fill !== undefined && fill !== 0) b.fill(fill, 0, b.length, encoding);
    return b;
  }
  static allocUnsafe(size) {
    return new Buffer(size);
  }
  static isBuffer(value) {
    return value instanceof Buffer;
  }
  static isEncoding(enc) {
    return typeof enc === 'string' && ENCODINGS.indexOf(enc.toLowerCase()) !== -1;
  }
  static byteLength(value, encoding) {
    if (typeof value !== 'string') return value.byteLength;
    return normalizeEncoding(encoding) === 'utf8' ? utf8Length(value) : encodeString(value, encoding).length;
  }
  static concat(list, totalLength) {
    let total = 0;
    for (const b of list) total += b.length;
    if (totalLength !== undefined) total = totalLength;
    const out = Buffer.alloc(total);
    let offset = 0;
    for (const b of list) {
      if (offset >= total) break;
      const part = b.length > total - offset ? b.subarray(0, total - offset) : b;
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  }
  static compare(a, b) {
    return a.compare(b);
  }
  toString(encoding, start = 0, end = this.length) {
    return decodeBytes(this.subarray(start, end), encoding);
  }
  toJSON() {
    return { type: 'Buffer', data: Array.from(this) };
  }
  equals(other) {
    return this.compare(other) === 0;
  }
  compare(other) {
    const n = MathMin(this.length, other.length);
    for (let i = 0; i < n; i++) if (this[i] !== other[i]) return this[i] < other[i] ? -1 : 1;
    return this.length === other.length ? 0 : this.length < other.length ? -1 : 1;
  }
  slice(start, end) {
    return this.subarray(start, end);
  }
  write(string, offset = 0, length, encoding) {
    if (typeof offset === 'string') {
      encoding = offset;
      offset = 0;
    } else if (typeof length === 'string') {
      encoding = length;
      length = undefined;
    }
    const bytes = encodeString(string, encoding);
    const n = MathMin(bytes.length, this.length - offset, length === undefined ? Infinity : length);
    this.set(bytes.subarray(0, n), offset);
    return n;
  }
  fill(value, start = 0, end = this.length, encoding) {
    if (typeof value === 'string') {
      const bytes = encodeString(value, encoding);
      if (bytes.length === 0) return super.fill(0, start, end);
      for (let i = start, j = 0; i < end; i++, j = (j + 1) % bytes.length) this[i] = bytes[j];
      return this;
    }
    return super.fill(value, start, end);
  }
  copy(target, targetStart = 0, sourceStart = 0, sourceEnd = this.length) {
    const part = this.subarray(sourceStart, MathMin(sourceEnd, sourceStart + target.length - targetStart));
    target.set(part, targetStart);
    return part.length;
  }
  readUInt8(o = 0) {
    return this[o];
  }
  readUInt16BE(o = 0) {
    return (this[o] << 8) | this[o + 1];
  }
  readUInt32BE(o = 0) {
    return ((this[o] << 24) >>> 0) + ((this[o + 1] << 16) | (this[o + 2] << 8) | this[o + 3]);
  }
  writeUInt8(v, o = 0) {
    this[o] = v;
    return o + 1;
  }
}
defineGlobal('Buffer', Buffer);

// atob/btoa as the web platform defines them (Latin-1 strings).
defineGlobal('btoa', function btoa(data) {
  const s = String(data);
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0xff) {
      const err = new ErrorCtor('Invalid character');
      err.name = 'InvalidCharacterError';
      throw err;
    }
  }
  return native.base64Encode(encodeString(s, 'latin1'), false);
});
defineGlobal('atob', function atob(data) {
  const s = (String(data)).replace(/[\t\n\f\r ]/g, '');
  const buf = s.length % 4 === 1 || /[^A-Za-z0-9+/=]/.test(s) ? null : native.base64Decode(s);
  if (buf === null) {
    const err = new ErrorCtor('The string to be decoded is not correctly encoded.');
    err.name = 'InvalidCharacterError';
    throw err;
  }
  return decodeBytes(bytesOf(buf), 'latin1');
});

// --- crypto ---------------------------------------------------------------------

function unsupportedDigest(name) {
  const err = new ErrorCtor(`Digest method not supported: ${name}. This runtime provides sha256.`);
  err.code = 'ERR_CRYPTO_INVALID_DIGEST';
  return err;
}

class Hash {
  constructor(algorithm, key) {
    if ((String(algorithm)).toLowerCase() !== 'sha256') throw unsupportedDigest(algorithm);
    this._key = key;
    this._chunks = [];
    this._done = false;
  }
  update(data, encoding) {
    if (this._done) throw new ErrorCtor('Digest already called');
    this._chunks[this._chunks.length] = typeof data === 'string' ? encodeString(data, encoding) : viewBytes(data);
    return this;
  }
  digest(encoding) {
    if (this._done) throw new ErrorCtor('Digest already called');
    this._done = true;
    const data = Buffer.concat(this._chunks);
    const raw = this._key === undefined ? native.sha256(data) : native.hmacSha256(this._key, data);
    const out = Buffer.from(raw);
    return encoding === undefined || encoding === 'buffer' ? out : out.toString(encoding);
  }
}

function keyBytes(key) {
  if (typeof key === 'string') return encodeString(key, 'utf8');
  if (isObject(key) && typeof key.export === 'function') return viewBytes(key.export());
  return viewBytes(key);
}

function getRandomValues(array) {
  if (!ArrayBufferIsView(array) || array instanceof Float32Array || array instanceof Float64Array || array instanceof DataView)
    throw new TypeErrorCtor('The data argument must be an integer-type TypedArray');
  if (array.byteLength > 65536) {
    const err = new ErrorCtor(`The ArrayBufferView's byte length (${array.byteLength}) exceeds 65536`);
    err.name = 'QuotaExceededError';
    throw err;
  }
  new Uint8ArrayCtor(array.buffer, array.byteOffset, array.byteLength).set(bytesOf(native.randomBytes(array.byteLength)));
  return array;
}

function randomUUID() {
  const b = bytesOf(native.randomBytes(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = decodeBytes(b, 'hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const cryptoModule = ObjectFreeze({
  createHash: (algorithm) => new Hash(algorithm),
  createHmac: (algorithm, key) => new Hash(algorithm, keyBytes(key)),
  randomBytes: (size) => Buffer.from(native.randomBytes(size)),
  randomUUID,
  randomInt(min, max) {
    if (max === undefined) {
      max = min;
      min = 0;
    }
    if (!NumberIsSafeInteger(min) || !NumberIsSafeInteger(max) || max <= min)
      throw new RangeErrorCtor('randomInt needs safe integers with min < max');
    return min + MathFloor(native.random() * (max - min));
  },
  timingSafeEqual(a, b) {
    const x = viewBytes(a);
    const y = viewBytes(b);
    if (x.length !== y.length) throw new RangeErrorCtor('Input buffers must have the same byte length');
    let diff = 0;
    for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
    return diff === 0;
  },
  getRandomValues,
  webcrypto: { getRandomValues, randomUUID },
});
defineGlobal('crypto', ObjectFreeze({ getRandomValues, randomUUID }));
