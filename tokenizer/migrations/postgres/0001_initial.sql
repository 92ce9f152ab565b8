-- The shared vault.  Only ciphertext (AES-256-GCM, token, key id and scope bound in as
-- associated data), keyed fingerprints, tokens and public card facts: no clear card data.
CREATE TABLE vault (
    token text PRIMARY KEY,
    key_id text NOT NULL,
    scope text NOT NULL,
    fingerprint text NOT NULL,
    ciphertext bytea NOT NULL,
    brand text NOT NULL,
    last4 text NOT NULL,
    pan_length integer NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    psp_token text,
    psp_authorisation text,
    -- one record per card and scope: concurrent writers of one card meet here
    CONSTRAINT vault_card UNIQUE (scope, fingerprint)
);
CREATE INDEX vault_expiry ON vault (expires_at);
CREATE INDEX vault_key ON vault (key_id);

-- The data-key generation every node seals new records under (one row, once a node
-- has written; re-encryption moves it forward).
CREATE TABLE vault_key_generation (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    key_id text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
