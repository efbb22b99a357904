// @ts-check
/**
 * Globex Retail's progressive profiling. Business customers sign up with an
 * email and a password only; the first time one of them signs in without a
 * company name on file, send them to Globex's profile page to give it, and
 * store the answer in `user_metadata.company`. Asked once: later logins find
 * the company and go straight through. Logins that cannot show a page
 * (refresh tokens, `prompt=none`) are never held up; the question waits for
 * the next interactive one.
 *
 * Secrets: PROFILE_TOKEN_SECRET, shared with the profile page, which checks
 * the token it is sent and signs its answer with the same secret.
 */

const PROFILE_PAGE = 'https://profile.globex-retail.example/complete';
const MAX_COMPANY_LENGTH = 100;

/**
 * @param {Event} event
 * @param {PostLoginAPI} api
 */
exports.onExecutePostLogin = async (event, api) => {
  if (companyOf(event.user.user_metadata) !== undefined || !api.redirect.canRedirect()) {
    return;
  }
  // Tells the page whom to ask for what. Signed, not encrypted: it names the
  // field, never personal data (the page knows the user by the token's `sub`).
  const sessionToken = api.redirect.encodeToken({
    secret: event.secrets.PROFILE_TOKEN_SECRET,
    payload: { ask: ['company'] },
  });
  api.redirect.sendUserTo(PROFILE_PAGE, { query: { session_token: sessionToken } });
};

/**
 * The page posts back to /continue with `state` and its signed answer,
 * `session_token`, whose `company` claim holds what the user typed.
 * @param {Event} event
 * @param {PostLoginAPI} api
 */
exports.onContinuePostLogin = async (event, api) => {
  const answer = api.redirect.validateToken({ secret: event.secrets.PROFILE_TOKEN_SECRET });
  const company = companyOf(answer);
  if (company === undefined) {
    api.access.deny(`A company name of 1 to ${MAX_COMPANY_LENGTH} characters is needed to use Globex Business Store.`);
    return;
  }
  api.user.setUserMetadata('company', company);
};

/**
 * The usable company name in `record` (the user's metadata, or the page's
 * answer), trimmed; undefined when there is none.
 * @param {{ readonly [key: string]: unknown }} record
 * @returns {string | undefined}
 */
function companyOf(record) {
  const company = typeof record.company === 'string' ? record.company.trim() : '';
  return company.length > 0 && company.length <= MAX_COMPANY_LENGTH ? company : undefined;
}
