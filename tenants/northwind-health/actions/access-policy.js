// @ts-check
/**
 * Northwind Health's access policy, run for every login to its patient
 * portal and clinician workspace:
 *
 * 1. Deny sign-ins from the countries Northwind may not serve (those under
 *    comprehensive sanctions), with a reason the application can show.
 * 2. Put the user's roles (`app_metadata.roles`, kept by Northwind's admin
 *    tools) in the ID and access tokens, under Northwind's namespace, so that
 *    the applications and the records API authorise without another lookup.
 *
 * The country list is a constant rather than a secret: it is policy, not
 * confidential, and belongs with the code, where it is reviewed, versioned
 * and deployed like any other change (a secret would be write-only and
 * invisible in the management API).
 */

const BLOCKED_COUNTRIES = ['CU', 'IR', 'KP', 'SY']; // ISO 3166-1 alpha-2
const ROLES_CLAIM = 'https://northwind-health.example/roles';

/**
 * @param {Event} event
 * @param {PostLoginAPI} api
 */
exports.onExecutePostLogin = async (event, api) => {
  const { countryCode, countryName } = event.request.geoip;
  if (countryCode === undefined) {
    // A deny list cannot deny what it cannot place: the login goes on, and the
    // execution record says so.
    console.warn(`No country for ${event.request.ip}: the country policy does not apply`);
  } else if (BLOCKED_COUNTRIES.includes(countryCode)) {
    api.access.deny(`Northwind Health accounts cannot be used from ${countryName ?? countryCode}.`);
    return;
  }

  const roles = rolesOf(event.user);
  api.idToken.setCustomClaim(ROLES_CLAIM, roles);
  api.accessToken.setCustomClaim(ROLES_CLAIM, roles);
};

/**
 * The user's roles: the strings of `app_metadata.roles`, or none. Always a
 * list, so that applications can rely on the claim being there.
 * @param {PostLoginEvent.User} user
 * @returns {string[]}
 */
function rolesOf(user) {
  const roles = user.app_metadata.roles;
  return Array.isArray(roles) ? roles.filter((role) => typeof role === 'string') : [];
}
