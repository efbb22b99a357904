// URL and URLSearchParams after the WHATWG URL Standard: special schemes
// (http, https, ws, wss, ftp, file) with host parsing (IPv4 in all its
// numeric forms, IPv6, punycode for non-ASCII labels), dot-segment removal,
// the standard's percent-encode sets, and opaque paths for other schemes.

const SPECIAL_PORTS = { 'ftp:': '21', 'file:': '', 'http:': '80', 'https:': '443', 'ws:': '80', 'wss:': '443' };
const isSpecial = (scheme) => hasOwn(SPECIAL_PORTS, scheme);

function invalidURL(input) {
  const err = new TypeErrorCtor(`Invalid URL: ${input}`);
  err.code = 'ERR_INVALID_URL';
  err.input = input;
  return err;
}

// Percent-encode sets, implemented by the shim (same numbering).
const C0_SET = 0;
const FRAGMENT_SET = 1;
const QUERY_SET = 2;
const SPECIAL_QUERY_SET = 3;
const PATH_SET = 4;
const USERINFO_SET = 5;
const FORM_SET = 6;
const COMPONENT_SET = 7;

const percentEncode = native.percentEncode;
const percentDecode = (s) => native.percentDecode(s, false);

// --- hosts ---------------------------------------------------------------------

function punycodeEncode(label) {
  const base = 36, tMin = 1, tMax = 26, skew = 38, damp = 700;
  const cps = [];
  for (const ch of label) cps[cps.length] = ch.codePointAt(0);
  let out = '';
  for (const cp of cps) if (cp < 0x80) out += StringFromCharCode(cp);
  const basic = out.length;
  let handled = basic;
  if (basic > 0) out += '-';
  const digit = (d) => StringFromCharCode(d + 22 + 75 * (d < 26));
  const adapt = (delta, points, first) => {
    delta = first ? MathFloor(delta / damp) : delta >> 1;
    delta += MathFloor(delta / points);
    let k = 0;
    for (; delta > ((base - tMin) * tMax) >> 1; k += base) delta = MathFloor(delta / (base - tMin));
    return k + MathFloor(((base - tMin + 1) * delta) / (delta + skew));
  };
  let n = 128, delta = 0, bias = 72;
  while (handled < cps.length) {
    let m = Infinity;
    for (const cp of cps) if (cp >= n && cp < m) m = cp;
    delta += (m - n) * (handled + 1);
    n = m;
    for (const cp of cps) {
      if (cp < n) delta++;
      if (cp === n) {
        let q = delta;
        for (let k = base; ; k += base) {
          const t = k <= bias ? tMin : k >= bias + tMax ? tMax : k - bias;
          if (q < t) break;
          out += digit(t + ((q - t) % (base - t)));
          q = MathFloor((q - t) / (base - t));
        }
        out += digit(q);
        bias = adapt(delta, handled + 1, handled === basic);
        delta = 0;
        handled++;
      }
    }
    delta++;
    n++;
  }
  return out;
}

