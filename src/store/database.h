// The database behind every stage: a POCO Data session on SQLite (the embedded
// default, WAL, synchronous=FULL) or, later, PostgreSQL. Repositories write SQL
// with '?' placeholders; Database::sql() adapts it to the engine, so neither the
// domain nor the jobs know which engine runs.
#pragma once

#include <memory>
#include <string>

#include <Poco/Data/Session.h>

namespace sm::store {

enum class Dialect { SQLite, PostgreSQL };

/// Raised for a database that cannot be opened or migrated; the message names the
/// URL (without password) and the cause.
class StoreError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Database {
public:
    /// url: "sqlite:PATH" (PATH relative to the working directory unless absolute)
    /// or "postgresql:CONNINFO". Opens the connection; does not migrate.
    static std::unique_ptr<Database> open(const std::string& url);

    Poco::Data::Session& session() { return session_; }
    Dialect dialect() const { return dialect_; }
    /// The URL with any password replaced by "***", for logs.
    const std::string& describe() const { return description_; }

    /// Adapts '?' placeholders to the engine ($1, $2 ... for PostgreSQL).
    std::string sql(const std::string& text) const;

    /// Applies the numbered migrations not yet applied, each in its own
    /// transaction. Returns how many were applied.
    int migrate();
    int schemaVersion();
    static int latestSchemaVersion();

    /// Unix seconds, the unit every *_at column holds.
    static std::int64_t nowSeconds();

private:
    Database(Poco::Data::Session session, Dialect dialect, std::string description);
    Poco::Data::Session session_;
    Dialect dialect_;
    std::string description_;
};

/// A savepoint inside an open transaction (SQLite and PostgreSQL): rolls the
/// work since it back unless release() was called. Lets one transaction hold a
/// group of independent steps and drop just the step that failed.
class Savepoint {
public:
    Savepoint(Database& db, std::string name);
    ~Savepoint();
    Savepoint(const Savepoint&) = delete;
    Savepoint& operator=(const Savepoint&) = delete;
    /// Keeps the work (it commits or not with the transaction).
    void release();
    /// Drops the work since the savepoint; the transaction goes on.
    void rollback();

private:
    Database& db_;
    std::string name_;
    bool open_ = true;
};

/// While alive, commits on this connection survive a crash of the process but
/// not necessarily one of the machine (SQLite: WAL with synchronous=NORMAL, no
/// fsync per commit; PostgreSQL: synchronous_commit=off). Only for state whose
/// loss costs a repetition and never data: deliver's outcome marks (a "sent"
/// lost to a power cut sends that mail again; a mail is never lost).
class RelaxedDurability {
public:
    explicit RelaxedDurability(Database& db);
    ~RelaxedDurability();
    RelaxedDurability(const RelaxedDurability&) = delete;
    RelaxedDurability& operator=(const RelaxedDurability&) = delete;

private:
    Database& db_;
};

/// RAII transaction: rolls back unless commit() was called.
class Transaction {
public:
    explicit Transaction(Database& db);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void commit();

private:
    Database& db_;
    bool open_ = true;
};

}  // namespace sm::store
