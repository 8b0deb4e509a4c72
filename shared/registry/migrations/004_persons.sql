-- A principal belongs to a person: two principals of one person (say an approver token and
-- an operator token under two names) are one person for separation of duties and count
-- once toward an environment's N approvals. Names are stored canonical (NFKC, case-folded,
-- trimmed; shared/identity.py) from now on; a person defaults to the principal's own name.
ALTER TABLE principals ADD COLUMN person text;
UPDATE principals SET person = lower(btrim(name));
ALTER TABLE principals ALTER COLUMN person SET NOT NULL;
CREATE INDEX principals_person ON principals (person);
