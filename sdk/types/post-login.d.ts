// The post-login trigger: the `event` an action's handlers receive and the
// `api` they act through, as this platform implements them (the guest's
// runtime/engine/guest/prelude/60_post_login.js, 50_tokens.js and 70_cache.js;
// the host checks every command again). The names follow Auth0's, so that
// actions written for Auth0 keep their JSDoc:
//
//     /**
//      * @param {Event} event
//      * @param {PostLoginAPI} api
//      */
//     exports.onExecutePostLogin = async (event, api) => { ... };
//
// or, typing the whole handler: `/** @type {OnExecutePostLogin} */`.
//
// A script, not a module: everything declared here is global.

/**
 * What the login is about. It is context, read-only: changing it changes
 * nothing (use the `api`). Logins through the hosted login have every object
 * below that is not marked optional; through the flow API the identity
 * server builds the event (the platform sets `tenant` and `secrets`).
 */
interface PostLoginEvent {
  readonly user: PostLoginEvent.User;
  readonly client: PostLoginEvent.Client;
  readonly connection: PostLoginEvent.Connection;
  /**
   * The HTTP request. In `onContinuePostLogin` it describes the request that
   * came back to `/continue` (its query and body carry what the redirect
   * target sent), except `hostname`, which stays the login's.
   */
  readonly request: PostLoginEvent.Request;
  /** This action's secrets, by name (set with the action, never shown again by the API). */
  readonly secrets: { readonly [name: string]: string };
  readonly stats: { readonly logins_count: number };
  /** The tenant: `id` is its name. */
  readonly tenant: { readonly id: string };
  /** What already happened in this session. */
  readonly authentication?: PostLoginEvent.Authentication;
  readonly authorization?: { readonly roles: readonly string[] };
  readonly session?: PostLoginEvent.Session;
  /** The authorization request; absent when the identity server does not describe one. */
  readonly transaction?: PostLoginEvent.Transaction;
  /** Set during a refresh token exchange (then `api.refreshToken` is available). */
  readonly refresh_token?: PostLoginEvent.RefreshToken;
  readonly organization?: {
    readonly id: string;
    readonly name: string;
    readonly display_name: string;
    readonly metadata: { readonly [key: string]: string };
  };
  /** The API the access token is for (its audience). */
  readonly resource_server?: { readonly identifier: string };
  readonly custom_domain?: { readonly domain: string; readonly domain_metadata?: { readonly [key: string]: string } };
  readonly security_context?: { readonly ja3?: string; readonly ja4?: string };
}

/** Auth0's name for the post-login event, which the actions' JSDoc uses. */
type Event = PostLoginEvent;

declare namespace PostLoginEvent {
  /** JSON data kept on the user: read here, changed with `api.user.set*Metadata`. */
  interface Metadata {
    readonly [key: string]: unknown;
  }

  interface User {
    /** The user's id, e.g. `auth0|5f7c8ec7c33c6c004bbafe82`: the one field every login has. */
    readonly user_id: string;
    readonly email?: string;
    readonly email_verified?: boolean;
    readonly username?: string;
    readonly phone_number?: string;
    readonly phone_verified?: boolean;
    readonly name?: string;
    readonly given_name?: string;
    readonly family_name?: string;
    readonly nickname?: string;
    readonly picture?: string;
    /** ISO 8601. */
    readonly created_at?: string;
    readonly updated_at?: string;
    readonly last_password_reset?: string;
    /** Data the user does not control (roles, plan, flags), kept by the tenant and its actions. */
    readonly app_metadata: Metadata;
    /** Data about the user's preferences and profile, which the user may edit. */
    readonly user_metadata: Metadata;
    readonly identities?: readonly Identity[];
    /** The MFA providers the user has enrolled with. */
    readonly multifactor?: readonly string[];
    readonly enrolledFactors?: readonly { readonly type: string; readonly options?: { readonly [key: string]: unknown } }[];
  }

  interface Identity {
    readonly connection: string;
    readonly isSocial: boolean;
    readonly provider: string;
    readonly user_id: string;
    readonly profileData?: { readonly [key: string]: unknown };
  }

