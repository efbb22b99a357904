// @ts-check
/**
 * Acme Bank's custom second factor: after the first factor, send the user to
 * the bank's own verification page unless this session completed it in the
 * last 24 hours. When the user comes back, check the signed token the page
 * returns and record the factor in the session.
 *
 * Secrets: SESSION_TOKEN_SECRET, shared with the verification page.
 */

const CUSTOM_METHOD_URL = 'https://verify.acme-bank.example/factor';
const PROMPT_TTL = 1000 * 60 * 60 * 24; // 24 hours

/**
 * @param {Event} event
 * @param {PostLoginAPI} api
 */
exports.onExecutePostLogin = async (event, api) => {
  const recent = (event.authentication?.methods ?? []).some((record) => {
    // Timestamps arrive as ISO 8601 strings.
    const timestamp = new Date(record.timestamp);
    return record.name === CUSTOM_METHOD_URL && timestamp.valueOf() >= Date.now() - PROMPT_TTL;
  });
  if (recent) {
    return;
  }

  const sessionToken = api.redirect.encodeToken({
    secret: event.secrets.SESSION_TOKEN_SECRET,
    payload: {
      user_id: event.user.user_id,
    },
  });

  // Send the user to the custom factor; they come back to /continue.
  api.redirect.sendUserTo(CUSTOM_METHOD_URL, {
    query: { session_token: sessionToken },
  });
};

/**
 * @param {Event} event
 * @param {PostLoginAPI} api
 */
exports.onContinuePostLogin = async (event, api) => {
  const payload = api.redirect.validateToken({
    secret: event.secrets.SESSION_TOKEN_SECRET,
    tokenParameterName: 'session_token',
  });

  if (!validateSessionToken(payload, event)) {
    return api.access.deny('Unauthorized');
  }

  // Record the completion of the custom factor in the user's session.
  api.authentication.recordMethod(CUSTOM_METHOD_URL);
};

/**
 * The verification page says which user it verified; it must be this one.
 * @param {Record<string, unknown>} payload
 * @param {Event} event
 */
function validateSessionToken(payload, event) {
  return payload.user_id === event.user.user_id && payload.verified === true;
}