const FORBIDDEN_HOST = /[\u0000\t\n\r #/:<>?@[\\\]^|]/;
const FORBIDDEN_DOMAIN = /[\u0000-\u001f\t\n\r #%/:<>?@[\\\]^|\u007f]/;
const RE_ASCII = /^[\u0000-\u007f]*$/;
const RE_LOWER_ASCII_HOST = /^[a-z0-9\-._~]+$/;
const RE_DIGITS = /^[0-9]+$/;
const RE_HEX_DIGITS = /^[0-9A-Fa-f]+$/;
const RE_OCTAL_DIGITS = /^[0-7]+$/;
const RE_HEX_CHAR = /^[0-9A-Fa-f]$/;
const RE_DIGIT_CHAR = /^[0-9]$/;
const RE_LABEL_DOTS = /[.\u3002\uff0e\uff61]/;
const RE_EDGE_SPACE = /^[\u0000-\u0020]+|[\u0000-\u0020]+$/g;
const RE_TAB_NEWLINE = /[\t\n\r]/g;
const RE_SCHEME = /^([A-Za-z][A-Za-z0-9+\-.]*):/;
const RE_SLASH = /^[/\\]/;
const RE_SLASHES = /^[/\\]*/;
const RE_TWO_SLASHES = /^[/\\]{2}/;
const RE_ANY_SLASH = /[/\\]/;
const RE_PORT = /:([^\]:]*)$/;
const RE_DRIVE_LETTER = /^[A-Za-z]:$/;

function parseIPv4Number(part) {
  if (part === '') return NaN;
  let radix = 10;
  if (part.length >= 2 && (part.slice(0, 2) === '0x' || part.slice(0, 2) === '0X')) {
    part = part.slice(2);
    radix = 16;
  } else if (part.length >= 2 && part[0] === '0') {
    part = part.slice(1);
    radix = 8;
  }
  if (part === '') return 0;
  const re = radix === 16 ? RE_HEX_DIGITS : radix === 8 ? RE_OCTAL_DIGITS : RE_DIGITS;
  if (!re.test(part)) return NaN;
  return parseInt(part, radix);
}

function endsInNumber(host) {
  const parts = host.split('.');
  if (parts[parts.length - 1] === '') {
    if (parts.length === 1) return false;
    parts.length--;
  }
  const last = parts[parts.length - 1];
  if (RE_DIGITS.test(last)) return true;
  return parseIPv4Number(last) === parseIPv4Number(last);
}

function parseIPv4(host, input) {
  const parts = host.split('.');
  if (parts[parts.length - 1] === '' && parts.length > 1) parts.length--;
  if (parts.length > 4) throw invalidURL(input);
  const nums = [];
  for (const p of parts) {
    const n = parseIPv4Number(p);
    if (n !== n) throw invalidURL(input);
    nums[nums.length] = n;
  }
  for (let i = 0; i < nums.length - 1; i++) if (nums[i] > 255) throw invalidURL(input);
  if (nums[nums.length - 1] >= 256 ** (5 - nums.length)) throw invalidURL(input);
  let ipv4 = nums[nums.length - 1];
  for (let i = 0; i < nums.length - 1; i++) ipv4 += nums[i] * 256 ** (3 - i);
  const out = [];
  for (let i = 3; i >= 0; i--) out[out.length] = String(MathFloor(ipv4 / 256 ** i) % 256);
  return out.join('.');
}

function parseIPv6(s, input) {
  const pieces = [0, 0, 0, 0, 0, 0, 0, 0];
  let piece = 0;
  let compress = null;
  let i = 0;
  const isHex = (ch) => ch !== undefined && RE_HEX_CHAR.test(ch);
  const isDigit = (ch) => ch !== undefined && RE_DIGIT_CHAR.test(ch);
  if (s[0] === ':') {
    if (s[1] !== ':') throw invalidURL(input);
    i = 2;
    compress = ++piece;
  }
  while (i < s.length) {
    if (piece === 8) throw invalidURL(input);
    if (s[i] === ':') {
      if (compress !== null) throw invalidURL(input);
      i++;
      compress = ++piece;
      continue;
    }
    let value = 0;
    let length = 0;
    while (length < 4 && isHex(s[i])) {
      value = value * 16 + parseInt(s[i], 16);
      i++;
      length++;
    }
    if (s[i] === '.') {
      if (length === 0 || piece > 6) throw invalidURL(input);
      i -= length;
      let seen = 0;
      while (i < s.length) {
        let v = null;
        if (seen > 0) {
          if (s[i] === '.' && seen < 4) i++;
          else throw invalidURL(input);
        }
        if (!isDigit(s[i])) throw invalidURL(input);
        while (isDigit(s[i])) {
          const d = parseInt(s[i], 10);
          if (v === null) v = d;
          else if (v === 0) throw invalidURL(input);
          else v = v * 10 + d;
          if (v > 255) throw invalidURL(input);
          i++;
        }
        pieces[piece] = pieces[piece] * 256 + v;
        seen++;
        if (seen === 2 || seen === 4) piece++;
      }
      if (seen !== 4) throw invalidURL(input);
      break;
    } else if (s[i] === ':') {
      i++;
      if (i >= s.length) throw invalidURL(input);
    } else if (i < s.length) throw invalidURL(input);
    pieces[piece++] = value;
  }
  if (compress !== null) {
    let swaps = piece - compress;
    piece = 7;
    while (piece !== 0 && swaps > 0) {
      const t = pieces[compress + swaps - 1];
      pieces[compress + swaps - 1] = pieces[piece];
      pieces[piece] = t;
      piece--;
      swaps--;
    }
  } else if (piece !== 8) throw invalidURL(input);
  // Serialise, compressing the longest run of two or more zero pieces.
  let best = -1;
  let bestLen = 1;
  for (let k = 0; k < 8; ) {
    if (pieces[k] !== 0) {
      k++;
      continue;
    }
    let e = k;
    while (e < 8 && pieces[e] === 0) e++;
    if (e - k > bestLen) {
      best = k;
      bestLen = e - k;
    }
    k = e;
  }
  let out = '';
  for (let k = 0; k < 8; k++) {
    if (k === best) {
      out += k === 0 ? '::' : ':';
      k += bestLen - 1;
      continue;
    }
    out += pieces[k].toString(16) + (k < 7 ? ':' : '');
  }
  return `[${out}]`;
}

function parseHost(host, special, input) {
  if (host[0] === '[') {
    if (host[host.length - 1] !== ']') throw invalidURL(input);
    return parseIPv6(host.slice(1, -1), input);
  }
  if (!special) {
    if (FORBIDDEN_HOST.test(host)) throw invalidURL(input);
    return percentEncode(host, C0_SET);
  }
  // The common case: an already-canonical ASCII host name.
  if (RE_LOWER_ASCII_HOST.test(host) && !endsInNumber(host)) return host;
  const labels = percentDecode(host).normalize('NFC').toLowerCase().split(RE_LABEL_DOTS);
  let ascii = '';
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    ascii += (i ? '.' : '') + (RE_ASCII.test(label) ? label : 'xn--' + punycodeEncode(label));
  }
  if (ascii === '' || FORBIDDEN_DOMAIN.test(ascii)) throw invalidURL(input);
  return endsInNumber(ascii) ? parseIPv4(ascii, input) : ascii;
}

