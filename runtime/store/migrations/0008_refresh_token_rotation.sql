-- Refresh token rotation, a client's choice (Auth0's refresh_token.rotation_type
-- and leeway): each exchange replaces the token presented with a new one of the
-- same family, and a replaced token presented again after the leeway revokes
-- the whole family (someone else holds a copy). The family's index comes in
-- 0009, built concurrently.
ALTER TABLE clients ADD COLUMN refresh_token jsonb NOT NULL
    DEFAULT '{"rotation_type": "non-rotating", "leeway": 0}'::jsonb;
ALTER TABLE refresh_tokens ADD COLUMN family_id uuid, ADD COLUMN rotated_at timestamptz;
