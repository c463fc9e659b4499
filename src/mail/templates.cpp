// Mail templates (see templates.h): file layout, language fallback, caching and
// the escaping rules per part.
#include "mail/templates.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace sm::mail {

namespace fs = std::filesystem;
using Mustache = kainjow::mustache::mustache;

/// One parsed template file.
struct CompiledTemplatePart {
    std::string path;
    std::unique_ptr<Mustache> tmpl;  // null: optional part absent
};

struct TemplateSet::Compiled {
    CompiledTemplatePart subject, text, html;
};

namespace {

/// Mail names and language tags become path components: letters, digits, '_', '-'.
bool safeComponent(const std::string& s) {
    if (s.empty() || s.size() > 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

std::string identity(const std::string& s) { return s; }

CompiledTemplatePart loadPart(const std::string& path, bool required, bool escapeHtml) {
    CompiledTemplatePart part;
    part.path = path;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        if (!required && !fs::exists(path)) return part;
        throw TemplateError(path + ": cannot read template");
    }
    std::ostringstream buf;
    buf << in.rdbuf();
    part.tmpl = std::make_unique<Mustache>(buf.str());
    if (!part.tmpl->is_valid()) throw TemplateError(path + ": " + part.tmpl->error_message());
    if (!escapeHtml) part.tmpl->set_custom_escape(identity);
    return part;
}

std::string renderPart(const CompiledTemplatePart& part, const TemplateData& data) {
    std::string out;
    if (!part.tmpl) return out;
    part.tmpl->render(data, [&out](const std::string& s) { out += s; });
    if (!part.tmpl->is_valid()) throw TemplateError(part.path + ": " + part.tmpl->error_message());
    return out;
}

std::string trim(std::string s) {
    const char* ws = " \t\r\n";
    const auto b = s.find_first_not_of(ws);
    if (b == std::string::npos) return {};
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

}  // namespace

TemplateSet::TemplateSet(std::string directory) : directory_(std::move(directory)) {}
TemplateSet::~TemplateSet() = default;

TemplateSet::Compiled& TemplateSet::load(const std::string& name, const std::string& language) const {
    const std::string key = name + "/" + language;
    if (auto it = cache_.find(key); it != cache_.end()) return *it->second;

    if (!safeComponent(name)) throw TemplateError("invalid template name '" + name + "'");
    const std::string base = directory_ + "/" + name + "/";
    std::string lang = language;
    std::error_code ec;
    if (!safeComponent(lang) || !fs::exists(base + lang + ".txt.mustache", ec)) lang = "en";
    if (lang != language) {  // share the "en" entry
        auto compiled = cache_.find(name + "/en");
        if (compiled == cache_.end()) {
            load(name, "en");
            compiled = cache_.find(name + "/en");
        }
        cache_[key] = compiled->second;
        return *compiled->second;
    }
    auto compiled = std::make_shared<Compiled>();
    compiled->text = loadPart(base + lang + ".txt.mustache", true, false);
    compiled->subject = loadPart(base + lang + ".subject.mustache", true, false);
    compiled->html = loadPart(base + lang + ".html.mustache", false, true);
    cache_[key] = compiled;
    return *compiled;
}

RenderedMail TemplateSet::render(const std::string& name, const std::string& language, const TemplateData& data) const {
    const Compiled& c = load(name, language);
    RenderedMail out;
    out.subject = trim(renderPart(c.subject, data));
    out.text = renderPart(c.text, data);
    out.html = renderPart(c.html, data);
    return out;
}

std::vector<std::string> TemplateSet::languages(const std::string& name) const {
    std::vector<std::string> out;
    if (!safeComponent(name)) return out;
    std::error_code ec;
    const std::string suffix = ".txt.mustache";
    for (fs::directory_iterator it(directory_ + "/" + name, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string file = it->path().filename().string();
        if (file.size() > suffix.size() && file.compare(file.size() - suffix.size(), suffix.size(), suffix) == 0) {
            std::string lang = file.substr(0, file.size() - suffix.size());
            if (safeComponent(lang)) out.push_back(std::move(lang));
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::string> TemplateSet::names() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (fs::directory_iterator it(directory_, ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code dirEc;
        if (it->is_directory(dirEc) && safeComponent(it->path().filename().string()))
            out.push_back(it->path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

void TemplateSet::checkAll(const TemplateData& sample) const {
    std::string problems;
    const auto note = [&problems](const std::string& what) {
        if (!problems.empty()) problems += '\n';
        problems += what;
    };
    const auto names = this->names();
    if (names.empty()) note(directory_ + ": no templates");
    for (const std::string& name : names) {
        const auto langs = languages(name);
        if (std::find(langs.begin(), langs.end(), "en") == langs.end())
            note(directory_ + "/" + name + "/en.txt.mustache: missing (en is the fallback)");
        for (const std::string& lang : langs) {
            try {
                const RenderedMail r = render(name, lang, sample);
                if (r.subject.empty()) note(directory_ + "/" + name + "/" + lang + ".subject.mustache: renders empty");
            } catch (const TemplateError& e) {
                note(e.what());
            }
        }
    }
    if (!problems.empty()) throw TemplateError(problems);
}

}  // namespace sm::mail
