#include "store/database.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <utility>

#include <Poco/Data/PostgreSQL/Connector.h>
#include <Poco/Data/PostgreSQL/PostgreSQLException.h>
#include <Poco/Data/PostgreSQL/SessionImpl.h>
#include <Poco/Logger.h>
#include <libpq-fe.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/SQLite/Utility.h>
#include <sqlite3.h>
#include <Poco/Exception.h>
#include <Poco/UTF8String.h>

#include "store/migrations.h"

using namespace Poco::Data::Keywords;

namespace sm::store {
namespace {

constexpr int kStatementJournalInMemory = 4 << 20;

void registerConnectors() {
    static std::once_flag once;
    std::call_once(once, [] {
        // SQLite's default (serialized) mode locks the connection's mutex on every
        // call, and its memory statistics a global mutex on every allocation:
        // bench_activate spent 10 % of its instructions there. A connection here is
        // used by one thread at a time (another thread only calls sqlite3_interrupt,
        // which takes no lock), so multi-thread mode; nothing reads the statistics.
        // Both are set here, before the process's first SQLite connection (every one
        // is opened by Database::open): setThreadMode restarts SQLite, which must
        // have no connection open, and MEMSTATUS is taken only before SQLite starts.
        auto& log = Poco::Logger::get("supportmail");
        if (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK)
            log.warning("sqlite: memory statistics stay on (SQLite was started before the store)");
        // A savepoint's sub-journal (process: one savepoint per message) holds the
        // pages the message changes that the page's transaction had changed before it,
        // and SQLite writes it to a temporary file past 64 KiB: a request's ~25 pages
        // took it there, and process's main thread spent a third of its time in
        // pwrite(). In memory up to 4 MiB, freed when the savepoint ends.
        if (sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, kStatementJournalInMemory) != SQLITE_OK)
            log.warning("sqlite: statement journals spill to disk past 64 KiB (SQLite was started before the store)");
        if (!Poco::Data::SQLite::Utility::setThreadMode(Poco::Data::SQLite::Utility::THREAD_MODE_MULTI))
            log.warning("sqlite: stays in serialized mode (multi-thread mode refused)");
        Poco::Data::SQLite::Connector::registerConnector();
        Poco::Data::PostgreSQL::Connector::registerConnector();
    });
}

std::string expandTokens(std::string sql, Dialect d) {
    auto replaceAll = [&sql](const std::string& from, const std::string& to) {
        for (std::size_t p = sql.find(from); p != std::string::npos; p = sql.find(from, p + to.size()))
            sql.replace(p, from.size(), to);
    };
    replaceAll("@ID@", d == Dialect::SQLite ? "INTEGER PRIMARY KEY AUTOINCREMENT" : "BIGSERIAL PRIMARY KEY");
    replaceAll("@BLOB@", d == Dialect::SQLite ? "BLOB NOT NULL" : "BYTEA NOT NULL");
    // A key given by its row's parent (not drawn): on SQLite the row id itself.
    replaceAll("@KEY@", d == Dialect::SQLite ? "INTEGER PRIMARY KEY" : "BIGINT PRIMARY KEY");
    return sql;
}

std::vector<std::string> splitStatements(const std::string& script) {
    std::vector<std::string> out;
    std::string current;
    std::size_t start = 0;
    while (start < script.size()) {
        std::size_t end = script.find('\n', start);
        if (end == std::string::npos) end = script.size();
        std::string line = script.substr(start, end - start);
        start = end + 1;
        current += line + "\n";
        auto last = line.find_last_not_of(" \t\r");
        if (last != std::string::npos && line[last] == ';') {
            current.erase(current.find_last_of(';'));
            out.push_back(current);
            current.clear();
        }
    }
    if (current.find_first_not_of(" \t\r\n") != std::string::npos) out.push_back(current);
    return out;
}

// Server messages below WARNING (NOTICE: "relation ... already exists, skipping",
// INFO, DEBUG) are dropped: libpq would print them on stderr, and cron mails what a
// run prints there. Warnings go to the log.
void onServerNotice(void*, const char* message) {
    if (!message || std::strncmp(message, "WARNING", 7) != 0) return;
    std::string text(message);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    Poco::Logger::get("supportmail").warning("postgresql: " + text);
}

PGconn* connectionOf(Poco::Data::Session& s) {
    auto* impl = dynamic_cast<Poco::Data::PostgreSQL::SessionImpl*>(s.impl());
    if (!impl) throw StoreError("not a PostgreSQL session");
    return static_cast<PGconn*>(impl->handle());
}

std::string hidePassword(const std::string& url) {
    auto p = url.find("password=");
    if (p == std::string::npos) return url;
    auto e = url.find(' ', p);
    return url.substr(0, p) + "password=***" + (e == std::string::npos ? "" : url.substr(e));
}

}  // namespace

