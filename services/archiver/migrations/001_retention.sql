-- Retention: which superseded revisions each environment keeps, and legal holds.
-- The archiver owns both: it applies the commands `adapterctl retention` sends and reads
-- them on every sweep. Nothing else reads or writes them.

CREATE TABLE retention_policies (
    environment      text    NOT NULL,
    adapter          text    NOT NULL DEFAULT '',  -- '' = every adapter in the environment
    keep_superseded  integer NOT NULL CHECK (keep_superseded >= 0),
    min_age_days     integer NOT NULL CHECK (min_age_days >= 0),
    set_by           text    NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (environment, adapter)
);

-- One row per hold ever placed: a release is recorded, never deleted, so the history of
-- who held what, why, and who let go stays in the registry.
CREATE TABLE legal_holds (
    id              bigserial PRIMARY KEY,
    adapter         text NOT NULL,
    revision        text NOT NULL,
    reason          text NOT NULL CHECK (reason <> ''),
    placed_by       text NOT NULL,
    placed_at       timestamptz NOT NULL DEFAULT now(),
    released_by     text,
    released_at     timestamptz,
    release_reason  text
);
-- At most one hold in force per revision.
CREATE UNIQUE INDEX legal_holds_in_force ON legal_holds (adapter, revision)
    WHERE released_at IS NULL;
