// Ingest benchmark: N request mails in a Maildir become durable incidents and
// queued replies (jobs::fetch then jobs::process, as `supportmail fetch` and
// `supportmail process` run them: WAL, synchronous=FULL, group commits), timed
// together. Then the baseline the brief compares with: the same rows that run
// produced (inbound and its raw mail, incidents, case messages, ledger, outbox and
// its bytes, sender links) inserted again by SQLite alone, in batches of the same
// size, into a fresh database with the same schema and settings. And the same job written in plain
// Python (bench/ingest_reference.py, standard library only: the email package,
// sqlite3, string.Template) on a copy of the same Maildir and database, with the
// same commit grouping. Prints the three rates and the ratios.
//   bench_ingest [N=5000] [ATTACHMENT_KB=0]   (run from the source tree: it reads config/,
//   templates/, sample/, bench/). With ATTACHMENT_KB, each request carries a base64
//   attachment of that size (a log file), and the bytes written show what a mail costs
//   the disk.
// Mails: 80 % requests from gold contracts' primary contacts quoting their IDs
// (accepted: incident, debit, confirmation; one partner per 50 mails), 20 % from
// strangers with wrong IDs (refused with the reason).
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <Poco/Data/Session.h>
#include <Poco/File.h>
#include <Poco/Path.h>
#include <Poco/Logger.h>

#include "bench_io.h"
#include "bench_mails.h"
#include "app/config.h"
#include "domain/secure_random.h"
#include "jobs/activate.h"
#include "jobs/fetch.h"
#include "jobs/import_reference.h"
#include "jobs/process.h"
#include "mail/templates.h"
#include "store/database.h"

using namespace Poco::Data::Keywords;

