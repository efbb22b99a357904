// The management API, called with the key the user signed in with. The key lives in sessionStorage
// only (gone with the tab, never in a URL or a cookie) and goes in the Authorization header; cookies
// are never sent, so the hosted login's cookies have nothing to do with the console.

const KEY = "tollgate.key";

export const session = {
  get key() {
    return sessionStorage.getItem(KEY);
  },
  save(key) {
    sessionStorage.setItem(KEY, key);
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
};

/** The API's error body: `{statusCode, error, message, errorCode}`, and details such as `line` and `column`. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `The server answered HTTP ${status}`);
    this.status = status;
    this.code = body?.errorCode ?? "http_error";
    this.body = body ?? {};
  }
}

function url(path, query) {
  const out = new URL(`/api/v2${path}`, window.location.origin);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") out.searchParams.set(name, String(value));
  }
  return out;
}

function headers(key, extra) {
  return { Authorization: `Bearer ${key}`, ...extra };
}

/** Call one route; its JSON answer (null for 204), or an ApiError. A 401 signs the user out. */
export async function call(method, path, { body, query, key = session.key } = {}) {
  const init = { method, cache: "no-store", credentials: "omit", headers: headers(key, { Accept: "application/json" }) };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let reply;
  try {
    reply = await fetch(url(path, query), init);
  } catch {
    throw new ApiError(0, { errorCode: "unreachable", message: "The server cannot be reached: is it running?" });
  }
  if (reply.status === 204) return null;
  const data = await reply.json().catch(() => null);
  if (!reply.ok) {
    const error = new ApiError(reply.status, data);
    if (reply.status === 401 && key === session.key) window.dispatchEvent(new CustomEvent("tollgate:unauthorized", { detail: error }));
    throw error;
  }
  return data;
}

/** Server-sent events of a route, read with fetch (EventSource cannot send the Authorization header).
 *  Resolves once connected, with a promise of the end of the stream; `onEvent(name, data)` gets each event. */
export async function stream(path, onEvent, signal) {
  const reply = await fetch(url(path), {
    cache: "no-store", credentials: "omit", signal, headers: headers(session.key, { Accept: "text/event-stream" }),
  });
  if (!reply.ok) throw new ApiError(reply.status, await reply.json().catch(() => null));
  const reader = reply.body.pipeThrough(new TextDecoderStream()).getReader();
  async function read() {
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replaceAll("\r\n", "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue; // a comment: the server's keep-alive
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") name = text;
          else if (field === "data") data.push(text);
        }
        if (data.length) onEvent(name, JSON.parse(data.join("\n")));
      }
    }
  }
  return { done: read() };
}