// --- the parser ------------------------------------------------------------------

function shortenPath(path, scheme) {
  if (scheme === 'file:' && path.length === 1 && RE_DRIVE_LETTER.test(path[0])) return;
  path.length = MathMax(0, path.length - 1);
}

const isSingleDot = (s) => s === '.' || (s.length === 3 && s.toLowerCase() === '%2e');
const isDoubleDot = (s) => {
  if (s === '..') return true;
  if (s.length < 4 || s.length > 6) return false;
  const l = s.toLowerCase();
  return l === '.%2e' || l === '%2e.' || l === '%2e%2e';
};

function parsePath(text, record, special) {
  const segments = special && text.indexOf('\\') !== -1 ? text.split(RE_ANY_SLASH) : text.split('/');
  const path = record.path;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i];
    const last = i === segments.length - 1;
    if (isDoubleDot(seg)) {
      shortenPath(path, record.scheme);
      if (last) path[path.length] = '';
    } else if (isSingleDot(seg)) {
      if (last) path[path.length] = '';
    } else {
      path[path.length] = percentEncode(seg, PATH_SET);
    }
  }
}

function cleanInput(raw) {
  let input = String(raw);
  const first = input.charCodeAt(0);
  const last = input.charCodeAt(input.length - 1);
  if (first <= 0x20 || last <= 0x20) input = input.replace(RE_EDGE_SPACE, '');
  if (input.indexOf('\t') !== -1 || input.indexOf('\n') !== -1 || input.indexOf('\r') !== -1)
    input = input.replace(RE_TAB_NEWLINE, '');
  return input;
}

// The common case, an absolute http(s) URL that is already in canonical
// form (lower-case host, no dot segments, nothing to percent-encode), is
// taken apart by the shim (native.simpleUrl); anything else takes the full path.
const SIMPLE_DOT_SEGMENT = 1;
const SIMPLE_HEXISH_LABEL = 2;

function parseSimpleURL(input) {
  const m = native.simpleUrl(input);
  if (m === null) return null;
  const flags = m[6];
  const host = m[1];
  if (flags & SIMPLE_DOT_SEGMENT || (flags & SIMPLE_HEXISH_LABEL && endsInNumber(host))) return null;
  const scheme = m[0];
  let port = '';
  if (m[2] !== undefined) {
    const n = Number(m[2]);
    if (n > 65535) return null;
    port = SPECIAL_PORTS[scheme] === String(n) ? '' : String(n);
  }
  const path = m[3] || '/';
  return {
    scheme,
    username: '',
    password: '',
    host,
    port,
    path: path.slice(1).split('/'),
    opaque: null,
    query: m[4] === undefined ? null : m[4],
    fragment: m[5] === undefined ? null : m[5],
  };
}

