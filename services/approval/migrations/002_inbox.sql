-- The approval read model's own inbox: each lifecycle event it projected, recorded in the
-- same transaction as the projection, so a redelivery changes nothing. Until now it used
-- the kernel's inbox (consumer 'approval'); those rows move here once.
CREATE TABLE approval_inbox (
    event_id     text PRIMARY KEY,
    handled_at   timestamptz NOT NULL DEFAULT now()
);

INSERT INTO approval_inbox (event_id, handled_at)
SELECT event_id, handled_at FROM inbox WHERE consumer = 'approval'
ON CONFLICT DO NOTHING;
