-- Approval: the approval service's read model of the lifecycle log, the approvers'
-- ballots, and the approvers each committed decision named. Applied by the approval
-- service at start, after the kernel's migrations (the function reads `environments`).

-- What the approval service learned from RevisionRegistered and RevisionValidated.
CREATE TABLE approval_submissions (
    adapter          text NOT NULL,
    revision         text NOT NULL,
    manifest_digest  text NOT NULL,
    manifest_uri     text NOT NULL,
    submitter        text NOT NULL,
    registered_at    timestamptz NOT NULL,
    findings         jsonb NOT NULL DEFAULT '[]',  -- the validator's findings
    validated_at     timestamptz,
    PRIMARY KEY (adapter, revision)
);

-- One row per RevisionEvaluated: the evidence a decision in that environment is made on.
CREATE TABLE approval_evaluations (
    adapter            text NOT NULL,
    revision           text NOT NULL,
    environment        text NOT NULL,
    event_id           text NOT NULL,
    correlation_id     text NOT NULL,
    report_digest      text NOT NULL,
    report_uri         text NOT NULL,
    suite_digest       text NOT NULL,
    baseline_revision  text,
    backend            text NOT NULL,
    metrics            jsonb NOT NULL DEFAULT '[]',
    evaluated_at       timestamptz NOT NULL,
    PRIMARY KEY (adapter, revision, environment)
);
CREATE INDEX approval_evaluations_by_environment ON approval_evaluations (environment);

-- Every approver's ballot, partial approvals included; deleted with nothing else.
CREATE TABLE approval_ballots (
    adapter          text NOT NULL,
    revision         text NOT NULL,
    environment      text NOT NULL,
    principal        text NOT NULL,
    decision         text NOT NULL CHECK (decision IN ('approve', 'deny')),
    comment          text NOT NULL DEFAULT '',
    manifest_digest  text NOT NULL,
    report_digest    text NOT NULL,
    cast_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (adapter, revision, environment, principal)
);

-- The decision committed to the log (RevisionApproved / RevisionDenied) and who made it.
-- Written when the service commits it and again, idempotently, when it reads it back from
-- the lifecycle topic, so the table follows the log even if the service died in between.
CREATE TABLE approval_decisions (
    adapter          text NOT NULL,
    revision         text NOT NULL,
    environment      text NOT NULL,
    decision         text NOT NULL CHECK (decision IN ('approved', 'denied')),
    approvers        text[] NOT NULL,
    event_id         text NOT NULL UNIQUE,
    manifest_digest  text NOT NULL,
    report_digest    text NOT NULL,
    key_id           text NOT NULL,
    decided_at       timestamptz NOT NULL,
    PRIMARY KEY (adapter, revision, environment)
);

-- For the activator: may `operator` promote, expand or activate this revision in this
-- environment? False only when the environment's policy forbids an approver to operate
-- (`approver_may_operate` false) and `operator` is among the revision's approvers there.
CREATE FUNCTION approval_may_operate(
    p_adapter text, p_revision text, p_environment text, p_operator text
) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT COALESCE(
        (SELECT (spec->>'approver_may_operate')::boolean
           FROM environments WHERE name = p_environment),
        true
    ) OR NOT EXISTS (
        SELECT 1 FROM approval_decisions
         WHERE adapter = p_adapter AND revision = p_revision
           AND environment = p_environment AND decision = 'approved'
           AND p_operator = ANY (approvers)
    )
$$;