function parseURL(rawInput, base) {
  const simple = typeof rawInput === 'string' ? parseSimpleURL(rawInput) : null;
  if (simple !== null) return simple;
  const input = cleanInput(rawInput);
  const record = { scheme: '', username: '', password: '', host: null, port: '', path: [], opaque: null, query: null, fragment: null };
  let rest = input;

  const hash = rest.indexOf('#');
  if (hash !== -1) {
    record.fragment = percentEncode(rest.slice(hash + 1), FRAGMENT_SET);
    rest = rest.slice(0, hash);
  }

  const schemeMatch = RE_SCHEME.exec(rest);
  if (!schemeMatch) {
    if (!base) throw invalidURL(rawInput);
    return resolveRelative(rest, record, base, rawInput);
  }
  record.scheme = schemeMatch[1].toLowerCase() + ':';
  rest = rest.slice(schemeMatch[0].length);
  const special = isSpecial(record.scheme);

  if (special && base && base.scheme === record.scheme && !RE_SLASH.test(rest)) {
    return resolveRelative(rest, record, base, rawInput);
  }
  const before = splitQuery(rest, record, special);
  if (special) {
    if (record.scheme === 'file:') parseFile(before, record, rawInput);
    else parseAuthorityAndPath(before.replace(RE_SLASHES, ''), record, true, rawInput);
  } else if (before.slice(0, 2) === '//') {
    parseAuthorityAndPath(before.slice(2), record, false, rawInput);
  } else if (before[0] === '/') {
    parsePath(before.slice(1), record, false);
  } else {
    record.opaque = percentEncode(before, C0_SET);
  }
  return record;
}

// Sets the record's query from `rest`; returns what comes before it.
function splitQuery(rest, record, special) {
  const q = rest.indexOf('?');
  if (q === -1) return rest;
  record.query = percentEncode(rest.slice(q + 1), special ? SPECIAL_QUERY_SET : QUERY_SET);
  return rest.slice(0, q);
}

function parseAuthorityAndPath(text, record, special, rawInput) {
  const end = special ? text.search(RE_ANY_SLASH) : text.indexOf('/');
  const authority = end === -1 ? text : text.slice(0, end);
  const pathText = end === -1 ? '' : text.slice(end + 1);
  const at = authority.lastIndexOf('@');
  let hostPort = authority;
  if (at !== -1) {
    const userinfo = authority.slice(0, at);
    hostPort = authority.slice(at + 1);
    const colon = userinfo.indexOf(':');
    record.username = percentEncode(colon === -1 ? userinfo : userinfo.slice(0, colon), USERINFO_SET);
    record.password = colon === -1 ? '' : percentEncode(userinfo.slice(colon + 1), USERINFO_SET);
    if (hostPort === '') throw invalidURL(rawInput);
  }
  let hostText = hostPort;
  const portMatch = hostPort.indexOf(':') === -1 ? null : RE_PORT.exec(hostPort);
  if (portMatch && !(hostPort[0] === '[' && portMatch.index < hostPort.indexOf(']'))) {
    hostText = hostPort.slice(0, portMatch.index);
    const port = portMatch[1];
    if (port !== '') {
      if (!RE_DIGITS.test(port) || Number(port) > 65535) throw invalidURL(rawInput);
      const n = String(Number(port));
      record.port = SPECIAL_PORTS[record.scheme] === n ? '' : n;
    }
  }
  if (hostText === '') {
    if (special || record.username || record.password || record.port) throw invalidURL(rawInput);
    record.host = '';
  } else {
    record.host = parseHost(hostText, special, rawInput);
  }
  if (end !== -1 || special) parsePath(pathText, record, special);
}

function parseFile(text, record, rawInput) {
  const rest = text.replace(RE_TWO_SLASHES, '');
  if (rest === text) {
    record.host = '';
    parsePath(text.replace(RE_SLASH, ''), record, true);
    return;
  }
  const end = rest.search(RE_ANY_SLASH);
  const host = end === -1 ? rest : rest.slice(0, end);
  record.host = host === '' || host === 'localhost' ? '' : parseHost(host, true, rawInput);
  parsePath(end === -1 ? '' : rest.slice(end + 1), record, true);
}

