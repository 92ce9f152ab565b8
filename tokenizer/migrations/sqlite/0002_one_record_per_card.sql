-- One record per card and scope.  Older releases could store a card twice when two
-- threads tokenised it at once; every such record keeps its token (it may be in use),
-- but only the newest stays the card's record: the others' fingerprints get their
-- token appended, so they still open by token and are never found by card again.
UPDATE vault SET fingerprint = fingerprint || ':superseded-by-newer:' || token
WHERE EXISTS (
    SELECT 1 FROM vault AS newer
    WHERE newer.scope = vault.scope AND newer.fingerprint = vault.fingerprint
      AND (newer.expires_at > vault.expires_at
           OR (newer.expires_at = vault.expires_at AND newer.token > vault.token))
);
DROP INDEX IF EXISTS vault_card;
CREATE UNIQUE INDEX vault_card ON vault (scope, fingerprint);
