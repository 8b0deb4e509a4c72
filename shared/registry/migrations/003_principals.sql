-- Principals and their hashed tokens: who may act, in which role. The kernel's for now
-- (the approval service and adapterctl both read them).

-- A principal acts in one role per token; a person holding two roles has two tokens under
-- one name, which is what separation of duties compares.
CREATE TABLE principals (
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('trainer', 'approver', 'operator', 'auditor', 'admin')),
    token_hash  text NOT NULL UNIQUE,         -- sha256 hex of the bearer token; never the token
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    PRIMARY KEY (name, role)
);