namespace {

std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

double since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// CPU seconds (user + system) of this process, all its threads.
double cpuSeconds() {
    timespec t{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + t.tv_nsec / 1e9;
}

/// CPU seconds of the calling thread: the one that writes (process's helper thread
/// renders and parses beside it; with a core of its own, this is the critical path).
double threadCpuSeconds() {
    timespec t{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + t.tv_nsec / 1e9;
}

/// CPU seconds of the waited-for children (the Python reference).
double childCpuSeconds() {
    rusage u{};
    ::getrusage(RUSAGE_CHILDREN, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

// A base64 part of `kb` KB (lines of 76), its bytes different for each mail, and the
// closing boundary.
std::string attachment(int seed, int kb) {
    std::mt19937 rng(static_cast<unsigned>(seed));
    return "--part\r\nContent-Type: application/octet-stream; name=\"cluster.log\"\r\n"
           "Content-Disposition: attachment; filename=\"cluster.log\"\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\n" +
           benchmail::base64Lines(static_cast<std::size_t>(kb) * 1024 * 3 / 4, rng) + "--part--\r\n";
}

int main(int argc, char** argv) {
    const int count = argc > 1 ? std::atoi(argv[1]) : 5000;
    const int attachmentKb = argc > 2 ? std::max(0, std::atoi(argv[2])) : 0;
    if (!Poco::File("config/supportmail.properties").exists()) {
        std::fprintf(stderr, "bench_ingest: run it from the source tree (config/, templates/, sample/)\n");
        return 64;
    }
    char dirTemplate[] = "/tmp/bench-ingest-XXXXXX";
    const std::string dir = ::mkdtemp(dirTemplate);
    const std::string cwd = Poco::Path::current();
    std::string conf = readFile("config/supportmail.properties");
    auto set = [&](const std::string& key, const std::string& value) {
        conf = std::regex_replace(conf, std::regex("(^|\n)#?" + std::regex_replace(key, std::regex("\\."), "\\.") +
                                                   " = [^\n]*"),
                                  "$1" + key + " = " + value);
    };
    set("database.url", "sqlite:" + dir + "/ingest.db");
    set("templates.dir", cwd + "templates");
    set("transport.url", "maildir:" + dir + "/spool");
    set("inbound.support.url", "maildir:" + dir + "/inbox");
    set("plans.gold.incidents", "100");
    set("process.replies_per_sender_per_hour", "100");
    std::ofstream(dir + "/bench.properties") << conf;
    auto settings = sm::app::loadSettings(dir + "/bench.properties");
    auto& log = Poco::Logger::get("bench");
    log.setLevel("warning");

    auto db = sm::store::Database::open(settings.databaseUrl);
    db->migrate();
    // One gold partner (its HQ primary contact, in Germany) per 50 mails (40 of them
    // its requests), as a busy month would spread them: each contract and sender sees
    // a realistic number of incidents and replies (the plan's incidents and the
    // hourly reply limit are raised to 100 so that all 40 are accepted and answered).
    const int partners = std::max(1, count / 50);
    {
        std::ofstream p(dir + "/partners.csv"), r(dir + "/renewals.csv");
        p << "partner_id,partner_name,membership,hq_country,contact_email,contact_name,contact_role,contact_country,"
             "contact_language\n";
        r << "partner_id,benefit,renewal_date\n";
        for (int k = 0; k < partners; ++k) {
            const std::string id = std::to_string(4000000 + k);
            p << id << ",Partner " << k << ",gold,DE,primary@p" << k << ".example,Primary " << k
              << ",hq_primary,DE,en\n";
            r << id << ",gold,2026-11-02\n";
        }
    }
    sm::jobs::importPartners(*db, settings, dir + "/partners.csv", false);
    sm::jobs::importRenewals(*db, settings, dir + "/renewals.csv", false);
    sm::mail::TemplateSet templates(settings.templatesDir);
    sm::domain::SystemRandom random;
    sm::jobs::activate(*db, settings, templates, random, {}, log);
    std::vector<std::string> partnerIds, accessIds, contractIds;
    db->session() << "SELECT partner_id, access_id, contract_id FROM contracts ORDER BY id", into(partnerIds),
        into(accessIds), into(contractIds), now;
    if (static_cast<int>(accessIds.size()) != partners) {
        std::fprintf(stderr, "bench_ingest: %zu contracts for %d partners\n", accessIds.size(), partners);
        return 1;
    }

    // The baseline and the Python reference start from this state (partners,
    // contacts, contracts): copies.
    db->session() << "PRAGMA wal_checkpoint(TRUNCATE)", now;
    Poco::File(dir + "/ingest.db").copyTo(dir + "/baseline.db");
    Poco::File(dir + "/ingest.db").copyTo(dir + "/reference.db");

    for (const char* sub : {"/inbox", "/inbox/new", "/inbox/cur", "/inbox/tmp"}) Poco::File(dir + sub).createDirectory();
    for (int i = 0; i < count; ++i) {
        const bool stranger = i % 5 == 4;
        const std::size_t k = static_cast<std::size_t>(i) % accessIds.size();
        const std::string partner = std::to_string(std::stoi(partnerIds[k]) - 4000000);
        std::ofstream(dir + "/inbox/new/" + std::to_string(i) + ".bench:2,")
            << "From: "
            << (stranger ? "Someone <someone" + std::to_string(i) + "@elsewhere.example>"
                         : "Primary " + partner + " <primary@p" + partner + ".example>")
            << "\r\nTo: support@example.test\r\nSubject: SQL Server cluster fails over (" << i
            << ")\r\nMessage-ID: <bench." << i << "@p" << partner
            << ".example>\r\nDate: Thu, 26 Nov 2026 04:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            << (attachmentKb > 0 ? "Content-Type: multipart/mixed; boundary=\"part\"\r\n\r\n--part\r\n" : "")
            << "Content-Type: text/plain; charset=utf-8\r\n\r\n"
               "Access ID: "
            << (stranger ? std::string("0000000000") : accessIds[k])
            << "\r\nContract ID: " << (stranger ? std::string("C-AAAAAAAAAA") : contractIds[k])
            << "\r\nProduct: SQL Server\r\nSeverity: B\r\nDescription: the cluster fails over every hour since "
               "the last update; logs attached on request.\r\n"
            << (attachmentKb > 0 ? attachment(i, attachmentKb) : std::string());
    }

    Poco::File(dir + "/inbox").copyTo(dir + "/inbox-reference");

    // Wall time and CPU time (both cores, when process uses them): on a shared
    // machine the wall time swings with the other load, the CPU per mail less.
    auto t0 = std::chrono::steady_clock::now();
    double c0 = cpuSeconds();
    const double written0 = benchio::writtenMB();
    auto fetched = sm::jobs::fetch(*db, settings, log);
    const double fetchSeconds = since(t0), fetchCpu = cpuSeconds() - c0;
    const double m0 = threadCpuSeconds();
    auto processed = sm::jobs::process(*db, settings, templates, log);
    const double ingest = since(t0), ingestCpu = cpuSeconds() - c0, processMainCpu = threadCpuSeconds() - m0;
    const double written = benchio::writtenMB() - written0;
    if (fetched.fetched != count || processed.processed != count) {
        std::fprintf(stderr, "bench_ingest: fetched %d, processed %d of %d\n", fetched.fetched, processed.processed,
                     count);
        return 1;
    }

    // The Python reference, timed from outside (interpreter start included: a
    // cron run pays it too, and it is ~30 ms).
    t0 = std::chrono::steady_clock::now();
    c0 = childCpuSeconds();
    const std::string command =
        "python3 " + cwd + "bench/ingest_reference.py " + dir + "/reference.db " + dir + "/inbox-reference";
    if (std::system(command.c_str()) != 0) {
        std::fprintf(stderr, "bench_ingest: %s failed\n", command.c_str());
        return 1;
    }
    const double reference = since(t0), referenceCpu = childCpuSeconds() - c0;
    int referenceCases = 0;
    // The average answer each queued: the job is the same, the mail is not (ours: the
    // shared HTML layout and the text, quoted-printable; the script's: two short parts).
    double ourAnswerBytes = 0, referenceAnswerBytes = 0;
    db->session() << "SELECT COALESCE(AVG(LENGTH(bytes)), 0) FROM outbox_bytes", into(ourAnswerBytes), now;
    {
        auto ref = sm::store::Database::open("sqlite:" + dir + "/reference.db");
        ref->session() << "SELECT COUNT(*) FROM incidents", into(referenceCases), now;
        ref->session() << "SELECT COALESCE(AVG(LENGTH(bytes)), 0) FROM outbox_bytes", into(referenceAnswerBytes), now;
    }
    if (referenceCases != processed.accepted) {
        std::fprintf(stderr, "bench_ingest: the reference opened %d cases, supportmail %d\n", referenceCases,
                     processed.accepted);
        return 1;
    }

    // The baseline: the same rows, inserted by SQLite alone in batches of the
    // process page size, each batch committed (synchronous=FULL, WAL).
    const char* tables[] = {"inbound", "inbound_raw", "incidents", "case_messages", "ledger", "outbox", "outbox_bytes", "sender_links"};
    auto base = sm::store::Database::open("sqlite:" + dir + "/baseline.db");
    base->session() << "ATTACH DATABASE '" + dir + "/ingest.db' AS src", now;
    // Each table's new rows, found before the clock starts, so that a batch is a
    // rowid range (an OFFSET would walk the table again for every batch).
    std::int64_t rows = 0;
    std::vector<std::vector<std::int64_t>> rowids;
    for (const char* t : tables) {
        std::int64_t start = 0;
        base->session() << "SELECT COALESCE(MAX(rowid), 0) FROM main." + std::string(t), into(start), now;
        rowids.emplace_back();
        base->session() << "SELECT rowid FROM src." + std::string(t) + " WHERE rowid > ? ORDER BY rowid", bind(start),
            into(rowids.back()), now;
        rows += static_cast<std::int64_t>(rowids.back().size());
    }
    const int batch = settings.process.batch;
    t0 = std::chrono::steady_clock::now();
    c0 = cpuSeconds();
    for (std::int64_t from = 0; from < count; from += batch) {
        sm::store::Transaction tx(*base);
        for (std::size_t k = 0; k < std::size(tables); ++k) {
            // Each table's new rows in order, a batch's share at a time.
            const auto& ids = rowids[k];
            const auto n = static_cast<std::int64_t>(ids.size());
            const std::int64_t lo = n * from / count;
            const std::int64_t hi = n * std::min<std::int64_t>(from + batch, count) / count;
            if (lo == hi) continue;
            base->session() << "INSERT INTO main." + std::string(tables[k]) + " SELECT * FROM src." +
                                   std::string(tables[k]) + " WHERE rowid BETWEEN ? AND ? ORDER BY rowid",
                bind(ids[lo]), bind(ids[hi - 1]), now;
        }
        tx.commit();
    }
    const double plain = since(t0), plainCpu = cpuSeconds() - c0;
    base->session() << "DETACH DATABASE src", now;
    if (!std::getenv("BENCH_KEEP")) Poco::File(dir).remove(true);
    else std::printf("kept %s\n", dir.c_str());

    std::printf("ingest: %d mails (%d new cases, %d refused) fetched and processed in %.3f s: %.0f mails/s\n", count,
                processed.accepted, processed.refused, ingest, count / ingest);
    const auto perMail = [&](double seconds) { return 1e6 * seconds / count; };
    std::printf("  (fetch %.3f s, process %.3f s); CPU %.0f us/mail (fetch %.0f, process %.0f of which its main "
                "thread %.0f)\n",
                fetchSeconds, ingest - fetchSeconds, perMail(ingestCpu), perMail(fetchCpu), perMail(ingestCpu - fetchCpu),
                perMail(processMainCpu));
    std::printf("  written by fetch and process: %.1f MB, %.1f KB a mail (the database, its WAL and checkpoints)\n",
                written, written * 1e3 / count);
    std::printf("plain batched SQLite inserts of the same %lld rows (batches of %d mails): %.3f s: %.0f mails/s; "
                "CPU %.0f us/mail\n",
                static_cast<long long>(rows), batch, plain, count / plain, perMail(plainCpu));
    std::printf("Python reference (bench/ingest_reference.py, same mailbox, same commit grouping): %.3f s: %.0f mails/s; "
                "CPU %.0f us/mail\n",
                reference, count / reference, perMail(referenceCpu));
    std::printf("  answers queued: %.0f bytes on average, the Python reference's %.0f\n", ourAnswerBytes,
                referenceAnswerBytes);
    std::printf("ingest = %.0f %% of the plain inserts' rate, %.1fx the Python reference\n", 100.0 * plain / ingest,
                reference / ingest);
    return 0;
}