  interface Client {
    readonly client_id: string;
    readonly name: string;
    /** The application's own settings (strings), set by the tenant. */
    readonly metadata: { readonly [key: string]: string };
  }

  interface Connection {
    readonly id: string;
    readonly name: string;
    /** `auth0` for the tenant's own users; the provider's name for social connections. */
    readonly strategy: string;
    readonly metadata?: { readonly [key: string]: string };
  }

  interface Request {
    readonly ip: string;
    readonly method: string;
    /** The login's host name (the issuer of the tokens). */
    readonly hostname: string;
    readonly user_agent?: string;
    /** The first language of `Accept-Language`. */
    readonly language?: string;
    readonly asn?: string;
    /** The query string's parameters. */
    readonly query: { readonly [name: string]: string | undefined };
    /** The POST body's parameters (form or JSON). */
    readonly body: { readonly [name: string]: unknown };
    /** Where the request comes from; empty when the platform cannot tell, so every field may be missing. */
    readonly geoip: GeoIp;
  }

  interface GeoIp {
    readonly cityName?: string;
    readonly continentCode?: string;
    /** ISO 3166-1 alpha-2, e.g. `GB`. */
    readonly countryCode?: string;
    /** ISO 3166-1 alpha-3, e.g. `GBR`. */
    readonly countryCode3?: string;
    readonly countryName?: string;
    readonly latitude?: number;
    readonly longitude?: number;
    readonly subdivisionCode?: string;
    readonly subdivisionName?: string;
    readonly timeZone?: string;
  }

  interface Authentication {
    /**
     * The methods completed in this session, first factors (`pwd`,
     * `federated`, `passkey`...) and custom ones, whose name is the URL given
     * to `api.authentication.recordMethod()` on an earlier login.
     */
    readonly methods: readonly AuthenticationMethod[];
  }

  interface AuthenticationMethod {
    readonly name: string;
    /** When it was completed, ISO 8601 (e.g. `2026-11-28T10:15:00.000Z`). */
    readonly timestamp: string;
    readonly type?: string;
  }

  interface Session {
    readonly id: string;
    readonly created_at?: string;
    readonly updated_at?: string;
    readonly authenticated_at?: string;
    readonly last_interacted_at?: string;
    readonly expires_at?: string;
    readonly idle_expires_at?: string;
    readonly cookie?: { readonly mode: 'persistent' | 'non-persistent' };
    /** Set with `api.session.setMetadata`; changes show here at once. */
    readonly metadata?: { readonly [key: string]: string };
  }

  type Protocol =
    | 'oidc-basic-profile'
    | 'oidc-implicit-profile'
    | 'oidc-hybrid-profile'
    | 'oidc-ciba'
    | 'oidc-ciba-web-link'
    | 'oauth2-device-code'
    | 'oauth2-resource-owner'
    | 'oauth2-resource-owner-jwt-bearer'
    | 'oauth2-password'
    | 'oauth2-webauthn'
    | 'oauth2-access-token'
    | 'oauth2-refresh-token'
    | 'oauth2-token-exchange'
    | 'samlp'
    | 'wsfed'
    | 'wstrust-usernamemixed';

  interface Transaction {
    readonly id?: string;
    readonly protocol?: Protocol;
    readonly redirect_uri?: string;
    readonly requested_scopes?: readonly string[];
    readonly response_type?: readonly string[];
    readonly response_mode?: 'query' | 'fragment' | 'form_post' | 'web_message';
    /** The application's OAuth `state` (not the platform's redirect state). */
    readonly state?: string;
    readonly prompt?: readonly string[];
    readonly acr_values?: readonly string[];
    readonly ui_locales?: readonly string[];
    readonly locale?: string;
    readonly login_hint?: string;
    readonly correlation_id?: string;
    /** Set with `api.transaction.setMetadata`; changes show here at once and survive redirects. */
    readonly metadata?: { readonly [key: string]: string | number | boolean };
  }

  interface RefreshToken {
    readonly id: string;
    readonly client_id?: string;
    readonly session_id?: string;
    readonly user_id?: string;
    readonly created_at?: string;
    readonly expires_at?: string;
    readonly idle_expires_at?: string;
    readonly last_exchanged_at?: string;
    readonly rotating?: boolean;
    /** Set with `api.refreshToken.setMetadata`. */
    readonly metadata?: { readonly [key: string]: string };
  }
}

