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
    CompiledTemplatePart layout;  ///< _layout/<lang>.html.mustache, if the directory has one
};

namespace {

/// The directory of the shared HTML layout (not a mail).
const char* const kLayout = "_layout";

/// Mail names and language tags become path components: letters, digits, '_', '-'.
bool safeComponent(const std::string& s) {
    if (s.empty() || s.size() > 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

std::string identity(const std::string& s) { return s; }

std::string inlineStyles(std::string html);

/// styled: the file's HTML gets the inline styles (inlineStyles) once here, not
/// in every mail rendered from it (data is escaped, so it brings no tags to style).
CompiledTemplatePart loadPart(const std::string& path, bool required, bool escapeHtml, bool styled = false) {
    CompiledTemplatePart part;
    part.path = path;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        if (!required && !fs::exists(path)) return part;
        throw TemplateError(path + ": cannot read template");
    }
    std::ostringstream buf;
    buf << in.rdbuf();
    part.tmpl = std::make_unique<Mustache>(styled ? inlineStyles(buf.str()) : buf.str());
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

/// The text between the first `open...>` and `close`, or "" (open names a tag
/// without its '>', so attributes are allowed).
std::string between(const std::string& html, const std::string& open, const std::string& close) {
    auto a = html.find(open);
    if (a == std::string::npos) return "";
    a = html.find('>', a);
    const auto b = html.find(close, a);
    if (a == std::string::npos || b == std::string::npos) return "";
    return html.substr(a + 1, b - a - 1);
}

/// A mail's HTML inside the shared layout: the mail's <body> becomes {{{content}}},
/// its <title> {{{title}}}; the layout sees the mail's data too (the case box shows
/// case_number, severity and due_local when the mail has them).
std::string withLayout(const CompiledTemplatePart& layout, const std::string& html, const TemplateData& data) {
    std::string body = between(html, "<body", "</body>");
    if (body.empty()) body = html;  // a fragment: all of it
    TemplateData d = data;
    d.set("content", body);
    d.set("title", between(html, "<title", "</title>"));
    return renderPart(layout, d);
}

/// The one style sheet, inline: webmail drops <style> blocks and external CSS, so
/// each plain tag the templates write gets its style attribute here (templates
/// stay plain HTML; a tag written with attributes is left as it is).
std::string inlineStyles(std::string html) {
    static const std::pair<const char*, const char*> styles[] = {
        {"<p>", "<p style=\"margin:0 0 14px 0\">"},
        {"<table>", "<table cellpadding=\"0\" cellspacing=\"0\" style=\"border-collapse:collapse;margin:4px 0 18px 0;"
                    "border:1px solid #d0d7de\">"},
        {"<th align=\"left\">", "<th align=\"left\" style=\"text-align:left;vertical-align:top;padding:7px 12px;"
                                 "border:1px solid #d0d7de;background:#f6f8fa;font-weight:600\">"},
        {"<th>", "<th style=\"text-align:left;vertical-align:top;padding:7px 12px;border:1px solid #d0d7de;"
                 "background:#f6f8fa;font-weight:600\">"},
        {"<td>", "<td style=\"vertical-align:top;padding:7px 12px;border:1px solid #d0d7de\">"},
        {"<h3>", "<h3 style=\"font-size:17px;line-height:1.3;margin:22px 0 8px 0;color:#0b5cad\">"},
        {"<ul>", "<ul style=\"margin:0 0 14px 0;padding-left:22px\">"},
        {"<li>", "<li style=\"margin:0 0 6px 0\">"},
        // The IDs: large, monospace, never broken, selected whole with one click.
        {"<code>", "<code style=\"font-family:Consolas,'DejaVu Sans Mono','Liberation Mono','Courier New',monospace;"
                   "font-size:19px;font-weight:700;letter-spacing:1px;white-space:nowrap;background:#f6f8fa;"
                   "border:1px solid #d0d7de;border-radius:4px;padding:1px 6px;user-select:all\">"},
        {"<pre>", "<pre style=\"font-family:Consolas,'DejaVu Sans Mono','Liberation Mono','Courier New',monospace;"
                  "font-size:14px;line-height:1.5;background:#f6f8fa;border:1px solid #d0d7de;border-radius:4px;"
                  "padding:10px 12px;white-space:pre-wrap\">"},
        // Dates and case numbers: no line break at their hyphens.
        {"<span class=\"nowrap\">", "<span style=\"white-space:nowrap\">"},
        {"<a href=", "<a style=\"color:#0b5cad\" href="},
    };
    for (const auto& [plain, styled] : styles) {
        const std::string from = plain, to = styled;
        for (auto p = html.find(from); p != std::string::npos; p = html.find(from, p + to.size()))
            html.replace(p, from.size(), to);
    }
    return html;
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
    const std::string layouts = directory_ + "/" + kLayout + "/";
    compiled->layout = loadPart(layouts + (fs::exists(layouts + lang + ".html.mustache", ec) ? lang : "en") +
                                    ".html.mustache",
                                false, true, true);
    // A mail's HTML is styled when it goes into the layout.
    compiled->html = loadPart(base + lang + ".html.mustache", false, true, compiled->layout.tmpl != nullptr);
    cache_[key] = compiled;
    return *compiled;
}

RenderedMail TemplateSet::render(const std::string& name, const std::string& language, const TemplateData& data) const {
    const Compiled& c = load(name, language);
    RenderedMail out;
    out.subject = trim(renderPart(c.subject, data));
    out.text = renderPart(c.text, data);
    out.html = renderPart(c.html, data);
    if (!out.html.empty() && c.layout.tmpl) out.html = withLayout(c.layout, out.html, data);
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
        if (it->is_directory(dirEc) && safeComponent(it->path().filename().string()) &&
            it->path().filename().string() != kLayout)
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
