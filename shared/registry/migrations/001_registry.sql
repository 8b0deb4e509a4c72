-- The registry: current state of every revision, environment pointers, the outbox
-- that feeds the audit log, and per-consumer inboxes for idempotent handling.

CREATE TABLE adapters (
    name        text PRIMARY KEY,
    last_seq    bigint NOT NULL DEFAULT 0,   -- per-adapter event sequence (no gaps)
    last_hash   text   NOT NULL DEFAULT '',  -- head of the per-adapter hash chain
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE revisions (
    adapter     text NOT NULL REFERENCES adapters(name),
    revision    text NOT NULL,               -- the revision's content digest
    version     integer NOT NULL,            -- compare-and-set guard, +1 per transition
    tracks      jsonb NOT NULL,              -- {"": revision-track state, env: env-track state}
    manifest_digest text,
    submitter   text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (adapter, revision)
);

CREATE TABLE pointers (
    adapter         text NOT NULL REFERENCES adapters(name),
    environment     text NOT NULL,
    active          text,
    canary          text,
    canary_percent  integer NOT NULL DEFAULT 0,
    canary_tenants  text[] NOT NULL DEFAULT '{}',
    rollback_target text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (adapter, environment)
);

CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    adapter      text   NOT NULL,
    seq          bigint NOT NULL,
    event_id     text   NOT NULL UNIQUE,     -- deterministic: a redelivery yields the same id
    event_type   text   NOT NULL,
    payload      bytea  NOT NULL,            -- the Avro single-object encoded event
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    UNIQUE (adapter, seq)
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE inbox (
    consumer   text NOT NULL,
    event_id   text NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
