// The database behind every stage: a POCO Data session on SQLite (the embedded
// default, WAL, synchronous=FULL) or PostgreSQL. Repositories write SQL with '?'
// placeholders; Database::sql() adapts it to the engine, so neither the domain nor
// the jobs know which engine runs.
//
// Several workers: on SQLite (one writer) a job runs once at a time under its job
// lease. On PostgreSQL any number of processes run process, deliver, activate and
// expire at once: each claims its rows with claimClause() (FOR UPDATE SKIP LOCKED)
// in the transaction that does the work, and balances are locked before a debit
// (Contracts::lockedBalance).
#pragma once

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <Poco/Data/Session.h>

namespace sm::store {

enum class Dialect { SQLite, PostgreSQL };

/// Raised for a database that cannot be opened or migrated; the message names the
/// URL (without password) and the cause.
class StoreError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Raised by Transaction, Savepoint and checkInterrupted() once interrupt() was
/// called (the run lost its job lease): the open transaction is rolled back as the
/// exception unwinds, and the job stops.
class RunInterrupted : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// PostgreSQL: work sent without waiting for its answers (Database::pushUnconfirmed())
/// failed, found by a later round trip. The server skipped everything sent after the
/// failing statement up to that round trip's end, and the transaction is aborted;
/// whatever the caller did since on the client side took the work for done.
class UnconfirmedWorkFailed : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Database;

/// One execution of a statement that the Database keeps prepared on its
/// connection, so a job that runs the same statement for every row pays for its
/// parsing once. POCO 1.11 prepares a statement again on every execute: on
/// SQLite that costs more than running a small statement, on PostgreSQL it is
/// four round trips (PREPARE, DESCRIBE, EXECUTE, DEALLOCATE) where one does.
/// Bind values (1-based, like '?'), then step(); the statement is reset and its
/// bindings cleared when this object goes away, so it never holds a read
/// transaction open. Text and blobs are bound without a copy: the bound data
/// must outlive the last step(). Errors throw the POCO exceptions the rest of
/// the store sees (SQLite: ConstraintViolationException ...; PostgreSQL:
/// PostgreSQL::StatementException with the server's message and SQLSTATE).
/// For a new row's id use Database::cachedInsert() and insertedId().
/// On PostgreSQL text is sent as given (binary format of a text parameter): bind
/// text only where the server takes the parameter as text, integers with bind(int64).
class CachedQuery {
public:
    CachedQuery(const CachedQuery&) = delete;
    CachedQuery& operator=(const CachedQuery&) = delete;
    ~CachedQuery();