// ---- cached statements ---------------------------------------------------------

struct CachedQuery::PgStatement {
    std::string name;  // "sm_N", prepared on this connection
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    std::vector<std::string> numbers;  // the text of bound integers
    PGresult* result = nullptr;
    int row = -1;
    bool awaitingAnswer = false;  // sent by sendKeepingAnswer(), its answer not back yet
};

struct Database::StatementCache {
    sqlite3* db = nullptr;
    PGconn* pg = nullptr;
    std::map<std::string, sqlite3_stmt*, std::less<>> statements;
    std::map<std::string, std::unique_ptr<CachedQuery::PgStatement>, std::less<>> pgStatements;
    ~StatementCache() {
        for (auto& [text, stmt] : statements) sqlite3_finalize(stmt);
        // PostgreSQL: prepared statements end with the connection.
        for (auto& [text, stmt] : pgStatements) PQclear(stmt->result);
    }
};

namespace {
sqlite3* handle(void* db) { return static_cast<sqlite3*>(db); }
sqlite3_stmt* statement(void* stmt) { return static_cast<sqlite3_stmt*>(stmt); }

void check(void* db, int rc, const char* what) {
    if (rc != SQLITE_OK) Poco::Data::SQLite::Utility::throwException(handle(db), rc, what);
}

std::string pgError(const PGresult* r, PGconn* conn, const std::string& what) {
    const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    std::string message = r ? PQresultErrorMessage(r) : PQerrorMessage(conn);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    return message + " (SQLSTATE " + (state ? state : "?") + ") in: " + what;
}

[[noreturn]] void throwPg(const PGresult* r, PGconn* conn, const std::string& what) {
    throw Poco::Data::PostgreSQL::StatementException(pgError(r, conn, what));
}

int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
}  // namespace

std::string jsonList(const std::vector<std::string>& values) {
    std::string out = "[";
    for (const auto& v : values) {
        if (out.size() > 1) out += ',';
        out += '"';
        out += Poco::UTF8::escape(v, /*strictJSON=*/true);
        out += '"';
    }
    return out + "]";
}

std::string jsonList(const std::vector<std::int64_t>& values) {
    std::string out = "[";
    for (auto v : values) {
        if (out.size() > 1) out += ',';
        out += std::to_string(v);
    }
    return out + "]";
}

CachedQuery Database::cachedInsert(const char* text) {
    if (dialect_ == Dialect::SQLite) return cached(text);
    auto it = returningTexts_.find(std::string_view(text));
    if (it == returningTexts_.end()) it = returningTexts_.emplace(text, std::string(text) + " RETURNING id").first;
    return cached(it->second.c_str());  // the map's node keeps the text, cached()'s key, alive
}

CachedQuery Database::cached(const char* text, int instance) {
    if (instance == 0) return cached(text);
    // The copy's own text (a comment tells it apart) is its key and what is prepared.
    auto& texts = instanceTexts_[instance];
    auto it = texts.find(std::string_view(text));
    if (it == texts.end())
        it = texts.emplace(text, std::string(text) + " /* copy " + std::to_string(instance) + " */").first;
    return cached(it->second.c_str());  // the map's node keeps the text, cached()'s key, alive
}

