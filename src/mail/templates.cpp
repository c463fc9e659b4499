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

/// A piece of a template made of text and variable tags only: literal text, or
/// the value of a variable (HTML-escaped when `escaped` and the part escapes).
struct TemplateSegment {
    std::string text;  ///< literal text, or the variable's name
    bool variable = false;
    bool escaped = false;  ///< {{name}} (true) rather than {{{name}}} / {{&name}}
};

/// One parsed template file.
struct CompiledTemplatePart {
    std::string path;
    std::unique_ptr<Mustache> tmpl;  // null: optional part absent
    bool escapeHtml = false;
    // Non-empty when the file has nothing but text and variable tags (no sections,
    // partials, comments, delimiter changes, dotted names): then kainjow's output
    // is the text with each variable's string value (escaped as configured) in
    // place, and renderPart builds that directly, several times faster than
    // kainjow's component walk. Anything else goes through kainjow.
    std::vector<TemplateSegment> segments;
    std::size_t literalSize = 0;
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

std::string trimmed(const std::string& s) {
    const char* ws = " \t\r\n\v\f";
    const auto b = s.find_first_not_of(ws);
    if (b == std::string::npos) return {};
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

/// The segments of `source` when it is text and variable tags only (see
/// CompiledTemplatePart); empty otherwise (kainjow renders it).
std::vector<TemplateSegment> simpleSegments(const std::string& source) {
    std::vector<TemplateSegment> out;
    std::size_t pos = 0;
    while (pos < source.size()) {
        const std::size_t open = source.find("{{", pos);
        if (open == std::string::npos) {
            out.push_back({source.substr(pos), false, false});
            break;
        }
        if (open > pos) out.push_back({source.substr(pos, open - pos), false, false});
        const bool triple = open + 2 < source.size() && source[open + 2] == '{';
        const std::string close = triple ? "}}}" : "}}";
        const std::size_t start = open + (triple ? 3 : 2);
        const std::size_t end = source.find(close, start);
        if (end == std::string::npos) return {};
        std::string name = trimmed(source.substr(start, end - start));
        bool escaped = !triple;
        if (!triple && !name.empty()) {
            if (std::string("#^/>!=").find(name[0]) != std::string::npos) return {};
            if (name[0] == '&') {
                escaped = false;
                name = trimmed(name.substr(1));
            }
        }
        if (name.empty() || name.find('.') != std::string::npos || name.find("{{") != std::string::npos) return {};
        out.push_back({name, true, escaped});
        pos = end + close.size();
    }
    if (out.empty()) out.push_back({std::string(), false, false});  // an empty file renders empty
    return out;
}

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
    const std::string source = buf.str();
    part.tmpl = std::make_unique<Mustache>(source);
    if (!part.tmpl->is_valid()) throw TemplateError(path + ": " + part.tmpl->error_message());
    if (!escapeHtml) part.tmpl->set_custom_escape(identity);
    part.escapeHtml = escapeHtml;
    part.segments = simpleSegments(source);
    for (const auto& seg : part.segments)
        if (!seg.variable) part.literalSize += seg.text.size();
    return part;
}

std::string renderWithKainjow(const CompiledTemplatePart& part, const TemplateData& data) {
    std::string out;
    part.tmpl->render(data, [&out](const std::string& s) { out += s; });
    if (!part.tmpl->is_valid()) throw TemplateError(part.path + ": " + part.tmpl->error_message());
    return out;
}

std::string renderPart(const CompiledTemplatePart& part, const TemplateData& data, bool allowFastPath) {
    if (!part.tmpl) return {};
    if (part.segments.empty() || !allowFastPath) return renderWithKainjow(part, data);
    std::string out;
    out.reserve(part.literalSize + part.literalSize / 4);
    for (const auto& seg : part.segments) {
        if (!seg.variable) {
            out += seg.text;
            continue;
        }
        const TemplateData* value = data.get(seg.text);  // what kainjow's context looks up
        if (!value) continue;                              // missing: nothing
        if (value->is_lambda() || value->is_lambda2()) return renderWithKainjow(part, data);
        if (!value->is_string()) continue;  // lists, objects, booleans print nothing
        if (seg.escaped && part.escapeHtml) out += kainjow::mustache::html_escape(value->string_value());
        else out += value->string_value();
    }
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
    out.subject = trim(renderPart(c.subject, data, fastPath_));
    out.text = renderPart(c.text, data, fastPath_);
    out.html = renderPart(c.html, data, fastPath_);
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