function resolveRelative(rest, record, base, rawInput) {
  if (base.opaque !== null) {
    if (rest === '' && record.fragment !== null) return { ...base, fragment: record.fragment };
    throw invalidURL(rawInput);
  }
  record.scheme = base.scheme;
  const special = isSpecial(record.scheme);
  if (special ? RE_TWO_SLASHES.test(rest) : rest.slice(0, 2) === '//') {
    const before = splitQuery(rest, record, special);
    if (record.scheme === 'file:') parseFile(before, record, rawInput);
    else parseAuthorityAndPath(before.slice(2), record, special, rawInput);
    return record;
  }
  record.username = base.username;
  record.password = base.password;
  record.host = base.host;
  record.port = base.port;
  if (rest === '') {
    record.path = base.path.slice();
    record.query = base.query;
    return record;
  }
  const before = splitQuery(rest, record, special);
  if (before === '') {
    record.path = base.path.slice();
    if (record.query === null) record.query = base.query;
  } else if (special ? RE_SLASH.test(before) : before[0] === '/') {
    parsePath(before.slice(1), record, special);
  } else {
    record.path = base.path.slice();
    shortenPath(record.path, record.scheme);
    parsePath(before, record, special);
  }
  return record;
}

function serializePath(r) {
  if (r.opaque !== null) return r.opaque;
  let out = '';
  if (r.host === null && r.path.length > 1 && r.path[0] === '') out += '/.';
  const path = r.path;
  for (let i = 0; i < path.length; i++) out += '/' + path[i];
  return out;
}

function serializeURL(r, excludeFragment) {
  let out = r.scheme;
  if (r.host !== null) {
    out += '//';
    if (r.username || r.password) out += r.username + (r.password ? ':' + r.password : '') + '@';
    out += r.host + (r.port ? ':' + r.port : '');
  }
  out += serializePath(r);
  if (r.query !== null) out += '?' + r.query;
  if (!excludeFragment && r.fragment !== null) out += '#' + r.fragment;
  return out;
}

// --- URLSearchParams ----------------------------------------------------------------

const formEncode = (s) => native.percentEncode(String(s), FORM_SET);
const formDecode = (s) => native.percentDecode(s, true);

function parseForm(text) {
  const list = [];
  for (const part of text.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq === -1 ? part : part.slice(0, eq);
    const value = eq === -1 ? '' : part.slice(eq + 1);
    list[list.length] = [formDecode(name), formDecode(value)];
  }
  return list;
}

const searchParamsOwner = Symbol('url');

class URLSearchParams {
  constructor(init = '') {
    this._list = [];
    this[searchParamsOwner] = null;
    if (init instanceof URLSearchParams) this._list = init._list.map((p) => [p[0], p[1]]);
    else if (isObject(init) && typeof init[SymbolIterator] === 'function') {
      for (const pair of init) {
        const p = Array.from(pair);
        if (p.length !== 2) throw new TypeErrorCtor('Each query pair must be an iterable [name, value] tuple');
        this._list[this._list.length] = [String(p[0]), String(p[1])];
      }
    } else if (isObject(init)) {
      for (const key of ObjectKeys(init)) this._list[this._list.length] = [key, String(init[key])];
    } else {
      const s = String(init);
      this._list = parseForm(s[0] === '?' ? s.slice(1) : s);
    }
  }
  _update() {
    const url = this[searchParamsOwner];
    if (url) {
      const text = this.toString();
      url._record.query = text === '' ? null : text;
    }
  }
  get size() {
    return this._list.length;
  }
  append(name, value) {
    this._list[this._list.length] = [String(name), String(value)];
    this._update();
  }
  delete(name, value) {
    name = String(name);
    this._list = this._list.filter((p) => !(p[0] === name && (value === undefined || p[1] === String(value))));
    this._update();
  }
  get(name) {
    name = String(name);
    for (const p of this._list) if (p[0] === name) return p[1];
    return null;
  }
  getAll(name) {
    name = String(name);
    return (this._list.filter((p) => p[0] === name)).map((p) => p[1]);
  }
  has(name, value) {
    name = String(name);
    return this._list.some((p) => p[0] === name && (value === undefined || p[1] === String(value)));
  }
  set(name, value) {
    name = String(name);
    value = String(value);
    const out = [];
    let found = false;
    for (const p of this._list) {
      if (p[0] !== name) out[out.length] = p;
      else if (!found) {
        out[out.length] = [name, value];
        found = true;
      }
    }
    if (!found) out[out.length] = [name, value];
    this._list = out;
    this._update();
  }
  sort() {
    const indexed = this._list.map((p, i) => [p, i]);
    indexed.sort((a, b) => (a[0][0] < b[0][0] ? -1 : a[0][0] > b[0][0] ? 1 : a[1] - b[1]));
    this._list = indexed.map((x) => x[0]);
    this._update();
  }
  forEach(callback, thisArg) {
    for (const p of this._list.slice()) ReflectApply(callback, thisArg, [p[1], p[0], this]);
  }
  *keys() {
    for (const p of this._list) yield p[0];
  }
  *values() {
    for (const p of this._list) yield p[1];
  }
  *entries() {
    for (const p of this._list) yield [p[0], p[1]];
  }
  [SymbolIterator]() {
    return this.entries();
  }
  toString() {
    return (this._list.map((p) => formEncode(p[0]) + '=' + formEncode(p[1]))).join('&');
  }
  get [SymbolToStringTag]() {
    return 'URLSearchParams';
  }
}

