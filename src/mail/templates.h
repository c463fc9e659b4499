// Mail templates: Mustache files on disk, one directory per mail.
//
//   <dir>/<name>/<lang>.subject.mustache   one line (trimmed after rendering)
//   <dir>/<name>/<lang>.txt.mustache       the text/plain body
//   <dir>/<name>/<lang>.html.mustache      the text/html body (optional)
//
// A language exists for a mail when its .txt file exists; a language without
// one (or a malformed language tag) falls back to "en". Subject and text are
// rendered without any escaping (they are not HTML); the HTML body is
// HTML-escaped as Mustache does by default ({{{x}}} stays raw, so do not use it
// for data). Templates are read and parsed once, on first use, and cached.
// A TemplateSet is not thread-safe: give each thread its own.
#pragma once

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <kainjow/mustache.hpp>

namespace sm::mail {

using TemplateData = kainjow::mustache::data;

struct RenderedMail {
    std::string subject;
    std::string text;
    std::string html;  ///< empty when the language has no .html template
};

/// A missing or unreadable template, or a Mustache syntax/render error. The
/// message names the file and carries kainjow's own error text.
class TemplateError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class TemplateSet {
public:
    /// `directory` holds one sub-directory per mail. Nothing is read yet.
    explicit TemplateSet(std::string directory);
    ~TemplateSet();
    TemplateSet(const TemplateSet&) = delete;
    TemplateSet& operator=(const TemplateSet&) = delete;

    /// Renders mail `name` in `language`, or in "en" when that language has no
    /// template. Throws TemplateError when "en" is missing too, when a file of
    /// the chosen language is missing/unreadable (subject, text), for an invalid
    /// mail name, or on a Mustache error.
    RenderedMail render(const std::string& name, const std::string& language, const TemplateData& data) const;

    /// The languages mail `name` has (sorted); empty when it does not exist.
    std::vector<std::string> languages(const std::string& name) const;

    /// The mails of the directory (sorted sub-directory names).
    std::vector<std::string> names() const;

    /// Renders every mail in every language with `sample` and checks each mail
    /// has "en". Throws one TemplateError listing every problem found.
    void checkAll(const TemplateData& sample) const;

    const std::string& directory() const { return directory_; }

private:
    struct Compiled;
    Compiled& load(const std::string& name, const std::string& language) const;

    std::string directory_;
    // Key "name/language" as asked (a fallback maps to the "en" entry).
    mutable std::map<std::string, std::shared_ptr<Compiled>> cache_;
};

}  // namespace sm::mail