CachedQuery Database::cached(const char* text) {
    if (!statements_) {
        statements_ = std::make_unique<StatementCache>();
        if (dialect_ == Dialect::SQLite) statements_->db = Poco::Data::SQLite::Utility::dbHandle(session_);
        else statements_->pg = connectionOf(session_);
    }
    if (dialect_ == Dialect::PostgreSQL) {
        auto it = statements_->pgStatements.find(std::string_view(text));
        if (it == statements_->pgStatements.end()) {
            auto stmt = std::make_unique<CachedQuery::PgStatement>();
            stmt->name = "sm_" + std::to_string(statements_->pgStatements.size() + 1);
            const std::string adapted = sql(text);
            flush();  // PQprepare waits for its answer, which pipeline mode does not allow (once per statement)
            PGresult* r = PQprepare(statements_->pg, stmt->name.c_str(), adapted.c_str(), 0, nullptr);
            const bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
            if (!ok) {
                std::unique_ptr<PGresult, decltype(&PQclear)> guard(r, PQclear);
                throwPg(r, statements_->pg, adapted);
            }
            PQclear(r);
            const std::size_t params = static_cast<std::size_t>(std::count(adapted.begin(), adapted.end(), '$'));
            stmt->values.assign(params, nullptr);
            stmt->lengths.assign(params, 0);
            stmt->formats.assign(params, 0);
            stmt->numbers.resize(params);
            it = statements_->pgStatements.emplace(text, std::move(stmt)).first;
        }
        return CachedQuery(this, statements_->pg, nullptr, it->second.get());
    }
    auto it = statements_->statements.find(std::string_view(text));
    if (it == statements_->statements.end()) {
        sqlite3_stmt* stmt = nullptr;
        check(statements_->db, sqlite3_prepare_v2(statements_->db, text, -1, &stmt, nullptr), text);
        it = statements_->statements.emplace(text, stmt).first;
    }
    return CachedQuery(this, statements_->db, it->second, nullptr);
}

CachedQuery::~CachedQuery() {
    if (pg_) {
        // Its answer, still to come, is dropped when it comes (a later query of the
        // same statement must not take it for its own).
        if (pg_->awaitingAnswer)
            for (auto& p : owner_->pipelined_)
                if (p.keep == pg_) p.keep = nullptr;
        PQclear(pg_->result);
        pg_->result = nullptr;
        pg_->row = -1;
        pg_->awaitingAnswer = false;
        std::fill(pg_->values.begin(), pg_->values.end(), nullptr);
        std::fill(pg_->formats.begin(), pg_->formats.end(), 0);
        return;
    }
    sqlite3_reset(statement(stmt_));
    sqlite3_clear_bindings(statement(stmt_));
}

namespace {
void checkIndex(const std::vector<const char*>& values, int index) {
    if (index < 1 || static_cast<std::size_t>(index) > values.size())
        throw Poco::Data::PostgreSQL::StatementException("bind index " + std::to_string(index) + " out of range");
}
}  // namespace

CachedQuery& CachedQuery::bind(int index, std::string_view text) {
    if (pg_) {
        checkIndex(pg_->values, index);
        // A non-null pointer even for "": NULL is bindNull's.
        pg_->values[index - 1] = text.data() ? text.data() : "";
        pg_->lengths[index - 1] = static_cast<int>(text.size());
        pg_->formats[index - 1] = 1;  // as given, not NUL-terminated: binary format of text is its bytes
        return *this;
    }
    check(db_, sqlite3_bind_text(statement(stmt_), index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC),
          "bind");
    return *this;
}

CachedQuery& CachedQuery::bind(int index, std::int64_t value) {
    if (pg_) {
        checkIndex(pg_->values, index);
        auto& number = pg_->numbers[index - 1];
        number = std::to_string(value);
        pg_->values[index - 1] = number.c_str();
        pg_->lengths[index - 1] = static_cast<int>(number.size());
        pg_->formats[index - 1] = 0;  // text: the server parses it as the parameter's type
        return *this;
    }
    check(db_, sqlite3_bind_int64(statement(stmt_), index, value), "bind");
    return *this;
}

CachedQuery& CachedQuery::bindBlob(int index, std::string_view bytes) {
    if (pg_) {
        checkIndex(pg_->values, index);
        pg_->values[index - 1] = bytes.data() ? bytes.data() : "";
        pg_->lengths[index - 1] = static_cast<int>(bytes.size());
        pg_->formats[index - 1] = 1;  // binary BYTEA: the bytes themselves
        return *this;
    }
    check(db_, sqlite3_bind_blob(statement(stmt_), index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_STATIC),
          "bind");
    return *this;
}

CachedQuery& CachedQuery::bindNull(int index) {
    if (pg_) {
        checkIndex(pg_->values, index);
        pg_->values[index - 1] = nullptr;
        return *this;
    }
    check(db_, sqlite3_bind_null(statement(stmt_), index), "bind");
    return *this;
}