// --- URL -------------------------------------------------------------------------------

class URL {
  constructor(input, base) {
    let baseRecord = null;
    if (base !== undefined) baseRecord = base instanceof URL ? base._record : parseURL(String(base), null);
    this._record = parseURL(String(input), baseRecord);
    this._params = null;
  }
  static canParse(input, base) {
    try {
      new URL(input, base);
      return true;
    } catch {
      return false;
    }
  }
  static parse(input, base) {
    try {
      return new URL(input, base);
    } catch {
      return null;
    }
  }
  _reparse(href) {
    this._record = parseURL(href, null);
    if (this._params) this._params._list = parseForm(this._record.query || '');
  }
  get href() {
    return serializeURL(this._record, false);
  }
  set href(value) {
    this._reparse(String(value));
  }
  get origin() {
    const r = this._record;
    if (r.scheme === 'blob:') {
      try {
        return new URL(serializePath(r)).origin;
      } catch {
        return 'null';
      }
    }
    if (!isSpecial(r.scheme) || r.scheme === 'file:') return 'null';
    return r.scheme + '//' + r.host + (r.port ? ':' + r.port : '');
  }
  get protocol() {
    return this._record.scheme;
  }
  set protocol(value) {
    const scheme = ((String(value)).replace(/:.*$/, '')).toLowerCase();
    if (!(/^[a-z][a-z0-9+\-.]*$/).test(scheme)) return;
    if (isSpecial(scheme + ':') !== isSpecial(this._record.scheme)) return;
    const r = this._record;
    r.scheme = scheme + ':';
    if (SPECIAL_PORTS[r.scheme] === r.port) r.port = '';
  }
  get username() {
    return this._record.username;
  }
  set username(value) {
    if (this._record.host) this._record.username = percentEncode(String(value), USERINFO_SET);
  }
  get password() {
    return this._record.password;
  }
  set password(value) {
    if (this._record.host) this._record.password = percentEncode(String(value), USERINFO_SET);
  }
  get host() {
    const r = this._record;
    return r.host === null ? '' : r.host + (r.port ? ':' + r.port : '');
  }
  set host(value) {
    if (this._record.opaque !== null) return;
    try {
      const probe = parseURL(this._record.scheme + '//' + String(value) + '/', null);
      this._record.host = probe.host;
      this._record.port = probe.port;
    } catch {}
  }
  get hostname() {
    return this._record.host === null ? '' : this._record.host;
  }
  set hostname(value) {
    if (this._record.opaque !== null) return;
    try {
      const probe = parseURL(this._record.scheme + '//' + (String(value)).replace(/:.*$/, '') + '/', null);
      this._record.host = probe.host;
    } catch {}
  }
  get port() {
    return this._record.port;
  }
  set port(value) {
    const r = this._record;
    if (r.host === null || r.host === '' || r.scheme === 'file:') return;
    const text = String(value);
    if (text === '') {
      r.port = '';
      return;
    }
    const m = (/^[0-9]+/).exec(text);
    if (!m || Number(m[0]) > 65535) return;
    const n = String(Number(m[0]));
    r.port = SPECIAL_PORTS[r.scheme] === n ? '' : n;
  }
  get pathname() {
    return serializePath(this._record);
  }
  set pathname(value) {
    const r = this._record;
    if (r.opaque !== null) return;
    r.path = [];
    const text = String(value);
    const special = isSpecial(r.scheme);
    parsePath((special ? /^[/\\]/ : /^\//).test(text) ? text.slice(1) : text, r, special);
  }
  get search() {
    const q = this._record.query;
    return q === null || q === '' ? '' : '?' + q;
  }
  set search(value) {
    let text = String(value);
    if (text[0] === '?') text = text.slice(1);
    this._record.query = text === '' ? null : percentEncode(text, isSpecial(this._record.scheme) ? SPECIAL_QUERY_SET : QUERY_SET);
    if (this._params) this._params._list = parseForm(this._record.query || '');
  }
  get searchParams() {
    if (!this._params) {
      this._params = new URLSearchParams(this._record.query || '');
      this._params[searchParamsOwner] = this;
    }
    return this._params;
  }
  get hash() {
    const f = this._record.fragment;
    return f === null || f === '' ? '' : '#' + f;
  }
  set hash(value) {
    let text = String(value);
    if (text[0] === '#') text = text.slice(1);
    this._record.fragment = text === '' ? null : percentEncode(text, FRAGMENT_SET);
  }
  toString() {
    return this.href;
  }
  toJSON() {
    return this.href;
  }
  get [SymbolToStringTag]() {
    return 'URL';
  }
}
defineGlobal('URL', URL);
defineGlobal('URLSearchParams', URLSearchParams);

// --- Node's url and querystring modules ------------------------------------------------------

function legacyParse(text, parseQuery) {
  const u = new URL(text);
  const search = u.search;
  return {
    protocol: u.protocol,
    slashes: true,
    auth: u.username ? decodeURIComponent(u.username) + (u.password ? ':' + decodeURIComponent(u.password) : '') : null,
    host: u.host,
    port: u.port || null,
    hostname: u.hostname,
    hash: u.hash || null,
    search: search || null,
    query: parseQuery ? querystringParse(search.slice(1)) : search.slice(1) || null,
    pathname: u.pathname,
    path: u.pathname + search,
    href: u.href,
  };
}

function legacyFormat(obj) {
  if (typeof obj === 'string') return new URL(obj).href;
  if (obj instanceof URL) return obj.href;
  let out = (obj.protocol || '') + (obj.slashes || obj.host || obj.hostname ? '//' : '');
  if (obj.auth) out += obj.auth + '@';
  out += obj.host || (obj.hostname || '') + (obj.port ? ':' + obj.port : '');
  out += obj.pathname || '';
  if (obj.search) out += obj.search;
  else if (isObject(obj.query)) {
    const q = querystringStringify(obj.query);
    if (q) out += '?' + q;
  }
  if (obj.hash) out += obj.hash;
  return out;
}

function querystringParse(text, sep = '&', eq = '=') {
  const out = ObjectCreate(null);
  if (typeof text !== 'string' || text === '') return out;
  for (const part of text.split(sep)) {
    if (part === '') continue;
    const i = part.indexOf(eq);
    const k = formDecode(i === -1 ? part : part.slice(0, i));
    const v = i === -1 ? '' : formDecode(part.slice(i + eq.length));
    if (!hasOwn(out, k)) out[k] = v;
    else if (ArrayIsArray(out[k])) out[k][out[k].length] = v;
    else out[k] = [out[k], v];
  }
  return out;
}

const querystringEscape = (s) => native.percentEncode(String(s), COMPONENT_SET);

function querystringStringify(obj, sep = '&', eq = '=') {
  if (!isObject(obj)) return '';
  const parts = [];
  const prim = (v) => (typeof v === 'string' ? v : typeof v === 'number' && NumberIsFinite(v) ? String(v) : typeof v === 'boolean' || typeof v === 'bigint' ? String(v) : '');
  for (const k of ObjectKeys(obj)) {
    const v = obj[k];
    if (ArrayIsArray(v)) for (const x of v) parts[parts.length] = querystringEscape(k) + eq + querystringEscape(prim(x));
    else parts[parts.length] = querystringEscape(k) + eq + querystringEscape(prim(v));
  }
  return parts.join(sep);
}
