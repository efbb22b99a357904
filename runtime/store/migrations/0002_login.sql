-- The login plane: sessions with their recorded methods, suspended flows
-- waiting for /continue, the hosted login's requests, codes, refresh tokens
-- and signing keys, and the one-time results of flows run through the flow API.
-- Every secret handed to a browser or a client (state, cookie, code, token,
-- result reference) is 256-bit random and stored only as its SHA-256.

-- A login session. Hosted sessions are found by the hash of their cookie;
-- external ones (an identity server's session, through the flow API) by the
-- hash of the identity server's session id and the user id.
CREATE TABLE sessions (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL,
    token_hash bytea NOT NULL,
    kind text NOT NULL CHECK (kind IN ('hosted', 'external')),
    user_id text NOT NULL,
    -- [{name, timestamp}]: first factors and the methods actions recorded.
    methods jsonb NOT NULL DEFAULT '[]'::jsonb,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    cookie_mode text NOT NULL DEFAULT 'persistent',
    created_at timestamptz NOT NULL DEFAULT now(),
    authenticated_at timestamptz NOT NULL DEFAULT now(),
    last_interacted_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    idle_expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, token_hash)
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- A post-login flow suspended by api.redirect.sendUserTo, until /continue
-- consumes it (once) or it expires. `flow` holds the pinned steps, the
-- position, the event and what the actions have done so far.
CREATE TABLE flow_transactions (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL,
    state_hash bytea NOT NULL UNIQUE,
    -- Hash of the browser's binding cookie (hosted login); NULL for the flow API.
    browser_hash bytea,
    flow jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    consumed_at timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX flow_transactions_expiry ON flow_transactions (expires_at);

-- /authorize requests of the hosted login waiting for the login form.
CREATE TABLE login_requests (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id_hash bytea PRIMARY KEY,
    browser_hash bytea NOT NULL,
    params jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    consumed_at timestamptz
);
CREATE INDEX login_requests_expiry ON login_requests (expires_at);

-- Authorization codes: single use, short-lived; `grant` is what the tokens will say.
CREATE TABLE authorization_codes (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    code_hash bytea PRIMARY KEY,
    client_id text NOT NULL,
    redirect_uri text NOT NULL,
    code_challenge text NOT NULL,
    grant_data jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    consumed_at timestamptz
);
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);

CREATE TABLE refresh_tokens (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL,
    token_hash bytea NOT NULL UNIQUE,
    client_id text NOT NULL,
    user_id text NOT NULL,
    session_id uuid,
    scope text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    PRIMARY KEY (tenant_id, id)
);

-- Each tenant's token signing keys (RS256). The private key is sealed with
-- the tenant's data key, like action secrets.
CREATE TABLE signing_keys (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kid text NOT NULL,
    public_jwk jsonb NOT NULL,
    key_version integer NOT NULL,
    sealed_private_key bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    retired_at timestamptz,
    PRIMARY KEY (tenant_id, kid)
);

-- Outcomes of flows started through the flow API and finished by /continue,
-- redeemed once by the identity server with the reference the browser brought back.
CREATE TABLE flow_results (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    ref_hash bytea PRIMARY KEY,
    outcome jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    redeemed_at timestamptz
);
CREATE INDEX flow_results_expiry ON flow_results (expires_at);

-- Executions of a suspended flow are updated when it resumes.
CREATE INDEX executions_status ON executions (tenant_id, status);
