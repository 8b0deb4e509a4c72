-- Activator: the replicas serving each environment, its canary-analysis settings, the
-- approvers of each approved revision (for separation of duties), each running canary's
-- step and metrics baseline, and the outcome of everything the activator was asked to do.

-- A replica serves one environment; the activator loads adapters into it, checks that it
-- lists them, and pushes it the environment's routing. Set by SetReplicas commands.
CREATE TABLE activator_replicas (
    url          text PRIMARY KEY,
    environment  text    NOT NULL,
    position     integer NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activator_replicas_by_environment ON activator_replicas (environment, position);

-- Thresholds of the canary analysis per environment (unset keys take the defaults); the
-- steps themselves are the environment's `canary_steps`. Set by SetCanaryAnalysis commands.
CREATE TABLE activator_analysis (
    environment text PRIMARY KEY,
    settings    jsonb NOT NULL DEFAULT '{}',
    set_by      text  NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Who approved what, as read from RevisionApproved on the lifecycle log.
CREATE TABLE activator_approvals (
    adapter      text   NOT NULL,
    revision     text   NOT NULL,
    environment  text   NOT NULL,
    approvers    text[] NOT NULL,
    event_id     text   NOT NULL,
    approved_at  timestamptz NOT NULL,
    PRIMARY KEY (adapter, revision, environment)
);

-- The canary step being observed: when it began and the replicas' counters then. A cache
-- of the registry's pointer: a row that names another revision or share is started afresh.
CREATE TABLE activator_canaries (
    adapter          text    NOT NULL,
    environment      text    NOT NULL,
    revision         text    NOT NULL,
    traffic_percent  integer NOT NULL,
    step_started_at  timestamptz NOT NULL,
    baseline         jsonb   NOT NULL,
    last_decision    jsonb,
    PRIMARY KEY (adapter, environment)
);

-- One answer per request: a command id, a RevisionApproved event id, or an analysis step.
CREATE TABLE activator_outcomes (
    cause_id     text PRIMARY KEY,
    adapter      text NOT NULL,
    environment  text NOT NULL,
    action       text NOT NULL,
    revision     text,
    outcome      text NOT NULL CHECK (outcome IN ('committed', 'refused', 'failed')),
    detail       text NOT NULL,
    evidence     jsonb NOT NULL DEFAULT '{}',
    principal    text NOT NULL,
    decided_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activator_outcomes_by_adapter ON activator_outcomes (adapter, environment, decided_at);
