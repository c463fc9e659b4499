#include "store/copy.h"

#include <algorithm>
#include <set>

#include <Poco/Data/LOB.h>
#include <Poco/Data/MetaColumn.h>
#include <Poco/Data/RecordSet.h>
#include <Poco/Data/Statement.h>
#include <Poco/Nullable.h>

using namespace Poco::Data::Keywords;
using Poco::Data::MetaColumn;
using Poco::Data::RecordSet;
using Poco::Data::Statement;

namespace sm::store {
namespace {

// Parents before children (foreign keys are checked at once on PostgreSQL). Tables
// added by later migrations and not named here follow, by name.
const std::vector<std::string> kOrder = {
    "partners", "locations", "contacts", "renewals", "contracts", "ledger", "outbox", "job_runs", "mailbox_sync",
    "inbound", "incidents", "case_messages", "sender_links", "expiry_reminders", "resends"};
const std::set<std::string> kNotCopied = {"schema_migrations", "leases"};

std::vector<std::string> tablesOf(Database& db) {
    std::vector<std::string> names;
    if (db.dialect() == Dialect::SQLite)
        db.session() << "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            into(names), now;
    else
        db.session() << "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()", into(names), now;
    std::vector<std::string> out;
    for (const auto& t : kOrder)
        if (std::find(names.begin(), names.end(), t) != names.end()) out.push_back(t);
    std::sort(names.begin(), names.end());
    for (const auto& t : names)
        if (!kNotCopied.count(t) && std::find(kOrder.begin(), kOrder.end(), t) == kOrder.end()) out.push_back(t);
    return out;
}

std::int64_t rows(Database& db, const std::string& table) {
    std::int64_t n = 0;
    db.session() << "SELECT COUNT(*) FROM " + table, into(n), now;
    return n;
}

bool hasIdSequence(Database& db, const std::string& table) {
    int n = 0;
    std::string t = table;
    db.session() << db.sql("SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() "
                           "AND table_name = ? AND column_name = 'id' AND column_default LIKE 'nextval%'"),
        use(t), into(n), now;
    return n > 0;
}

}  // namespace

std::vector<TableCopy> copyDatabase(Database& from, Database& to) {
    from.migrate();
    to.migrate();
    if (from.schemaVersion() != to.schemaVersion())
        throw CopyError("schema versions differ: " + from.describe() + " is at " + std::to_string(from.schemaVersion()) +
                        ", " + to.describe() + " at " + std::to_string(to.schemaVersion()));
    std::vector<TableCopy> report;
    Transaction tx(to);
    for (const auto& table : tablesOf(from)) {
        TableCopy copy;
        copy.table = table;
        Statement select(from.session());
        select << "SELECT * FROM " + table;
        select.execute();
        RecordSet rs(select);
        const std::size_t columns = rs.columnCount();
        std::string names, marks;
        for (std::size_t c = 0; c < columns; ++c) {
            names += (c ? ", " : "") + rs.columnName(c);
            marks += c ? ", ?" : "?";
        }
        const std::string insert =
            to.sql("INSERT INTO " + table + " (" + names + ") VALUES (" + marks + ") ON CONFLICT DO NOTHING");
        for (bool more = rs.moveFirst(); more; more = rs.moveNext()) {
            // Values kept by type: text as text, whole numbers as numbers, blobs as bytes.
            std::vector<Poco::Nullable<std::string>> texts(columns);
            std::vector<Poco::Nullable<Poco::Int64>> numbers(columns);
            std::vector<Poco::Data::BLOB> blobs(columns);
            Statement st(to.session());
            st << insert;
            for (std::size_t c = 0; c < columns; ++c) {
                const auto& v = rs.value(c);
                switch (rs.columnType(c)) {
                    case MetaColumn::FDT_BLOB:
                        if (!v.isEmpty()) blobs[c] = v.extract<Poco::Data::BLOB>();
                        st, use(blobs[c]);
                        break;
                    case MetaColumn::FDT_INT8: case MetaColumn::FDT_UINT8: case MetaColumn::FDT_INT16:
                    case MetaColumn::FDT_UINT16: case MetaColumn::FDT_INT32: case MetaColumn::FDT_UINT32:
                    case MetaColumn::FDT_INT64: case MetaColumn::FDT_UINT64: case MetaColumn::FDT_BOOL:
                        if (!v.isEmpty()) numbers[c] = v.convert<Poco::Int64>();
                        st, use(numbers[c]);
                        break;
                    default:
                        if (!v.isEmpty()) texts[c] = v.convert<std::string>();
                        st, use(texts[c]);
                }
            }
            copy.added += static_cast<std::int64_t>(st.execute());
        }
        copy.sourceRows = rows(from, table);
        copy.targetRows = rows(to, table);
        if (copy.targetRows != copy.sourceRows)
            throw CopyError(table + ": " + std::to_string(copy.sourceRows) + " rows in " + from.describe() + " but " +
                            std::to_string(copy.targetRows) + " in " + to.describe() +
                            " (the target was not empty?); nothing was copied");
        if (to.dialect() == Dialect::PostgreSQL && hasIdSequence(to, table))
            to.session() << "SELECT setval(pg_get_serial_sequence('" + table + "', 'id'), COALESCE(MAX(id), 0) + 1, "
                            "false) FROM " + table,
                now;
        report.push_back(copy);
    }
    tx.commit();
    return report;
}

}  // namespace sm::store
