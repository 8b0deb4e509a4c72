-- An approval in an environment whose rollouts start by hand waits for an operator's
-- `adapterctl promote`: its outcome is `waiting`, not a refusal.
ALTER TABLE activator_outcomes DROP CONSTRAINT activator_outcomes_outcome_check;
ALTER TABLE activator_outcomes ADD CONSTRAINT activator_outcomes_outcome_check
    CHECK (outcome IN ('committed', 'refused', 'failed', 'waiting'));