    CachedQuery& bind(int index, std::string_view text);
    CachedQuery& bind(int index, std::int64_t value);
    /// Bytes for a BLOB (SQLite) / BYTEA (PostgreSQL) column.
    CachedQuery& bindBlob(int index, std::string_view bytes);
    CachedQuery& bindNull(int index);
    /// Runs to the next row: true when a row is available, false when done.
    bool step();
    /// Runs a statement that returns no rows.
    void run() { step(); }
    /// Runs a statement whose answer is not needed before the next statement (an
    /// INSERT or UPDATE without RETURNING whose changed-row count nobody reads). On
    /// PostgreSQL it is sent in libpq's pipeline mode and not waited for: its outcome
    /// comes back with the next statement that needs an answer (a step(), a
    /// Savepoint's release(), a Transaction, anything through Database::session()),
    /// several statements in one round trip; an error throws there, so it stays inside
    /// the savepoint or transaction it was sent in. On SQLite it runs at once.
    void send();
    /// PostgreSQL only (std::logic_error on SQLite): as send(), and its answer is kept.
    /// It comes back with the next statement that needs an answer; after that, step()
    /// and the getters of this query read it as if it had been run then (destroyed
    /// before, its answer is dropped). For a read whose answer can wait for the
    /// statement after it: one round trip for both.
    void sendKeepingAnswer();
    std::int64_t int64(int column) const;
    std::string text(int column) const;
    /// A BLOB/BYTEA column's bytes, assigned into `out` (its capacity reused).
    void blob(int column, std::string& out) const;
    /// Rows changed by the last run of this (INSERT/UPDATE/DELETE) statement.
    int changes() const;
    /// SQLite only: the row id of the last INSERT on this connection.
    std::int64_t lastInsertId() const;
    /// After step() of a Database::cachedInsert(): the new row's id, on both engines.
    std::int64_t insertedId() const;

private:
    friend class Database;
    struct PgStatement;
    CachedQuery(Database* owner, void* db, void* stmt, PgStatement* pg) : owner_(owner), db_(db), stmt_(stmt), pg_(pg) {}
    void pipeline();  // PostgreSQL: sent in pipeline mode, its answer read later
    Database* owner_;
    void* db_;    // sqlite3* or PGconn*
    void* stmt_;  // sqlite3_stmt* (SQLite)
    PgStatement* pg_;  // the prepared statement's name and this execution's bindings and result (PostgreSQL)
};

/// One connection to the database, and everything tied to it: its prepared
/// statements, its open transaction, its interrupt flag.
///
/// Threads: not safe from two threads. Every call but interrupt() and
/// interrupted() belongs to the thread that uses the connection (a job's main
/// thread; process's second core and deliver's connection threads never touch
/// it). A thread that needs the database opens a Database of its own.
///
/// Ownership: the repositories (Inbound, Outbox, Contracts, Incidents ...) hold a
/// Database& and no connection state of their own: the Database must outlive
/// every repository, CachedQuery, Transaction and Savepoint made on it, and they
/// all share its one transaction (a repository never begins or commits one).
///
/// Errors: open() and migrate() throw StoreError naming the URL (without its
/// password) and the cause; statements throw POCO's Data exceptions (see
/// CachedQuery); once interrupt() was called, Transaction, Savepoint and
/// checkInterrupted() throw RunInterrupted.
class Database {
public:
    /// url: "sqlite:PATH" (PATH relative to the working directory unless absolute)
    /// or "postgresql:CONNINFO". Opens the connection; does not migrate. Throws
    /// StoreError when the URL is malformed or the connection cannot be made.
    static std::unique_ptr<Database> open(const std::string& url);
    ~Database();
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    /// The POCO session, after the answers of the statements sent without waiting
    /// (CachedQuery::send) were read: throws the first of their errors.
    Poco::Data::Session& session() {
        flush();
        return session_;
    }
    /// Reads the answers of the statements sent without waiting (PostgreSQL; nothing
    /// to do on SQLite), in one round trip; throws the first error among them.
    void flush();
    Dialect dialect() const { return dialect_; }
    /// The URL with any password replaced by "***", for logs.
    const std::string& describe() const { return description_; }

    /// Adapts '?' placeholders to the engine ($1, $2 ... for PostgreSQL).
    std::string sql(const std::string& text) const;

    /// `text` ('?' placeholders, as for sql()) prepared once per connection and
    /// kept, for statements a job runs for every row. One CachedQuery per
    /// statement text at a time. `text` is the key: pass a literal.
    CachedQuery cached(const char* text);
    /// A second prepared copy of `text` (instance > 0), for a query kept alive beside
    /// another of the same text (a read sent ahead for the next message while this one
    /// runs its own): each copy holds its own bindings and answer.
    CachedQuery cached(const char* text, int instance);
    /// An INSERT kept prepared as cached() keeps it, for the new row's id: step(),
    /// then CachedQuery::insertedId(). On PostgreSQL it runs as `text RETURNING id`;
    /// on SQLite as given, the id read from the connection: RETURNING there runs the
    /// insert through a temporary table and, inside a transaction, a statement
    /// journal (a copy of every page it changes that the transaction had already
    /// changed; bench_activate wrote 26 KB per contract into it in groups of 20,000).
    CachedQuery cachedInsert(const char* text);

    /// Applies the numbered migrations not yet applied, up to version `upTo` (all of
    /// them by default), each in its own transaction. Returns how many were applied.
    int migrate(int upTo = latestSchemaVersion());
    int schemaVersion();
    static int latestSchemaVersion();

