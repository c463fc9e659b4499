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
        {2, "inbound mail, incidents, sender links", R"SQL(
CREATE TABLE mailbox_sync (
    source       TEXT PRIMARY KEY,
    uid_validity BIGINT NOT NULL,
    last_uid     BIGINT NOT NULL
);
CREATE TABLE inbound (
    id             @ID@,
    source         TEXT NOT NULL,
    uid_validity   BIGINT NOT NULL DEFAULT 0,
    source_key     TEXT NOT NULL,
    message_id     TEXT NOT NULL DEFAULT '',
    sha256         TEXT NOT NULL,
    size           BIGINT NOT NULL,
    raw            @BLOB@,
    state          TEXT NOT NULL DEFAULT 'pending',
    reason         TEXT NOT NULL DEFAULT '',
    classification TEXT NOT NULL DEFAULT '',
    sender         TEXT NOT NULL DEFAULT '',
    fetched_at     BIGINT NOT NULL,
    processed_at   BIGINT,
    UNIQUE (source, uid_validity, source_key)
);
CREATE INDEX inbound_state ON inbound(state, id);
CREATE INDEX inbound_message_id ON inbound(message_id);
CREATE TABLE incidents (
    id              @ID@,
    case_number     TEXT UNIQUE,
    contract_ref    BIGINT NOT NULL REFERENCES contracts(id),
    inbound_ref     BIGINT NOT NULL UNIQUE REFERENCES inbound(id),
    requester_email TEXT NOT NULL,
    product         TEXT NOT NULL,
    usage_type      TEXT NOT NULL DEFAULT '',
    problem_type    TEXT NOT NULL DEFAULT '',
    category        TEXT NOT NULL DEFAULT '',
    severity        TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    attachments     TEXT NOT NULL DEFAULT '',
    state           TEXT NOT NULL DEFAULT 'open',
    closure_kind    TEXT NOT NULL DEFAULT '',
    response_hours  INTEGER NOT NULL,
    due_at          BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    closed_at       BIGINT
);
CREATE INDEX incidents_contract ON incidents(contract_ref);
CREATE TABLE case_messages (
    id           @ID@,
    incident_ref BIGINT NOT NULL REFERENCES incidents(id),
    direction    TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    inbound_ref  BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX case_messages_incident ON case_messages(incident_ref);
CREATE INDEX case_messages_message_id ON case_messages(message_id);
CREATE TABLE sender_links (
    email        TEXT NOT NULL,
    contract_ref BIGINT NOT NULL REFERENCES contracts(id),
    linked_at    BIGINT NOT NULL,
    PRIMARY KEY (email, contract_ref)
);
ALTER TABLE outbox ADD COLUMN in_reply_to TEXT NOT NULL DEFAULT '';
CREATE INDEX outbox_recipients ON outbox(recipients, created_at)
)SQL"},
        {3, "expiry reminders, resends, job leases, closure notes", R"SQL(
CREATE TABLE expiry_reminders (
    contract_ref BIGINT NOT NULL REFERENCES contracts(id),
    days_before  INTEGER NOT NULL,
    sent_at      BIGINT NOT NULL,
    PRIMARY KEY (contract_ref, days_before)
);
CREATE TABLE resends (
    id          @ID@,
    partner_id  TEXT NOT NULL DEFAULT '',
    sender      TEXT NOT NULL,
    inbound_ref BIGINT,
    outcome     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX resends_partner ON resends(partner_id, created_at);
CREATE INDEX resends_sender ON resends(sender, created_at);
CREATE TABLE leases (
    job         TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
ALTER TABLE incidents ADD COLUMN closure_note TEXT NOT NULL DEFAULT '';
ALTER TABLE job_runs ADD COLUMN holder TEXT NOT NULL DEFAULT ''
)SQL"},
        {4, "fetch finds known bytes by index", R"SQL(
CREATE INDEX inbound_sha256 ON inbound(source, sha256)
)SQL"},
        {5, "outbox claims: several deliver workers share the queue", R"SQL(
ALTER TABLE outbox ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN claimed_until BIGINT NOT NULL DEFAULT 0
)SQL"},
        // Before this, a second import could leave two hq_primary contacts of one partner;
        // the newest (highest id, the last the CRM named) keeps the role, the others become
        // members, so the indexes below can hold it from now on.
        {6, "trust: active contacts, one primary each, ID disclosures, VERP bounces", R"SQL(
ALTER TABLE contacts ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
ALTER TABLE contacts ADD COLUMN deactivated_at BIGINT;
UPDATE contacts SET role = 'member' WHERE role = 'hq_primary' AND id < (
    SELECT MAX(c2.id) FROM contacts c2 WHERE c2.partner_id = contacts.partner_id AND c2.role = 'hq_primary');
UPDATE contacts SET role = 'member' WHERE role = 'location_primary' AND id < (
    SELECT MAX(c2.id) FROM contacts c2 WHERE c2.location_id = contacts.location_id AND c2.role = 'location_primary');
CREATE UNIQUE INDEX contacts_one_hq_primary ON contacts(partner_id) WHERE role = 'hq_primary' AND active = 1;
CREATE UNIQUE INDEX contacts_one_location_primary ON contacts(location_id) WHERE role = 'location_primary' AND active = 1;
CREATE TABLE disclosures (
    id            @ID@,
    contract_ref  BIGINT NOT NULL REFERENCES contracts(id),
    recipient     TEXT NOT NULL,
    rule          TEXT NOT NULL,
    outbox_ref    BIGINT,
    message_id    TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX disclosures_contract ON disclosures(contract_ref);
ALTER TABLE outbox ADD COLUMN bytes_sha256 TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN holds_ids INTEGER NOT NULL DEFAULT 0;
CREATE TABLE bounces (
    id          @ID@,
    inbound_ref BIGINT NOT NULL,
    outbox_ref  BIGINT,
    matched_by  TEXT NOT NULL,
    recipients  TEXT NOT NULL,
    acted       INTEGER NOT NULL,
    created_at  BIGINT NOT NULL
)
)SQL"},
        // process counts each sender's replies of the last hour for every mail it
        // answers: with the kind in the index that count reads the index alone
        // (it read each reply's outbox row). The old index is this one's prefix.
        {7, "the hourly reply limit counts from an index", R"SQL(
CREATE INDEX outbox_reply_limit ON outbox(recipients, created_at, kind);
DROP INDEX outbox_recipients
)SQL"},
        // deliver reads due mail a page at a time in id order: outbox_due (state,
        // next_attempt_at) made every page sort every due row again (bench_deliver:
        // a fifth of the main thread's time with 8,000 queued).
        {8, "deliver walks the queued mail in id order", R"SQL(
CREATE INDEX outbox_queued ON outbox(id) WHERE state = 'queued'
)SQL"},
        // Activation writes a million rows in a minute: each index a row is in costs
        // it a B-tree write. Pending renewals are all that is looked up by state, so
        // an index of those alone (a renewal leaves it when activated, instead of
        // moving within renewals_state); outbox_due is read by nothing since
        // outbox_queued (migration 8); the hourly reply limit counts replies only,
        // so ID mails (a random place in the index each: its recipients) stay out.
        // A balance is summed for every request: from the index alone, not from
        // each of the contract's ledger rows.
        {9, "indexes what is looked up: pending renewals, replies by recipient, balances; no outbox_due", R"SQL(
CREATE INDEX renewals_pending ON renewals(id) WHERE state = 'pending';
DROP INDEX renewals_state;
DROP INDEX outbox_due;
DROP INDEX outbox_reply_limit;
CREATE INDEX outbox_reply_limit ON outbox(recipients, created_at, kind) WHERE kind LIKE 'reply%';
CREATE INDEX ledger_balance ON ledger(contract_ref, delta);
DROP INDEX ledger_contract
)SQL"},
        // A request's duplicate check looks a Message-ID up among handled mail: with the
        // state beside the Message-ID one index answers it. PostgreSQL, right after a
        // fetch (its statistics not yet gathered), combined inbound_message_id with
        // inbound_state instead: 72 us a mail where 10 do. The mail's bytes, stored
        // once and read once, are compressed with lz4 on PostgreSQL (pglz took a tenth
        // of the server's time in process).
        {10, "a Message-ID looked up with its state; lz4 for mail bytes (PostgreSQL)", R"SQL(
CREATE INDEX inbound_message_state ON inbound(message_id, state);
DROP INDEX inbound_message_id;
@POSTGRESQL@ ALTER TABLE outbox ALTER COLUMN bytes SET COMPRESSION lz4;
@POSTGRESQL@ ALTER TABLE inbound ALTER COLUMN raw SET COMPRESSION lz4
)SQL"},
        // A mail's bytes in a table of their own, apart from the row whose state changes.
        // SQLite rewrites a whole row on any UPDATE of a different size, its bytes and
        // their overflow pages with it. Outbox: marking a mail sent (or its retry, or its
        // parking) wrote a page of its own to the WAL for a 2 KB mail, and deliver's main
        // thread spent about half its time on the marks and their commits; an ID mail has
        // no bytes row until it is sent (deliver renders it; what is kept of it after
        // sending is written then). Inbound: the end state process writes rewrote the raw
        // mail it had just read, so every mail went through the WAL twice (once stored,
        // once answered); a 2 MB attachment, 4 MB. The upgrade copies every stored mail
        // once, in one transaction (SQLite: its WAL grows by the queue's size until the
        // checkpoint; PostgreSQL: the dropped columns' space comes back with VACUUM FULL).
        {11, "mail bytes apart from their state: outbox_bytes, inbound_raw", R"SQL(
CREATE TABLE outbox_bytes (
    outbox_id @KEY@ REFERENCES outbox(id),
    bytes     TEXT NOT NULL
);
@POSTGRESQL@ ALTER TABLE outbox_bytes ALTER COLUMN bytes SET COMPRESSION lz4;
INSERT INTO outbox_bytes (outbox_id, bytes) SELECT id, bytes FROM outbox WHERE bytes <> '';
ALTER TABLE outbox DROP COLUMN bytes;
CREATE TABLE inbound_raw (
    inbound_id @KEY@ REFERENCES inbound(id),
    raw        @BLOB@
);
@POSTGRESQL@ ALTER TABLE inbound_raw ALTER COLUMN raw SET COMPRESSION lz4;
INSERT INTO inbound_raw (inbound_id, raw) SELECT id, raw FROM inbound;
ALTER TABLE inbound DROP COLUMN raw
)SQL"},
    };
    return all;
}

}  // namespace sm::store