void CachedQuery::send() {
    ++owner_->statementsSent_;
    if (!pg_) {
        step();
        return;
    }
    pipeline();
}

void CachedQuery::pipeline() {
    auto* conn = static_cast<PGconn*>(db_);
    if (PQpipelineStatus(conn) == PQ_PIPELINE_OFF && PQenterPipelineMode(conn) != 1)
        throwPg(nullptr, conn, "entering pipeline mode for " + pg_->name);
    if (PQsendQueryPrepared(conn, pg_->name.c_str(), static_cast<int>(pg_->values.size()), pg_->values.data(),
                            pg_->lengths.data(), pg_->formats.data(), 0) != 1)
        throwPg(nullptr, conn, pg_->name);
    owner_->pipelined_.push_back({pg_->name, nullptr});
}

void CachedQuery::sendKeepingAnswer() {
    if (!pg_) throw std::logic_error("sendKeepingAnswer: PostgreSQL only");
    pipeline();
    owner_->pipelined_.back().keep = pg_;
    pg_->awaitingAnswer = true;
}

bool CachedQuery::step() {
    if (pg_) {
        if (!pg_->result) {
            auto* conn = static_cast<PGconn*>(db_);
            if (PQpipelineStatus(conn) != PQ_PIPELINE_OFF) {
                // Statements were sent without waiting: this one goes after them, and
                // all the answers come back in this round trip.
                if (PQsendQueryPrepared(conn, pg_->name.c_str(), static_cast<int>(pg_->values.size()),
                                        pg_->values.data(), pg_->lengths.data(), pg_->formats.data(), 0) != 1)
                    throwPg(nullptr, conn, pg_->name);
                pg_->result = static_cast<PGresult*>(owner_->endPipeline(&pg_->name, true));
            } else {
                pg_->result = PQexecPrepared(conn, pg_->name.c_str(), static_cast<int>(pg_->values.size()),
                                             pg_->values.data(), pg_->lengths.data(), pg_->formats.data(), 0);
            }
            const auto status = pg_->result ? PQresultStatus(pg_->result) : PGRES_FATAL_ERROR;
            if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
                PGresult* failed = pg_->result;
                pg_->result = nullptr;
                std::unique_ptr<PGresult, decltype(&PQclear)> guard(failed, PQclear);
                throwPg(failed, conn, pg_->name);
            }
            pg_->row = 0;
        } else {
            ++pg_->row;
        }
        return pg_->row < PQntuples(pg_->result);
    }
    const int rc = sqlite3_step(statement(stmt_));
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    // The statement's own error (sqlite3_reset reports it with the extended code).
    Poco::Data::SQLite::Utility::throwException(handle(db_), sqlite3_reset(statement(stmt_)) & 0xff,
                                                sqlite3_sql(statement(stmt_)));
    return false;
}

std::int64_t CachedQuery::int64(int column) const {
    if (pg_) return std::strtoll(PQgetvalue(pg_->result, pg_->row, column), nullptr, 10);
    return sqlite3_column_int64(statement(stmt_), column);
}

std::string CachedQuery::text(int column) const {
    if (pg_)
        return std::string(PQgetvalue(pg_->result, pg_->row, column),
                           static_cast<std::size_t>(PQgetlength(pg_->result, pg_->row, column)));
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(statement(stmt_), column));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(statement(stmt_), column))) : std::string();
}

void CachedQuery::blob(int column, std::string& out) const {
    if (pg_) {
        // Text results show BYTEA as "\x" and two hex digits a byte (PostgreSQL's
        // default bytea_output): decoded straight into out, no second copy.
        const char* p = PQgetvalue(pg_->result, pg_->row, column);
        const std::size_t n = static_cast<std::size_t>(PQgetlength(pg_->result, pg_->row, column));
        if (n < 2 || p[0] != '\\' || p[1] != 'x')
            throw Poco::Data::PostgreSQL::StatementException("BYTEA column not in hex output format");
        out.resize((n - 2) / 2);
        for (std::size_t i = 0; i < out.size(); ++i) {
            const int hi = hexValue(p[2 + 2 * i]), lo = hexValue(p[3 + 2 * i]);
            if (hi < 0 || lo < 0) throw Poco::Data::PostgreSQL::StatementException("malformed BYTEA hex output");
            out[i] = static_cast<char>(hi * 16 + lo);
        }
        return;
    }
    const auto* p = static_cast<const char*>(sqlite3_column_blob(statement(stmt_), column));
    out.assign(p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(statement(stmt_), column)));
}

