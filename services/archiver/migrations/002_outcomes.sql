-- The archiver's answer to each retention command (`adapterctl retention set|hold|release`),
-- by command id: what adapterctl waits for, and the record of who changed what and why.
CREATE TABLE archiver_outcomes (
    cause_id     text PRIMARY KEY,
    action       text NOT NULL,
    adapter      text NOT NULL,
    environment  text NOT NULL,
    revision     text,
    outcome      text NOT NULL CHECK (outcome IN ('committed', 'refused')),
    detail       text NOT NULL,
    principal    text NOT NULL,
    decided_at   timestamptz NOT NULL DEFAULT now()
);
