// Warm-up, run once before the snapshot is taken. A representative
// post-login execution leaves behind what every execution would otherwise
// build first: object shapes for the event and the records the api makes,
// interned property names, hashed lookups. The objects it made are kept
// (warmKeep) so that their shapes stay in the snapshot. No tenant data is
// involved: the event is made up here.

const warmKeep = [];

function warmEvent() {
  return {
    user: {
      user_id: 'auth0|000000000000000000000000',
      email: 'warm@example.invalid',
      email_verified: true,
      name: 'Warm Up',
      given_name: 'Warm',
      family_name: 'Up',
      nickname: 'warm',
      picture: 'https://example.invalid/p.png',
      created_at: '2000-01-01T00:00:00.000Z',
      updated_at: '2000-01-01T00:00:00.000Z',
      app_metadata: {},
      user_metadata: {},
      identities: [{ connection: 'c', isSocial: false, provider: 'auth0', user_id: '0' }],
      multifactor: [],
    },
    client: { client_id: 'c', name: 'c', metadata: {} },
    connection: { id: 'c', name: 'c', strategy: 'auth0' },
    request: {
      ip: '192.0.2.1',
      method: 'GET',
      hostname: 'example.invalid',
      language: 'en',
      user_agent: 'warm',
      query: {},
      body: {},
      geoip: {
        cityName: 'c', continentCode: 'c', countryCode: 'c', countryCode3: 'c', countryName: 'c',
        latitude: 0.5, longitude: 0.5, timeZone: 'c',
      },
    },
    authentication: { methods: [{ name: 'pwd', timestamp: '2000-01-01T00:00:00.000Z' }] },
    session: { id: 's' },
    stats: { logins_count: 1 },
    tenant: { id: 't' },
    transaction: {
      id: 't', locale: 'en', protocol: 'oidc-basic-profile', requested_scopes: ['openid'],
      redirect_uri: 'https://example.invalid/cb', response_mode: 'query', response_type: ['code'],
      state: 's', metadata: {},
    },
    secrets: { SECRET: 'warm-up-secret-that-is-long-enough' },
  };
}

async function warmHandler(event, api) {
  const recent = event.authentication.methods.some(
    (r) => r.name === 'x' && new Date(r.timestamp).valueOf() >= Date.now() - 1000,
  );
  const token = api.redirect.encodeToken({ secret: event.secrets.SECRET, payload: { user_id: event.user.user_id } });
  api.redirect.sendUserTo('https://example.invalid/factor', { query: { session_token: token } });
  api.idToken.setCustomClaim('https://example.invalid/roles', ['a', 'b']);
  api.accessToken.setCustomClaim('https://example.invalid/n', 1);
  api.accessToken.addScope('read:warm');
  api.user.setAppMetadata('k', 'v');
  api.user.setUserMetadata('k', { v: 1 });
  api.transaction.setMetadata('k', 'v');
  api.cache.set('k', 'v');
  api.cache.get('k');
  console.log('warm', { recent, n: 1 }, [1, 2]);
  warmKeep.push(new URL('https://example.invalid/p?q=1#f'), new URLSearchParams('a=1&b=2'));
}

function warm() {
  const event = warmEvent();
  warmKeep.push(event);
  resetRun();
  run.quiet = false;
  apiContext.event = event;
  apiContext.handler = 'onExecutePostLogin';
  resetCache({});
  outcome.settled = false;
  warmHandler(event, APIS['post-login']).then(() => settle(null), (e) => settle(actionError(e)));
  return warmDone;
}

// After the job queue has run: the warm-up must have completed.
function warmDone() {
  if (!outcome.settled || outcome.error !== null) throw new ErrorCtor('the warm-up execution failed');
  apiContext.event = null;
  apiContext.handler = null;
  resetRun();
  resetCache({});
  return true;
}

return { start, tick, finish, check, describeError, warm };
