// util.inspect and util.format, close enough to Node's that console output
// reads the same as in the editor and in Node.

const INSPECT_WIDTH = 72;
const INSPECT_MAX_ITEMS = 100;
const INSPECT_MAX_STRING = 10000;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

// What quoteString must do more than put the string in single quotes.
const QUOTE_WORK = /['\\\x00-\x1f\x7f]/;

function quoteString(s) {
  if (s.length <= INSPECT_MAX_STRING && !(QUOTE_WORK).test(s)) return `'${s}'`;
  if (s.length > INSPECT_MAX_STRING) {
    s = s.slice(0, INSPECT_MAX_STRING);
    return quoteString(s) + `... ${s.length - INSPECT_MAX_STRING} more characters`;
  }
  let quote = "'";
  if (s.indexOf("'") !== -1) {
    if (s.indexOf('"') === -1) quote = '"';
    else if (s.indexOf('`') === -1) quote = '`';
  }
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    const c = s.charCodeAt(i);
    if (ch === quote || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + (c.toString(16)).padStart(2, '0');
    else out += ch;
  }
  return quote + out + quote;
}

function formatKey(key) {
  if (typeof key === 'symbol') return `[${String(key)}]`;
  return (IDENTIFIER).test(key) ? key : quoteString(key);
}

function functionLabel(fn) {
  let source = '';
  try {
    source = fn.toString();
  } catch {}
  const name = fn.name ? `: ${fn.name}` : ' (anonymous)';
  if (source.slice(0, 6) === 'class ') return `[class ${fn.name || '(anonymous)'}]`;
  let kind = 'Function';
  const proto = ObjectGetPrototypeOf(fn);
  if (proto === AsyncFunctionPrototype) kind = 'AsyncFunction';
  else if (proto && proto[SymbolToStringTag] === 'GeneratorFunction') kind = 'GeneratorFunction';
  else if (proto && proto[SymbolToStringTag] === 'AsyncGeneratorFunction') kind = 'AsyncGeneratorFunction';
  return `[${kind}${name}]`;
}

function wrapEntries(open, entries, close, indent) {
  if (entries.length === 0) return open === '{' ? '{}' : `${open}${close}`;
  let total = open.length + close.length;
  let multiline = false;
  for (const e of entries) {
    total += e.length + 2;
    if (e.indexOf('\n') !== -1) multiline = true;
  }
  if (!multiline && total + indent.length <= INSPECT_WIDTH) {
    return `${open} ${entries.join(', ')} ${close}`;
  }
  const pad = indent + '  ';
  return `${open}\n${pad}${entries.join(`,\n${pad}`)}\n${indent}${close}`;
}

function inspectValue(value, depth, seen, indent) {
  switch (typeof value) {
    case 'string':
      return quoteString(value);
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value);
    case 'bigint':
      return `${value}n`;
    case 'boolean':
    case 'undefined':
      return String(value);
    case 'symbol':
      return String(value);
    case 'function': {
      const label = functionLabel(value);
      const keys = ObjectKeys(value);
      if (keys.length === 0 || depth < 0) return label;
      return inspectObjectBody(value, label + ' ', depth, seen, indent);
    }
  }
  if (value === null) return 'null';
  if (seen.has(value)) return '[Circular *1]';
  if (value instanceof ErrorCtor) {
    const stack = typeof value.stack === 'string' && value.stack ? value.stack : '';
    const head = `${value.name || 'Error'}: ${value.message}`;
    return stack && stack.indexOf(head) === 0 ? stack : stack ? `${head}\n${stack}` : `[${head}]`;
  }
  if (value instanceof Date) {
    const t = value.getTime();
    return t === t ? value.toISOString() : 'Invalid Date';
  }
  if (value instanceof RegExp) return String(value);
  if (typeof Buffer === 'function' && value instanceof Buffer) {
    const shown = ((Array.from(value.subarray(0, 50))).slice()).map((b) => (b.toString(16)).padStart(2, '0'),
    );
    const more = value.length > 50 ? ` ... ${value.length - 50} more bytes` : '';
    return `<Buffer${shown.length ? ' ' : ''}${shown.join(' ')}${more}>`;
  }
  if (value instanceof Promise) return 'Promise { <unknown> }';
  if (depth < 0) {
    if (ArrayIsArray(value)) return '[Array]';
    const tag = value.constructor && value.constructor.name;
    return tag && tag !== 'Object' ? `[${tag}]` : '[Object]';
  }
  seen.add(value);
  try {
    if (ArrayIsArray(value)) {
      const items = [];
      const n = MathMin(value.length, INSPECT_MAX_ITEMS);
      let holes = 0;
      for (let i = 0; i < n; i++) {
        if (!hasOwn(value, i)) {
          holes++;
          continue;
        }
        if (holes) {
          items[items.length] = `<${holes} empty item${holes > 1 ? 's' : ''}>`;
          holes = 0;
        }
        items[items.length] = inspectValue(value[i], depth - 1, seen, indent + '  ');
      }
      if (holes) items[items.length] = `<${holes} empty item${holes > 1 ? 's' : ''}>`;
      if (value.length > n) items[items.length] = `... ${value.length - n} more item${value.length - n > 1 ? 's' : ''}`;
      return wrapEntries('[', items, ']', indent);
    }
    if (ArrayBufferIsView(value) && !(value instanceof DataView)) {
      const tag = value[SymbolToStringTag];
      const items = [];
      const n = MathMin(value.length, INSPECT_MAX_ITEMS);
      for (let i = 0; i < n; i++) items[items.length] = inspectValue(value[i], depth - 1, seen, indent + '  ');
      if (value.length > n) items[items.length] = `... ${value.length - n} more items`;
      return wrapEntries(`${tag}(${value.length}) [`, items, ']', indent);
    }
    if (value instanceof MapCtor) {
      const items = [];
      for (const [k, v] of value) {
        if (items.length >= INSPECT_MAX_ITEMS) break;
        items[items.length] = `${inspectValue(k, depth - 1, seen, indent + '  ')} => ${inspectValue(v, depth - 1, seen, indent + '  ')}`;
      }
      return wrapEntries(`Map(${value.size}) {`, items, '}', indent);
    }
    if (value instanceof SetCtor) {
      const items = [];
      for (const v of value) {
        if (items.length >= INSPECT_MAX_ITEMS) break;
        items[items.length] = inspectValue(v, depth - 1, seen, indent + '  ');
      }
      return wrapEntries(`Set(${value.size}) {`, items, '}', indent);
    }
    let prefix = '';
    const proto = ObjectGetPrototypeOf(value);
    if (proto === null) prefix = '[Object: null prototype] ';
    else if (proto !== Object.prototype && value.constructor && value.constructor.name)
      prefix = `${value.constructor.name} `;
    return inspectObjectBody(value, prefix, depth, seen, indent);
  } finally {
    seen.delete(value);
  }
}