/**
 * What a post-login action can do. Most methods record a command that the
 * platform checks and applies after the action returns (so code after
 * `deny` or `sendUserTo` still runs), and return the `api` for chaining.
 * Arguments are checked when the method is called: a wrong one throws, and an
 * uncaught throw fails the login.
 */
interface PostLoginAPI {
  readonly access: {
    /**
     * Denies the login. The flow stops once this action returns: no later
     * action runs, but what was queued before (metadata) is still written.
     * The application receives `error=access_denied` with `reason` as the
     * `error_description`, so it should make sense to the user.
     */
    deny(reason: string): PostLoginAPI;
  };
  /** Changes to the access token issued at the end of the flow. */
  readonly accessToken: PostLoginAPI.TokenApi;
  /** Changes to the ID token issued at the end of the flow. */
  readonly idToken: PostLoginAPI.TokenApi;
  readonly authentication: {
    /**
     * Asks for a second factor (the first usable of `factor` and
     * `additionalFactors`); later actions wait until the user satisfies it.
     * Reported to the identity server through the flow API; the hosted login
     * has no second factor of its own.
     */
    challengeWith(factor: PostLoginAPI.Factor, options?: { additionalFactors?: readonly PostLoginAPI.Factor[] }): PostLoginAPI;
    /** Lets the user pick one of `factors` (non-empty) to satisfy. */
    challengeWithAny(factors: readonly PostLoginAPI.Factor[]): PostLoginAPI;
    /** Makes the user enroll a factor; already enrolled ones are skipped. */
    enrollWith(factor: PostLoginAPI.Factor, options?: { additionalFactors?: readonly PostLoginAPI.Factor[] }): PostLoginAPI;
    /** Lets the user pick one of `factors` (non-empty) to enroll. */
    enrollWithAny(factors: readonly PostLoginAPI.Factor[]): PostLoginAPI;
    /**
     * Records in the session that the user completed the custom method
     * `providerUrl` (an absolute https URL of at most 2,048 characters).
     * Later logins in the same session list it in `event.authentication.methods`
     * with the time it was recorded. Only in `onContinuePostLogin`, after the
     * user came back from a redirect: anywhere else it throws.
     */
    recordMethod(providerUrl: string): PostLoginAPI;
    /**
     * Issues the tokens for another user (account linking): `primaryUserId`,
     * 1 to 128 characters. Once per transaction: a second call throws.
     */
    setPrimaryUser(primaryUserId: string): PostLoginAPI;
  };
  readonly multifactor: {
    /**
     * Requires MFA with `provider` at the end of the flow (`none` turns it
     * off); later actions still run. Duo needs `providerOptions`. Reported to
     * the identity server through the flow API.
     */
    enable(
      provider: 'duo',
      options: {
        allowRememberBrowser?: boolean;
        providerOptions: { host: string; ikey: string; skey: string; username?: string };
      },
    ): PostLoginAPI;
    enable(
      provider: 'any' | 'none' | 'guardian' | 'google-authenticator',
      options?: { allowRememberBrowser?: boolean },
    ): PostLoginAPI;
  };
  readonly redirect: {
    /**
     * Sends the browser to `url` once this action returns, with each `query`
     * entry set as a parameter (replacing one of the same name). The flow is
     * suspended: later actions wait, and the target sends the user back to
     * `/continue` with the `state` parameter the platform adds, which resumes
     * this action's `onContinuePostLogin`. The URL must be https, on one of
     * the tenant's allowed redirect hosts; of two calls the later one counts.
     * A login that cannot show pages (see `canRedirect`) fails with
     * `interaction_required`.
     */
    sendUserTo(url: string, options?: { query?: { [name: string]: string | number | boolean | undefined } }): PostLoginAPI;
    /**
     * A JWT signed with HS256 and `secret`, to pass to the redirect target.
     * Its claims: `iat` (now), `iss` (the login's hostname), `sub` (the user's
     * id), `exp` (`iat` + `expiresInSeconds`, default 900), `ip`, then
     * `payload`, which may override them. Signed, not encrypted: keep personal
     * data out of it.
     */
    encodeToken(options: {
      secret: string;
      payload?: { [claim: string]: unknown };
      expiresInSeconds?: number;
    }): string;
    /**
     * The claims of the token the redirect target sent back to `/continue`,
     * in the query or the POST body (the body wins) parameter
     * `tokenParameterName` (default `session_token`). It must be signed with
     * HS256 and `secret`, unexpired, and carry `iat`, `exp`, `sub` (the user's
     * id), `iss` (the login's hostname) and `state` (the `/continue` state).
     * Otherwise it throws `The session token is invalid: <reason>`, or, when
     * the parameter is missing, `There is no parameter called '<name>'...`.
     */
    validateToken(options: { secret: string; tokenParameterName?: string }): PostLoginAPI.TokenPayload;
    /**
     * Whether this login can show the user a page: false for `prompt=none`
     * and for the protocols without a browser (refresh token, password and
     * resource owner grants, WebAuthn). Auth0 lists it as deprecated; here it
     * is the rule the platform itself applies to `sendUserTo`.
     */
    canRedirect(): boolean;
  };
  readonly user: {
    /**
     * Sets (or, with null, removes) one key of the user's `app_metadata`.
     * All updates of the flow are merged and written once, at its end or
     * before a redirect; later actions see them in `event.user` at once.
     * JSON values only.
     */
    setAppMetadata(key: string, value: unknown): PostLoginAPI;
    /** Sets (or, with null, removes) one key of the user's `user_metadata`, as `setAppMetadata` does. */
    setUserMetadata(key: string, value: unknown): PostLoginAPI;
  };
  readonly transaction: {
    /**
     * Sets (or, with null, removes) data shared by the flow's actions for this
     * login only: it shows in `event.transaction.metadata` at once, survives
     * redirects and is gone when the flow ends. Keys of 1 to 64 characters;
     * strings (at most 8 KB), finite numbers or booleans; 16 KB in all.
     */
    setMetadata(key: string, value: string | number | boolean | null): PostLoginAPI;
  };
  readonly validation: {
    /** Fails the login with an error `code` and `message`; the flow stops once this action returns. */
    error(code: string, message: string): PostLoginAPI;
  };
  readonly session: {
    /** Ends the session and denies the login with `reason`; the flow stops once this action returns. */
    revoke(reason: string, options?: { preserveRefreshTokens?: boolean }): PostLoginAPI;
    /** When the session ends, in epoch milliseconds; of several calls the earliest wins. */
    setExpiresAt(absoluteMs: number): PostLoginAPI;
    /** When the session ends if unused, in epoch milliseconds; of several calls the earliest wins. */
    setIdleExpiresAt(absoluteMs: number): PostLoginAPI;
    /** Whether the session cookie outlives the browser (`persistent`); the last call wins. */
    setCookieMode(mode: 'persistent' | 'non-persistent'): PostLoginAPI;
    /**
     * Sets (or, with null, removes) session metadata, shown at once in
     * `event.session.metadata`: at most 25 keys of [a-zA-Z0-9_-], values of
     * at most 255 characters. Throws when the login has no session.
     */
    setMetadata(key: string, value: string | null): PostLoginAPI;
    /** Removes one key of the session metadata. */
    deleteMetadata(key: string): PostLoginAPI;
    /** Removes all the session metadata. */
    evictMetadata(): PostLoginAPI;
  };
  /** Only during a refresh token exchange (`event.refresh_token` is set): anywhere else every method throws. */
  readonly refreshToken: {
    /** Revokes the refresh token: the exchange fails with HTTP 403 `access_denied`. */
    revoke(reason: string): PostLoginAPI;
    /** When the refresh token expires, in epoch milliseconds; of several calls the earliest wins. */
    setExpiresAt(absoluteMs: number): PostLoginAPI;
    /** When it expires if unused, in epoch milliseconds; of several calls the earliest wins. */
    setIdleExpiresAt(absoluteMs: number): PostLoginAPI;
    /** Sets (or, with null, removes) refresh token metadata, by the rules of `api.session.setMetadata`. */
    setMetadata(key: string, value: string | null): PostLoginAPI;
    /** Removes one key of the refresh token's metadata. */
    deleteMetadata(key: string): PostLoginAPI;
    /** Removes all the refresh token's metadata. */
    evictMetadata(): PostLoginAPI;
  };
  /**
   * A small key/value store per tenant and trigger, shared by its logins, best
   * effort: entries may be gone at any time. String values; keys of at most
   * 64 bytes, values of at most 4 KB, 20 entries and 8 KB in all; 20 writes
   * (sets and deletes) per execution. The entries an execution sees are loaded when it starts;
   * its writes apply when it ends (not for `/test` runs).
   */
  readonly cache: PostLoginAPI.Cache;
  readonly rules: {
    /** Whether a Rule ran in this transaction: always false, this platform has no Rules. */
    wasExecuted(ruleId: string): boolean;
  };
}