    /// Unix seconds, the unit every *_at column holds.
    static std::int64_t nowSeconds();

    /// " FOR UPDATE SKIP LOCKED" on PostgreSQL, "" on SQLite: appended to the SELECT
    /// that claims a page of queue rows inside the transaction that works on them.
    /// Rows another worker has claimed are skipped; a worker that dies (its
    /// connection closes) gives its rows back to the queue with its transaction.
    const char* claimClause() const { return dialect_ == Dialect::PostgreSQL ? " FOR UPDATE SKIP LOCKED" : ""; }
    /// A whole list bound as one parameter: "x IN " + inList(...) in a statement, and
    /// jsonList(values) bound to its ?. The query unpacks the JSON array (json_each on
    /// SQLite, json_array_elements_text on PostgreSQL), so one kept statement serves a
    /// list of any length.
    const char* inTextList() const {
        return dialect_ == Dialect::PostgreSQL ? "(SELECT json_array_elements_text(CAST(? AS json)))"
                                               : "(SELECT value FROM json_each(?))";
    }
    const char* inIdList() const {
        return dialect_ == Dialect::PostgreSQL ? "(SELECT CAST(json_array_elements_text(CAST(? AS json)) AS BIGINT))"
                                               : "(SELECT value FROM json_each(?))";
    }

    /// Safe from any thread while the Database lives: the statement running on this
    /// connection is cancelled (PostgreSQL) or interrupted (SQLite), and every later
    /// Transaction, Savepoint or checkInterrupted() throws RunInterrupted(reason).
    void interrupt(const std::string& reason);
    bool interrupted() const { return interrupted_.load(); }
    /// Throws RunInterrupted once interrupt() was called.
    void checkInterrupted() const;

    /// Balance locks taken in the current transaction (Contracts::lockedBalance);
    /// reset when a Transaction begins.
    int balanceLocksHeld() const { return balanceLocks_; }
    void noteBalanceLock() { ++balanceLocks_; }

    /// PostgreSQL: the statements sent without waiting (CachedQuery::send) go to the
    /// server now, and run while the caller goes on; their answers come back with the
    /// next round trip, an error among them thrown there as UnconfirmedWorkFailed
    /// (any other error there is the later statements'). Nothing on SQLite, where
    /// every statement has run already.
    void pushUnconfirmed();
    /// PostgreSQL: what was sent so far (send, sendKeepingAnswer) ends a segment whose
    /// answers come back without waiting for what is sent after it: the server
    /// answers it as soon as it has run it, and collectSynced() reads it. Nothing on
    /// SQLite.
    void syncSent();
    /// PostgreSQL: reads the answers up to the last syncSent() (the kept ones into
    /// their queries, see CachedQuery::sendKeepingAnswer), leaving what was sent after
    /// it in flight; nothing when they were read already (any round trip reads them).
    /// Errors as for a round trip: UnconfirmedWorkFailed for work pushUnconfirmed()
    /// let go. Nothing on SQLite.
    void collectSynced();
    /// How many statements were sent without waiting (CachedQuery::send) on this
    /// connection so far: a caller can tell whether some work wrote anything.
    std::uint64_t statementsSent() const { return statementsSent_; }