int CachedQuery::changes() const {
    if (pg_) return std::atoi(PQcmdTuples(pg_->result));
    return sqlite3_changes(handle(db_));
}

std::int64_t CachedQuery::lastInsertId() const {
    if (pg_) throw std::logic_error("CachedQuery::lastInsertId is for SQLite only: use INSERT ... RETURNING id");
    return sqlite3_last_insert_rowid(handle(db_));
}

std::int64_t CachedQuery::insertedId() const { return pg_ ? int64(0) : lastInsertId(); }

// ---- Database ------------------------------------------------------------------

Database::Database(Poco::Data::Session session, Dialect dialect, std::string description)
    : session_(std::move(session)), dialect_(dialect), description_(std::move(description)) {}

Database::~Database() {
    if (cancel_) PQfreeCancel(static_cast<PGcancel*>(cancel_));
}

void Database::interrupt(const std::string& reason) {
    if (interrupted_.load()) return;
    interruptReason_ = reason;
    interrupted_.store(true);
    if (dialect_ == Dialect::SQLite) {
        if (sqliteHandle_) sqlite3_interrupt(static_cast<sqlite3*>(sqliteHandle_));
    } else if (cancel_) {
        char error[256];
        PQcancel(static_cast<PGcancel*>(cancel_), error, sizeof error);  // best effort: the next step checks too
    }
}

void Database::pushUnconfirmed() {
    if (dialect_ != Dialect::PostgreSQL || pipelined_.empty()) return;
    unconfirmed_ = pipelined_.size();
    // libpq keeps what pipeline mode sends until a sync or a full buffer: pushed now,
    // the server runs it while this thread prepares what comes next.
    if (PQflush(statements_->pg) != 0) throwPg(nullptr, statements_->pg, "sending work without waiting");
}

void Database::syncSent() {
    if (dialect_ != Dialect::PostgreSQL || pipelined_.empty() || pipelined_.back().syncAfter) return;
    if (PQpipelineSync(statements_->pg) != 1) throwPg(nullptr, statements_->pg, "pipeline sync");
    pipelined_.back().syncAfter = true;
}

void Database::collectSynced() {
    if (dialect_ != Dialect::PostgreSQL) return;
    std::size_t count = 0;
    for (std::size_t i = 0; i < pipelined_.size(); ++i)
        if (pipelined_[i].syncAfter) count = i + 1;
    if (count == 0) return;
    const std::size_t unconfirmed = std::min(unconfirmed_, count);
    bool unconfirmedFailed = false;
    const std::string error = readAnswers(pipelined_, count, unconfirmed, count, nullptr, unconfirmedFailed);
    pipelined_.erase(pipelined_.begin(), pipelined_.begin() + static_cast<std::ptrdiff_t>(count));
    unconfirmed_ -= unconfirmed;
    if (pipelined_.empty() && PQexitPipelineMode(statements_->pg) != 1 && error.empty())
        throwPg(nullptr, statements_->pg, "leaving pipeline mode");
    // What is still in flight is read by the round trip that ends the transaction
    // (rolled back on the way out of the failure).
    if (unconfirmedFailed) throw UnconfirmedWorkFailed("work sent without waiting failed: " + error);
    if (!error.empty()) throw Poco::Data::PostgreSQL::StatementException(error);
}

void Database::flush() {
    if (dialect_ != Dialect::PostgreSQL || !statements_ || !statements_->pg) return;
    if (PQpipelineStatus(statements_->pg) != PQ_PIPELINE_OFF) endPipeline(nullptr, true);
}

std::int64_t Database::nextSerial(const std::string& table, const std::string& column) {
    auto& drawn = serials_[table + "." + column];
    if (drawn.empty()) {
        auto q = cached("SELECT nextval(pg_get_serial_sequence(?, ?)) FROM generate_series(1, ?)");
        q.bind(1, table).bind(2, column).bind(3, std::int64_t{kSerialBlock});
        while (q.step()) drawn.push_back(q.int64(0));
        if (drawn.empty()) throw StoreError("no value drawn from the sequence of " + table + "." + column);
        std::reverse(drawn.begin(), drawn.end());  // handed out from the back, smallest first
    }
    const std::int64_t value = drawn.back();
    drawn.pop_back();
    return value;
}

