#include "store/migrations.h"

namespace sm::store {

const std::vector<Migration>& migrations() {
    static const std::vector<Migration> all = {
        {1, "reference data, renewals, contracts, ledger, outbox, job runs", R"SQL(
CREATE TABLE partners (
    partner_id   TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    membership   TEXT NOT NULL,
    hq_country   TEXT NOT NULL,
    region       TEXT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE TABLE locations (
    location_id  TEXT PRIMARY KEY,
    partner_id   TEXT NOT NULL REFERENCES partners(partner_id),
    name         TEXT NOT NULL,
    country      TEXT NOT NULL
);
CREATE INDEX locations_partner ON locations(partner_id);
CREATE TABLE contacts (
    id            @ID@,
    partner_id    TEXT NOT NULL REFERENCES partners(partner_id),
    location_id   TEXT NOT NULL DEFAULT '',
    email         TEXT NOT NULL,
    name          TEXT NOT NULL,
    country       TEXT NOT NULL,
    role          TEXT NOT NULL,
    language      TEXT NOT NULL,
    address_state TEXT NOT NULL DEFAULT 'ok',
    UNIQUE (partner_id, email)
);
CREATE INDEX contacts_email ON contacts(email);
CREATE TABLE renewals (
    id            @ID@,
    partner_id    TEXT NOT NULL REFERENCES partners(partner_id),
    benefit       TEXT NOT NULL,
    location_id   TEXT NOT NULL DEFAULT '',
    renewal_date  TEXT NOT NULL,
    state         TEXT NOT NULL DEFAULT 'pending',
    imported_at   BIGINT NOT NULL,
    activated_at  BIGINT,
    UNIQUE (partner_id, benefit, location_id, renewal_date)
);
CREATE INDEX renewals_state ON renewals(state);
CREATE TABLE contracts (
    id                @ID@,
    access_id         TEXT NOT NULL UNIQUE,
    contract_id       TEXT NOT NULL UNIQUE,
    partner_id        TEXT NOT NULL REFERENCES partners(partner_id),
    location_id       TEXT NOT NULL DEFAULT '',
    renewal_id        BIGINT NOT NULL UNIQUE REFERENCES renewals(id),
    plan_key          TEXT NOT NULL,
    plan_name         TEXT NOT NULL,
    display_name      TEXT NOT NULL,
    benefit           TEXT NOT NULL,
    scope             TEXT NOT NULL,
    activated_on      TEXT NOT NULL,
    expires_on        TEXT NOT NULL,
    state             TEXT NOT NULL DEFAULT 'active',
    incidents_granted INTEGER NOT NULL,
    hours_granted     INTEGER NOT NULL
);
CREATE INDEX contracts_partner ON contracts(partner_id);
CREATE TABLE ledger (
    id           @ID@,
    contract_ref BIGINT NOT NULL REFERENCES contracts(id),
    delta        INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    entry_key    TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL
);
CREATE INDEX ledger_contract ON ledger(contract_ref);
CREATE TABLE outbox (
    id              @ID@,
    message_id      TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    envelope_from   TEXT NOT NULL,
    recipients      TEXT NOT NULL,
    bytes           TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'queued',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_reply      TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT,
    contract_ref    BIGINT
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
CREATE TABLE job_runs (
    id          @ID@,
    job         TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    outcome     TEXT NOT NULL DEFAULT 'running',
    counts      TEXT NOT NULL DEFAULT '{}',
    error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX job_runs_job ON job_runs(job, started_at)
)SQL"},
    };
    return all;
}

}  // namespace sm::store