    /// PostgreSQL only: the next value of the sequence behind table.column (a serial
    /// column's), drawn kSerialBlock at a time and handed out one by one: one round trip
    /// per block instead of one per value. Values this connection drew and did not hand
    /// out before it closed are never given to anyone: gaps, as a sequence leaves after
    /// a rollback. Throws a StoreError subclass as any statement does.
    std::int64_t nextSerial(const std::string& table, const std::string& column);
    static constexpr int kSerialBlock = 16;

private:
    friend class Transaction;
    friend class Savepoint;
    friend class CachedQuery;
    Database(Poco::Data::Session session, Dialect dialect, std::string description);
    /// Ends the pipeline: reads the answer of every statement sent without waiting,
    /// then of `last` (sent after them, or nullptr) and returns it; the first error
    /// throws when `throwErrors`, else the answers are dropped (the work is being
    /// rolled back anyway).
    void* endPipeline(const std::string* lastName, bool throwErrors);
    /// A statement sent and not yet answered: its name, and the statement whose
    /// answer is kept for it (sendKeepingAnswer()), else null; syncAfter when a
    /// sync was sent after it (syncSent()).
    struct Pipelined {
        std::string name;
        CachedQuery::PgStatement* keep = nullptr;
        bool syncAfter = false;
    };
    /// Reads the answers of sent[0, count) (each synced one's sync too) into their
    /// kept queries; `last` gets the answer of sent[lastIndex] when lastIndex < count.
    /// Returns the first error ("" when none); unconfirmedFailed says whether it was
    /// among the first `unconfirmed` statements.
    std::string readAnswers(const std::vector<Pipelined>& sent, std::size_t count, std::size_t unconfirmed,
                            std::size_t lastIndex, void** last, bool& unconfirmedFailed);
    std::vector<Pipelined> pipelined_;
    Poco::Data::Session session_;
    Dialect dialect_;
    std::string description_;
    std::atomic<bool> interrupted_{false};
    std::string interruptReason_;  // written once before interrupted_ is set
    void* cancel_ = nullptr;       // PGcancel*: made at open, used from the lease thread
    void* sqliteHandle_ = nullptr; // sqlite3*: for sqlite3_interrupt from the lease thread
    int balanceLocks_ = 0;
    std::size_t unconfirmed_ = 0;  // pushUnconfirmed(): how many of pipelined_, from its start
    std::uint64_t statementsSent_ = 0;
    std::map<std::string, std::vector<std::int64_t>> serials_;  // nextSerial's drawn values, by table.column, last first
    // Finalized before session_ closes the connection (declared after it).
    struct StatementCache;
    std::unique_ptr<StatementCache> statements_;
    std::map<std::string, std::string, std::less<>> returningTexts_;  // cachedInsert's PostgreSQL texts, by text
    std::map<int, std::map<std::string, std::string, std::less<>>> instanceTexts_;  // cached(text, instance)'s texts
};

/// The JSON array to bind for Database::inTextList() / inIdList().
std::string jsonList(const std::vector<std::string>& values);
std::string jsonList(const std::vector<std::int64_t>& values);

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

/// While alive, this PostgreSQL connection plans each kept statement once
/// (plan_cache_mode = force_generic_plan); nothing on SQLite. By default the server
/// plans a kept statement again with each execution's values for its first five runs,
/// and for good whenever the plan it made without them looks dearer: for process's
/// statements (each a lookup by a unique or indexed key, an insert, an update by id)
/// that was about 8 % of the server's time and bought nothing. Only for jobs whose
/// kept statements compare no parameter with a partial index's condition (a generic
/// plan cannot use that index).
class GenericPlans {
public:
    explicit GenericPlans(Database& db);
    ~GenericPlans();
    GenericPlans(const GenericPlans&) = delete;
    GenericPlans& operator=(const GenericPlans&) = delete;

private:
    Database& db_;
};

/// While alive, this SQLite connection's page cache holds at most `megabytes`
/// (the connection opens with 64 MB). Smaller for a job that writes each row once
/// and reads little back (process): its memory then stays flat however deep its
/// queue. Larger for activation, whose random Access and Contract ID keys touch
/// every page of their indexes: the cache grows only as far as pages are read.
/// Does nothing on PostgreSQL (the server holds the cache).
class PageCacheLimit {
public:
    PageCacheLimit(Database& db, int megabytes);
    ~PageCacheLimit();
    PageCacheLimit(const PageCacheLimit&) = delete;
    PageCacheLimit& operator=(const PageCacheLimit&) = delete;

private:
    Database& db_;
    std::int64_t previous_ = -65536;  // PRAGMA cache_size before (negative: KiB)
};

/// RAII write transaction: rolls back unless commit() was called. On SQLite it
/// begins IMMEDIATE: the constructor waits up to the busy timeout (30 s) for
/// another connection's write transaction to end and throws POCO's
/// DBLockedException/DBAccessDeniedException only after that. Keep it short and
/// never open across network I/O: while it lives every other job's writes wait.
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
