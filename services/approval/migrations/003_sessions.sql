-- The approval page's sessions: the cookie carries a random session id, never the bearer
-- token. Only the id's SHA-256 is stored, beside the SHA-256 of the token it was opened
-- with (so revoking the principal ends the session) and an absolute expiry.
CREATE TABLE approval_sessions (
    id_hash     text PRIMARY KEY,
    token_hash  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX approval_sessions_expiry ON approval_sessions (expires_at);
