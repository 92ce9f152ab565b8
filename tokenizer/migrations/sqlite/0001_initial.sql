-- The vault as it was before versioned migrations (IF NOT EXISTS: a vault file made
-- by an older release, at user_version 0, already has it).
CREATE TABLE IF NOT EXISTS vault (
    token TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    ciphertext BLOB NOT NULL,
    brand TEXT NOT NULL,
    last4 TEXT NOT NULL,
    pan_length INTEGER NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    psp_token TEXT,
    psp_authorisation TEXT
);
CREATE INDEX IF NOT EXISTS vault_card ON vault (scope, fingerprint);
CREATE INDEX IF NOT EXISTS vault_expiry ON vault (expires_at);
CREATE INDEX IF NOT EXISTS vault_key ON vault (key_id);