declare namespace PostLoginAPI {
  interface TokenApi {
    /**
     * Adds a claim to the token (JSON values only). Use a namespaced name
     * (`https://example.com/roles`): restricted names (`sub`, `iss`, `aud`...)
     * and Auth0's namespaces are dropped silently, as is whatever passes 100 KB
     * of custom claims.
     */
    setCustomClaim(name: string, value: unknown): PostLoginAPI;
    /** Adds a scope (1 to 280 characters, no whitespace); at most 2,000 scope changes. */
    addScope(scope: string): PostLoginAPI;
    /** Removes a scope, by the rules of `addScope`. */
    removeScope(scope: string): PostLoginAPI;
  }

  type Factor =
    | { type: 'otp' | 'email' | 'webauthn-platform' | 'webauthn-roaming' | 'recovery-code' }
    | { type: 'phone'; options?: { preferredMethod?: 'sms' | 'voice' | 'both' } }
    | { type: 'push' | 'push-notification'; options?: { otpFallback?: boolean } };

  /** The claims of a validated token: the standard ones, always there, and the redirect target's own. */
  interface TokenPayload {
    readonly iat: number;
    readonly exp: number;
    readonly sub: string;
    readonly iss: string;
    readonly state: string;
    readonly [claim: string]: unknown;
  }

