-- The management plane: tenants and their keys, actions with their versions,
-- secrets and bindings, OAuth clients, users, the action cache, executions.
-- Every table holding tenant data carries tenant_id and is keyed by it first.

CREATE TABLE tenants (
    id uuid PRIMARY KEY,
    name text NOT NULL UNIQUE,
    -- Operator overrides of the platform defaults (runtime/limits.py, quotas).
    limits jsonb NOT NULL DEFAULT '{}'::jsonb,
    allowed_redirect_hosts text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- API keys are stored as SHA-256 of the key (keys are 256-bit random, so a
-- fast hash is enough); the prefix only helps people tell keys apart.
CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    tenant_id uuid REFERENCES tenants (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('tenant', 'operator')),
    key_hash bytea NOT NULL UNIQUE,
    prefix text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    CHECK ((kind = 'operator') = (tenant_id IS NULL))
);

-- Each tenant's data keys, wrapped by a master key that is never stored.
CREATE TABLE tenant_data_keys (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    version integer NOT NULL,
    master_key_id text NOT NULL,
    wrapped_key bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, version)
);

CREATE TABLE actions (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL,
    name text NOT NULL,
    trigger_id text NOT NULL,
    trigger_version text NOT NULL,
    runtime text NOT NULL,
    code text NOT NULL,
    bytecode bytea NOT NULL,
    bytecode_sha256 text NOT NULL,
    engine_build_id text NOT NULL,
    handlers text[] NOT NULL,
    status text NOT NULL,
    -- The version traffic uses; NULL until the first deploy.
    deployed_version_id uuid,
    -- Whether the draft differs from the deployed version.
    all_changes_deployed boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE action_versions (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    action_id uuid NOT NULL,
    number integer NOT NULL,
    trigger_id text NOT NULL,
    trigger_version text NOT NULL,
    runtime text NOT NULL,
    code text NOT NULL,
    bytecode bytea NOT NULL,
    bytecode_sha256 text NOT NULL,
    engine_build_id text NOT NULL,
    handlers text[] NOT NULL,
    -- The version this one re-deployed, for a rollback.
    rolled_back_from uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, action_id, number),
    FOREIGN KEY (tenant_id, action_id) REFERENCES actions (tenant_id, id) ON DELETE CASCADE
);

-- Secret values, encrypted with the tenant's data key. `scope` is 'draft' or
-- the id of the version the secret was snapshot into; the associated data of
-- each ciphertext binds tenant, action, scope, name and key version.
CREATE TABLE action_secrets (
    tenant_id uuid NOT NULL,
    action_id uuid NOT NULL,
    scope text NOT NULL,
    name text NOT NULL,
    key_version integer NOT NULL,
    ciphertext bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, action_id, scope, name),
    FOREIGN KEY (tenant_id, action_id) REFERENCES actions (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, key_version) REFERENCES tenant_data_keys (tenant_id, version)
);

-- A trigger's flow: the ordered list of deployed actions.
CREATE TABLE bindings (
    tenant_id uuid NOT NULL,
    trigger_id text NOT NULL,
    position integer NOT NULL,
    id uuid NOT NULL,
    action_id uuid NOT NULL,
    display_name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, trigger_id, position),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, action_id) REFERENCES actions (tenant_id, id)
);

CREATE TABLE clients (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    client_id text NOT NULL,
    name text NOT NULL,
    callbacks text[] NOT NULL DEFAULT '{}',
    client_secret_hash bytea NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, client_id)
);

CREATE TABLE users (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id text NOT NULL,
    email text NOT NULL,
    email_verified boolean NOT NULL DEFAULT false,
    name text,
    password_hash text,
    app_metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    user_metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    logins_count integer NOT NULL DEFAULT 0,
    last_login timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX users_email ON users (tenant_id, lower(email));

-- api.cache: per tenant and trigger, swept when expired.
CREATE TABLE cache_entries (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    trigger_id text NOT NULL,
    key text NOT NULL,
    value text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, trigger_id, key)
);
CREATE INDEX cache_entries_expiry ON cache_entries (expires_at);

CREATE TABLE executions (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL,
    trigger_id text NOT NULL,
    -- 'test' for the test endpoint, 'flow' for logins.
    kind text NOT NULL,
    status text NOT NULL,
    -- One entry per action run: name, ids, handler, status, error, logs, stats.
    results jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX executions_created ON executions (tenant_id, created_at DESC);