void* Database::endPipeline(const std::string* lastName, bool throwErrors) {
    PGconn* conn = statements_->pg;
    std::vector<Pipelined> sent;
    sent.swap(pipelined_);
    if (lastName) sent.push_back({*lastName, nullptr});
    std::string firstError;
    // The answers of the work pushUnconfirmed() let go are the first `unconfirmed`
    // ones: an error there is that work's, not the caller's.
    const std::size_t unconfirmed = std::exchange(unconfirmed_, 0);
    bool unconfirmedFailed = false;
    PGresult* last = nullptr;
    if (PQpipelineSync(conn) != 1) {
        firstError = pgError(nullptr, conn, "pipeline sync");
        unconfirmedFailed = unconfirmed > 0;
    } else {
        void* answer = nullptr;
        firstError = readAnswers(sent, sent.size(), unconfirmed, lastName ? sent.size() - 1 : sent.size(), &answer,
                                 unconfirmedFailed);
        last = static_cast<PGresult*>(answer);
        PGresult* sync = PQgetResult(conn);
        if (!sync || PQresultStatus(sync) != PGRES_PIPELINE_SYNC) {
            if (firstError.empty()) firstError = pgError(sync, conn, "pipeline sync");
        }
        PQclear(sync);
    }
    if (PQexitPipelineMode(conn) != 1 && firstError.empty()) firstError = pgError(nullptr, conn, "leaving pipeline mode");
    if (unconfirmedFailed && throwErrors) {
        PQclear(last);
        throw UnconfirmedWorkFailed("work sent without waiting failed: " + firstError);
    }
    if (!firstError.empty() && throwErrors) {
        PQclear(last);
        throw Poco::Data::PostgreSQL::StatementException(firstError);
    }
    if (!firstError.empty() && last && PQresultStatus(last) != PGRES_COMMAND_OK &&
        PQresultStatus(last) != PGRES_TUPLES_OK) {
        PQclear(last);
        return nullptr;
    }
    return last;
}

std::string Database::readAnswers(const std::vector<Pipelined>& sent, std::size_t count, std::size_t unconfirmed,
                                  std::size_t lastIndex, void** last, bool& unconfirmedFailed) {
    PGconn* conn = statements_->pg;
    std::string firstError;
    // Each statement's answer, then the NULL that ends it; after an error the server
    // skips the rest (PGRES_PIPELINE_ABORTED) up to the next sync.
    for (std::size_t i = 0; i < count; ++i) {
        PGresult* r = PQgetResult(conn);
        if (!r) {
            if (firstError.empty()) {
                firstError = pgError(nullptr, conn, "no answer to " + sent[i].name);
                unconfirmedFailed = i < unconfirmed;
            }
            break;
        }
        const auto status = PQresultStatus(r);
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_PIPELINE_ABORTED &&
            firstError.empty()) {
            firstError = pgError(r, conn, sent[i].name);
            unconfirmedFailed = i < unconfirmed;
        }
        if (i == lastIndex) {
            *last = r;
        } else if (sent[i].keep && sent[i].keep->awaitingAnswer) {
            // A sendKeepingAnswer() query still alive: its step() reads this.
            PQclear(sent[i].keep->result);
            sent[i].keep->result = r;
            sent[i].keep->row = -1;
            sent[i].keep->awaitingAnswer = false;
        } else {
            PQclear(r);
        }
        for (int k = 0; k < 4; ++k) {
            PGresult* end = PQgetResult(conn);
            if (!end) break;
            PQclear(end);
        }
        if (sent[i].syncAfter) {
            PGresult* sync = PQgetResult(conn);
            if ((!sync || PQresultStatus(sync) != PGRES_PIPELINE_SYNC) && firstError.empty())
                firstError = pgError(sync, conn, "pipeline sync");
            PQclear(sync);
        }
    }
    return firstError;
}

void Database::checkInterrupted() const {
    if (interrupted_.load()) throw RunInterrupted(interruptReason_);
}

