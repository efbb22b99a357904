// Anchor: the same action under Node's `vm`, with a fresh context per execution.
//
// Reads commands on stdin, one JSON object per line:
//   {"setup": {"source", "event", "secrets"}}  -> compiles the action once
//   {"run": N}                                   -> N executions, prints their durations (ns)
// The api is the minimum the action uses (encodeToken, sendUserTo), built on
// Node's crypto and URL, as the hosted product's test harness builds it.
'use strict';
const vm = require('vm');
const crypto = require('crypto');
const readline = require('readline');

let script = null;
let eventText = null;
let secrets = null;

const b64url = (buf) => Buffer.from(buf).toString('base64url');

function makeApi(event, commands) {
  const api = {
    redirect: {
      encodeToken({ secret, payload = {}, expiresInSeconds = 900 }) {
        const iat = Math.floor(Date.now() / 1000);
        const claims = { iat, iss: event.request.hostname, sub: event.user.user_id, exp: iat + expiresInSeconds, ip: event.request.ip, ...payload };
        const input = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}`;
        return `${input}.${b64url(crypto.createHmac('sha256', secret).update(input).digest())}`;
      },
      sendUserTo(url, options = {}) {
        const target = new URL(url);
        for (const [k, v] of Object.entries(options.query || {})) target.searchParams.set(k, String(v));
        commands.push({ type: 'redirect', url: target.href });
        return api;
      },
    },
  };
  return api;
}

async function runOnce() {
  const started = process.hrtime.bigint();
  const context = vm.createContext({ console, URL, Date });
  const wrapper = script.runInContext(context);
  const module = { exports: {} };
  wrapper(module.exports, require, module, '/action.js', '/');
  const event = JSON.parse(eventText);
  event.secrets = secrets;
  const commands = [];
  await module.exports.onExecutePostLogin(event, makeApi(event, commands));
  const result = JSON.stringify({ status: 'completed', commands });
  const elapsed = process.hrtime.bigint() - started;
  return [Number(elapsed), result];
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  const msg = JSON.parse(line);
  if (msg.setup) {
    const wrapped = '(function (exports, require, module, __filename, __dirname) { ' + msg.setup.source + '\n})';
    script = new vm.Script(wrapped, { filename: 'action.js' });
    eventText = JSON.stringify(msg.setup.event);
    secrets = msg.setup.secrets;
    const [, result] = await runOnce();
    process.stdout.write(JSON.stringify({ ready: true, sample: result }) + '\n');
  } else if (msg.run) {
    const times = [];
    for (let i = 0; i < msg.run; i++) times.push((await runOnce())[0]);
    process.stdout.write(JSON.stringify({ times }) + '\n');
  }
});
