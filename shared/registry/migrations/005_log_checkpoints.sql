-- The relay's signed checkpoints of the lifecycle log (shared/logseal.py): each one is
-- written once to cold storage first, then recorded here so the next leader numbers the
-- next one and links it to this one's digest. Cold storage holds the proof; this table
-- only remembers where the chain of checkpoints stands.
CREATE TABLE log_checkpoints (
    log        text   NOT NULL,
    number     bigint NOT NULL,
    digest     text   NOT NULL,
    uri        text   NOT NULL,
    key_id     text   NOT NULL,
    issued_at  timestamptz NOT NULL,
    PRIMARY KEY (log, number)
);
