-- The catalogues adapters are validated against: base models and serving environments.
CREATE TABLE base_models (
    model_id   text NOT NULL,
    revision   text NOT NULL,
    spec       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_id, revision)
);

CREATE TABLE environments (
    name       text PRIMARY KEY,
    spec       jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
