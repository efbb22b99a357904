// api.redirect.encodeToken and validateToken.
//
// encodeToken signs in the guest (HS256 with the shim's HMAC-SHA256, in one
// native call), so it needs no crossing. validateToken crosses once: the
// host checks the token with pinned algorithms, because that is where the
// security rules live.

const JWT_HEADER = native.base64Encode('{"alg":"HS256","typ":"JWT"}', true);
const DEFAULT_TOKEN_SECONDS = 900;

function requireSecret(secret, method) {
  if (typeof secret !== 'string' || secret === '')
    throw new TypeErrorCtor(`api.redirect.${method}() needs a non-empty string "secret"`);
}

function encodeToken(event, options) {
  if (!isObject(options)) throw new TypeErrorCtor('api.redirect.encodeToken() needs an options object');
  const { secret, payload = {}, expiresInSeconds = DEFAULT_TOKEN_SECONDS } = options;
  requireSecret(secret, 'encodeToken');
  if (!isPlainRecord(payload)) throw new TypeErrorCtor('api.redirect.encodeToken() needs "payload" to be an object');
  if (typeof expiresInSeconds !== 'number' || !NumberIsFinite(expiresInSeconds))
    throw new TypeErrorCtor('api.redirect.encodeToken() needs "expiresInSeconds" to be a number');
  const iat = MathFloor(DateNow() / 1000);
  const request = event.request || {};
  const claims = {
    iat,
    iss: request.hostname,
    sub: event.user && event.user.user_id,
    exp: iat + expiresInSeconds,
    ip: request.ip,
    ...payload,
  };
  // Serialised, encoded and signed in the shim (the secret as its UTF-8 bytes).
  return native.signJwt(JWT_HEADER, claims, secret);
}

function continueParameters(event) {
  const request = event.request || {};
  const query = isPlainRecord(request.query) ? request.query : {};
  const body = isPlainRecord(request.body) ? request.body : {};
  return { ...query, ...body };
}

function validateToken(event, options) {
  if (!isObject(options)) throw new TypeErrorCtor('api.redirect.validateToken() needs an options object');
  const { secret, tokenParameterName = 'session_token' } = options;
  requireSecret(secret, 'validateToken');
  const params = continueParameters(event);
  const token = params[tokenParameterName];
  if (token === undefined || token === null)
    throw new ErrorCtor(
      `There is no parameter called '${tokenParameterName}' available in either the POST body or query string.`,
    );
  const request = event.request || {};
  const answer = JSONParse(
    native.hostCall(
      'validate_token',
      JSONStringify({
        token: String(token),
        secret,
        state: params.state === undefined ? null : String(params.state),
        subject: event.user ? event.user.user_id : null,
        issuer: request.hostname === undefined ? null : request.hostname,
      }),
    ),
  );
  if (!isObject(answer) || typeof answer.error === 'string')
    throw new ErrorCtor(`The session token is invalid: ${isObject(answer) ? answer.error : 'unreadable answer'}`);
  return answer.payload;
}