std::unique_ptr<Database> Database::open(const std::string& url) {
    registerConnectors();
    const std::string safe = hidePassword(url);
    try {
        if (url.rfind("sqlite:", 0) == 0) {
            std::string path = url.substr(7);
            if (path.empty()) throw StoreError("database URL '" + safe + "' names no file");
            Poco::Data::Session s("SQLite", path);
            s.setConnectionTimeout(30);  // sqlite3_busy_timeout: wait for another writer
            s << "PRAGMA journal_mode=WAL", now;
            s << "PRAGMA synchronous=FULL", now;
            s << "PRAGMA foreign_keys=ON", now;
            // Batch jobs write groups of several MB (activation: ~8 KB of mail per
            // contract): a 64 MB page cache keeps a group's B-tree pages from being
            // spilled to the WAL before the commit, and checkpointing every 64 MB
            // instead of every 4 MB writes index pages touched by many groups back
            // once. The WAL is truncated back to 64 MB after a checkpoint.
            // Durability is unchanged (WAL, synchronous=FULL).
            s << "PRAGMA cache_size=-65536", now;
            s << "PRAGMA wal_autocheckpoint=16384", now;
            s << "PRAGMA journal_size_limit=67108864", now;
            std::unique_ptr<Database> db(new Database(std::move(s), Dialect::SQLite, safe));
            db->sqliteHandle_ = Poco::Data::SQLite::Utility::dbHandle(db->session_);
            return db;
        }
        if (url.rfind("postgresql:", 0) == 0) {
            Poco::Data::Session s("PostgreSQL", url.substr(11));
            PGconn* conn = connectionOf(s);
            PQsetNoticeProcessor(conn, onServerNotice, nullptr);
            std::unique_ptr<Database> db(new Database(std::move(s), Dialect::PostgreSQL, safe));
            db->cancel_ = PQgetCancel(conn);
            return db;
        }
    } catch (const StoreError&) {
        throw;
    } catch (const Poco::Exception& e) {
        throw StoreError("cannot open database '" + safe + "': " + e.displayText());
    }
    throw StoreError("database URL '" + safe + "' must start with sqlite: or postgresql:");
}

std::string Database::sql(const std::string& text) const {
    if (dialect_ == Dialect::SQLite) return text;
    std::string out;
    int n = 0;
    bool quoted = false;
    for (char c : text) {
        if (c == '\'') quoted = !quoted;
        if (c == '?' && !quoted) out += "$" + std::to_string(++n);
        else out += c;
    }
    return out;
}

int Database::latestSchemaVersion() { return migrations().empty() ? 0 : migrations().back().version; }

int Database::schemaVersion() {
    session_ << "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at BIGINT NOT NULL)",
        now;
    int version = 0;
    session_ << "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", into(version), now;
    return version;
}