function inspectObjectBody(value, prefix, depth, seen, indent) {
  const items = [];
  const keys = ReflectOwnKeys(value);
  for (const key of keys) {
    let desc = Object.getOwnPropertyDescriptor(value, key);
    if (!desc || !desc.enumerable) continue;
    // A member of the event not read yet (decoded on first use) is shown as the value it is.
    if (desc.get && desc.set && native.settleLazy(value, key)) desc = Object.getOwnPropertyDescriptor(value, key);
    if (items.length >= INSPECT_MAX_ITEMS) {
      items[items.length] = '...';
      break;
    }
    let shown;
    if (desc.get || desc.set) shown = desc.get && desc.set ? '[Getter/Setter]' : desc.get ? '[Getter]' : '[Setter]';
    else shown = inspectValue(desc.value, depth - 1, seen, indent + '  ');
    items[items.length] = `${formatKey(key)}: ${shown}`;
  }
  if (prefix && items.length === 0) return `${prefix}{}`;
  return prefix + wrapEntries('{', items, '}', indent);
}

// Nesting the shim shows by itself (inspect.c's MAX_NEST): deeper values, and any depth without a limit
// that reaches it, are left to inspectValue.
const NATIVE_MAX_DEPTH = 64;

function inspect(value, options) {
  let depth = 2;
  if (isObject(options) && options.depth !== undefined) depth = options.depth === null ? Infinity : options.depth;
  try {
    // Plain data (the event, objects and arrays of strings, numbers...) is written by the shim in one call.
    if (isObject(value) && (depth === Infinity || (NumberIsInteger(depth) && depth >= 0 && depth <= NATIVE_MAX_DEPTH))) {
      const shown = native.inspectPlain(value, depth === Infinity ? 1000 : depth);
      if (shown !== null) return shown;
    }
    return inspectValue(value, depth, new SetCtor(), '');
  } catch (e) {
    return '[object could not be inspected]';
  }
}

function formatWithOptions(args) {
  const first = args[0];
  // One argument is printed as it is (Node formats only with two or more).
  if (args.length === 1) {
    if (typeof first === 'string') return first;
    if (typeof first === 'number') return Object.is(first, -0) ? '-0' : String(first);
  }
  let out = '';
  let next = 0;
  if (typeof first === 'string') {
    next = 1;
    let i = 0;
    while (i < first.length) {
      const pct = first.indexOf('%', i);
      if (pct === -1 || pct === first.length - 1) {
        out += first.slice(i);
        break;
      }
      out += first.slice(i, pct);
      const spec = first[pct + 1];
      i = pct + 2;
      if (spec === '%') {
        out += '%';
        continue;
      }
      if (next >= args.length || ('sdifjoOc').indexOf(spec) === -1) {
        out += '%' + spec;
        continue;
      }
      const arg = args[next++];
      switch (spec) {
        case 's':
          out += typeof arg === 'string' ? arg : typeof arg === 'object' && arg !== null ? inspect(arg, { depth: 1 }) : String(arg);
          break;
        case 'd':
        case 'i': {
          if (typeof arg === 'bigint') out += `${arg}n`;
          else if (typeof arg === 'symbol') out += 'NaN';
          else {
            const n = Number(arg);
            out += spec === 'i' ? String(n < 0 ? Math.ceil(n) : MathFloor(n)) : String(n);
          }
          break;
        }
        case 'f':
          out += typeof arg === 'symbol' ? 'NaN' : String(parseFloat(arg));
          break;
        case 'j':
          try {
            out += JSONStringify(arg);
          } catch {
            out += '[Circular]';
          }
          break;
        case 'o':
        case 'O':
          out += inspect(arg, { depth: spec === 'o' ? 4 : 2 });
          break;
        case 'c':
          break;
      }
    }
  }
  for (; next < args.length; next++) {
    const arg = args[next];
    if (out.length || next > 0) out += ' ';
    out += typeof arg === 'string' ? arg : inspect(arg);
  }
  return out;
}

function format(...args) {
  return formatWithOptions(args);
}