  interface CacheRecord {
    readonly value: string;
    /** Epoch milliseconds. */
    readonly expires_at: number;
  }

  type CacheSetResult =
    | { readonly type: 'success'; readonly record: CacheRecord }
    | {
        readonly type: 'error';
        readonly code:
          | 'CacheKeySizeExceeded'
          | 'CacheValueSizeExceeded'
          | 'CacheSizeExceeded'
          | 'ItemAlreadyExpired'
          | 'InvalidExpiry'
          | 'MaxSideEffectsExceeded';
      };

  type CacheDeleteResult =
    | { readonly type: 'success'; readonly record: CacheRecord }
    | { readonly type: 'error'; readonly code: 'CacheKeyDoesNotExist' | 'MaxSideEffectsExceeded' };

  interface Cache {
    /** The live entry for `key`, or undefined. */
    get(key: string): CacheRecord | undefined;
    /**
     * Stores `value` until `ttl` milliseconds from now or the epoch
     * milliseconds `expires_at`, whichever comes first (default 15 minutes, at
     * most 24 hours). Limits are reported in the result, not thrown.
     */
    set(key: string, value: string, options?: { ttl?: number; expires_at?: number }): CacheSetResult;
    /** Removes the entry for `key`: an error result when there is none. */
    delete(key: string): CacheDeleteResult;
  }
}

/**
 * `exports.onExecutePostLogin`: runs for every login (and refresh) the
 * action's flow handles. Must be an `async` function: the platform refuses
 * anything else at upload. What it resolves to is ignored.
 */
type OnExecutePostLogin = (event: PostLoginEvent, api: PostLoginAPI) => Promise<unknown>;

/**
 * `exports.onContinuePostLogin`: runs when the user comes back to `/continue`
 * after this action's `api.redirect.sendUserTo`, with a fresh `event.request`.
 */
type OnContinuePostLogin = (event: PostLoginEvent, api: PostLoginAPI) => Promise<unknown>;
