-- A client's refresh tokens (Auth0's client refresh_token object): rotation
-- (each exchange replaces the token presented with a new one of the same
-- family, and a replaced token presented again after the leeway revokes the
-- whole family: someone else holds a copy), and their lifetimes, absolute and
-- idle. The family's index comes in 0009, built concurrently.
ALTER TABLE clients ADD COLUMN refresh_token jsonb NOT NULL
    DEFAULT '{"rotation_type": "non-rotating", "leeway": 0, "token_lifetime": 2592000,
              "idle_token_lifetime": null}'::jsonb;
ALTER TABLE refresh_tokens ADD COLUMN family_id uuid, ADD COLUMN rotated_at timestamptz,
    ADD COLUMN idle_expires_at timestamptz;