int Database::migrate(int upTo) {
    int current = schemaVersion();
    int applied = 0;
    for (const auto& m : migrations()) {
        if (m.version <= current || m.version > upTo) continue;
        try {
            Transaction tx(*this);
            for (auto stmt : splitStatements(expandTokens(m.sql, dialect_))) {
                // "@POSTGRESQL@ statement": that engine's alone (storage settings SQLite has not)
                const auto mark = stmt.find("@POSTGRESQL@");
                if (mark != std::string::npos) {
                    if (dialect_ != Dialect::PostgreSQL) continue;
                    stmt.erase(mark, std::string("@POSTGRESQL@").size());
                }
                session_ << stmt, now;
            }
            int version = m.version;
            std::string name = m.name;
            std::int64_t at = nowSeconds();
            session_ << sql("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
                use(version), use(name), use(at), now;
            tx.commit();
        } catch (const Poco::Exception& e) {
            throw StoreError("migration " + std::to_string(m.version) + " (" + m.name + ") failed on " +
                             description_ + ": " + e.displayText());
        }
        ++applied;
    }
    return applied;
}

std::int64_t Database::nowSeconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// SQLite: BEGIN IMMEDIATE takes the write lock at once and waits for it with the
// busy timeout. POCO's begin() is a deferred BEGIN, which takes the lock on the
// first write: if another connection holds it by then, SQLite answers SQLITE_BUSY
// at once without consulting the busy timeout (it cannot wait: the reader's
// snapshot might be stale), and overlapping jobs failed with "database is locked".
// PostgreSQL locks rows, not the database: POCO's begin() is right there.
Transaction::Transaction(Database& db) : db_(db) {
    db_.checkInterrupted();
    if (db_.dialect() == Dialect::SQLite) db_.session() << "BEGIN IMMEDIATE", now;
    else db_.session().begin();
    db_.balanceLocks_ = 0;
}

Transaction::~Transaction() {
    if (open_) {
        try {
            if (db_.dialect() == Dialect::PostgreSQL && !db_.pipelined_.empty()) db_.endPipeline(nullptr, false);
            if (db_.dialect() == Dialect::SQLite) db_.session() << "ROLLBACK", now;
            else db_.session().rollback();
        } catch (...) {
            // The connection is gone; the engine rolls back on its own.
        }
    }
}

void Transaction::commit() {
    db_.checkInterrupted();  // a run that lost its lease commits nothing more
    if (db_.dialect() == Dialect::SQLite) db_.session() << "COMMIT", now;
    else db_.session().commit();
    open_ = false;
}

// Savepoints are set and released for every message of a page: kept prepared, and
// on PostgreSQL sent without waiting (the SAVEPOINT goes with the message's first
// query; the RELEASE collects the answers of what the message sent without waiting,
// in one round trip, so their errors still roll back this savepoint).
Savepoint::Savepoint(Database& db, std::string name) : db_(db), name_(std::move(name)) {
    db_.checkInterrupted();
    db_.cached(("SAVEPOINT " + name_).c_str()).send();
}

Savepoint::~Savepoint() {
    if (!open_) return;
    try {
        rollback();
    } catch (...) {
        // The connection is gone: the whole transaction goes with it.
    }
}

void Savepoint::rollback() {
    open_ = false;
    // What was sent since is dropped with the work (after an error the server skipped it anyway).
    if (db_.dialect() == Dialect::PostgreSQL && !db_.pipelined_.empty()) db_.endPipeline(nullptr, false);
    db_.cached(("ROLLBACK TO SAVEPOINT " + name_).c_str()).send();
    db_.cached(("RELEASE SAVEPOINT " + name_).c_str()).send();
    db_.flush();
}

void Savepoint::release() {
    db_.cached(("RELEASE SAVEPOINT " + name_).c_str()).send();
    db_.flush();  // throws the first error of what was sent since the savepoint: it is still open then
    open_ = false;
}

PageCacheLimit::PageCacheLimit(Database& db, int megabytes) : db_(db) {
    if (db_.dialect() != Dialect::SQLite) return;
    db_.session() << "PRAGMA cache_size", into(previous_), now;  // restored as it was (limits nest)
    db_.session() << "PRAGMA cache_size=-" + std::to_string(megabytes * 1024), now;
}

PageCacheLimit::~PageCacheLimit() {
    try {
        if (db_.dialect() == Dialect::SQLite)
            db_.session() << "PRAGMA cache_size=" + std::to_string(previous_), Poco::Data::Keywords::now;
    } catch (...) {
        // A connection that cannot be set back is closed by its owner soon; nothing to do.
    }
}

RelaxedDurability::RelaxedDurability(Database& db) : db_(db) {
    if (db_.dialect() == Dialect::SQLite) db_.session() << "PRAGMA synchronous=NORMAL", Poco::Data::Keywords::now;
    else db_.session() << "SET synchronous_commit = off", Poco::Data::Keywords::now;
}

RelaxedDurability::~RelaxedDurability() {
    try {
        if (db_.dialect() == Dialect::SQLite) db_.session() << "PRAGMA synchronous=FULL", Poco::Data::Keywords::now;
        else db_.session() << "SET synchronous_commit = on", Poco::Data::Keywords::now;
    } catch (...) {
        // A connection that cannot be set back is closed by its owner soon; nothing to do.
    }
}

GenericPlans::GenericPlans(Database& db) : db_(db) {
    if (db_.dialect() == Dialect::PostgreSQL)
        db_.session() << "SET plan_cache_mode = force_generic_plan", Poco::Data::Keywords::now;
}

GenericPlans::~GenericPlans() {
    try {
        if (db_.dialect() == Dialect::PostgreSQL) db_.session() << "RESET plan_cache_mode", Poco::Data::Keywords::now;
    } catch (...) {
        // A connection that cannot be set back is closed by its owner soon; nothing to do.
    }
}

}  // namespace sm::store
