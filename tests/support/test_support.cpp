#include "support/test_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <Poco/DirectoryIterator.h>
#include <Poco/File.h>
#include <Poco/Path.h>
#include <Poco/Pipe.h>
#include <Poco/PipeStream.h>
#include <Poco/Process.h>
#include <Poco/StreamCopier.h>
#include <Poco/TemporaryFile.h>
#include <Poco/Timestamp.h>

#include <Poco/Data/Session.h>

#include "domain/dates.h"
#include "store/database.h"

namespace smtest {

TempDir::TempDir() {
    char tmpl[] = "/tmp/smtest.XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
}

TempDir::~TempDir() {
    if (!pgSchema_.empty()) {
        try {
            auto db = sm::store::Database::open(std::string("postgresql:") + std::getenv("SUPPORTMAIL_TEST_POSTGRES"));
            db->session() << "DROP DATABASE IF EXISTS " + pgSchema_ + " WITH (FORCE)", Poco::Data::Keywords::now;
        } catch (...) {
            // The whole cluster is thrown away after the run.
        }
    }
    try {
        Poco::File(path_).remove(true);
    } catch (...) {
    }
}

bool testingOnPostgres() {
    const char* pg = std::getenv("SUPPORTMAIL_TEST_POSTGRES");
    return pg && *pg;
}

std::string testDatabaseUrl(const TempDir& dir) {
    if (!testingOnPostgres()) return "sqlite:" + dir.file("supportmail.db");
    const std::string conninfo = std::getenv("SUPPORTMAIL_TEST_POSTGRES");
    if (dir.pgSchema_.empty()) {
        // Named after the temporary directory: unique on this machine while it lives.
        std::string name = "t_" + Poco::Path(dir.path()).getFileName().substr(7);
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        for (auto& c : name)
            if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
        auto db = sm::store::Database::open("postgresql:" + conninfo);
        db->session() << "CREATE DATABASE " + name, Poco::Data::Keywords::now;
        dir.pgSchema_ = name;
    }
    // The server's conninfo with its dbname replaced (POCO does not pass options='...' through).
    std::string info = conninfo;
    auto at = info.find("dbname=");
    if (at != std::string::npos) info.erase(at, info.find(' ', at) == std::string::npos ? std::string::npos
                                                                                       : info.find(' ', at) - at + 1);
    return "postgresql:" + info + (info.empty() || info.back() == ' ' ? "" : " ") + "dbname=" + dir.pgSchema_;
}

RunResult runProgram(const std::string& program, const std::vector<std::string>& args,
                     const std::vector<std::string>& env) {
    Poco::Pipe outPipe, errPipe;
    Poco::Process::Env penv;
    for (const auto& e : env) {
        auto eq = e.find('=');
        penv[e.substr(0, eq)] = eq == std::string::npos ? "" : e.substr(eq + 1);
    }
    Poco::Process::Args pargs(args.begin(), args.end());
    auto handle = Poco::Process::launch(program, pargs, std::string(), nullptr, &outPipe, &errPipe, penv);
    RunResult r;
    // Drain both pipes concurrently so a chatty child never blocks.
    std::thread errReader([&] {
        Poco::PipeInputStream es(errPipe);
        Poco::StreamCopier::copyToString(es, r.err);
    });
    Poco::PipeInputStream os(outPipe);
    Poco::StreamCopier::copyToString(os, r.out);
    errReader.join();
    r.exitCode = handle.wait();
    return r;
}

RunResult runSupportmail(const std::vector<std::string>& args, const std::vector<std::string>& env) {
    return runProgram(SUPPORTMAIL_BINARY, args, env);
}

bool fileExists(const std::string& path) { return Poco::File(path).exists(); }

void writeFile(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + path);
}

std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<std::string> listFiles(const std::string& dir) {
    std::vector<std::string> out;
    if (!Poco::File(dir).exists()) return out;
    for (Poco::DirectoryIterator it(dir), end; it != end; ++it)
        if (it->isFile()) out.push_back(it->path());
    std::sort(out.begin(), out.end());
    return out;
}

std::string sourceDir() { return SUPPORTMAIL_SOURCE_DIR; }
std::string sharedDir() { return SUPPORTMAIL_SHARED_DIR; }

std::string today() { return sm::domain::isoDate(Poco::Timestamp()); }

RunResult checkEml(const std::string& file) {
    return runProgram("/usr/bin/python3", {sharedDir() + "/tools/validate_eml.py", "check", "--crlf", file});
}

RunResult extractEml(const std::string& file) {
    return runProgram("/usr/bin/python3", {sharedDir() + "/tools/validate_eml.py", "extract", file});
}

int scaled(int n) {
    const char* factor = std::getenv("SUPPORTMAIL_TEST_SCALE");
    const double f = factor && std::atof(factor) > 0 ? std::atof(factor) : 1.0;
    return std::max(1, static_cast<int>(n * f + 0.5));
}

std::string writeTestConfig(const TempDir& dir, const std::string& transportUrl, const std::string& extra) {
    // The project's own file with the database, templates and transport replaced.
    std::ifstream in(sourceDir() + "/config/supportmail.properties");
    std::string line, text;
    while (std::getline(in, line)) {
        if (line.rfind("database.url", 0) == 0 || line.rfind("templates.dir", 0) == 0 ||
            line.rfind("transport.url", 0) == 0)
            continue;
        bool overridden = false;
        std::istringstream ex(extra);
        std::string e;
        while (std::getline(ex, e)) {
            auto eq = e.find('=');
            if (eq == std::string::npos) continue;
            std::string key = e.substr(0, e.find_last_not_of(" ", eq - 1) + 1);
            if (line.rfind(key + " ", 0) == 0 || line.rfind(key + "=", 0) == 0) overridden = true;
        }
        if (!overridden) text += line + "\n";
    }
    text += "database.url = " + testDatabaseUrl(dir) + "\n";
    text += "templates.dir = " + sourceDir() + "/templates\n";
    text += "transport.url = " + transportUrl + "\n";
    text += extra;
    if (!extra.empty() && extra.back() != '\n') text += "\n";
    std::string path = dir.file("supportmail.properties");
    writeFile(path, text);
    return path;
}

std::string writeSamplePartners(const TempDir& dir, const std::string& d) {
    std::string csv =
        "partner_id,partner_name,membership,hq_country,contact_email,contact_name,contact_role,contact_country,"
        "contact_language,location_id,location_name,location_country\n"
        "4648141,Contoso Cloud Partners,gold,DE,alice@" + d + ",Alice Schmidt,hq_primary,DE,en,,,\n"
        "4648141,Contoso Cloud Partners,gold,DE,bob@" + d + ",Bob Weber,member,DE,en,,,\n"
        "4648141,Contoso Cloud Partners,gold,DE,carol@" + d + ",Carol Dupont,location_primary,FR,en,CON-PAR,Contoso Paris,FR\n"
        "4648141,Contoso Cloud Partners,gold,DE,dave@" + d + ",Dave Miller,member,GB,en,,,\n"
        "5102233,Sông Hồng Software,silver,VN,erin@" + d + ",Nguyễn Văn An,hq_primary,VN,vi,,,\n"
        "5102233,Sông Hồng Software,silver,VN,frank@" + d + ",Trần Thị Bình,member,VN,vi,,,\n"
        "7001234,Fabrikam Action Partners,action_pack,US,grace@" + d + ",Grace Chen,hq_primary,US,en,,,\n";
    std::string path = dir.file("partners.csv");
    writeFile(path, csv);
    return path;
}

}  // namespace smtest
