// Mail templates: the shipped mails (id_mail, request_accepted, request_refused,
// follow_up_added, follow_up_refused, mail_too_large, admin_bounce) in both
// languages, fallback to en, escaping per part, and errors that name the file.
#include <catch2/catch.hpp>

#include <regex>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <Poco/String.h>

#include "mail/compose.h"
#include "mail/templates.h"
#include "support/test_support.h"

using namespace sm::mail;
namespace fs = std::filesystem;

namespace {

/// The HTML with its tags removed: a sentence reads the same whether or not a date
/// in it is wrapped in a no-break span.
std::string withoutTags(const std::string& html) { return std::regex_replace(html, std::regex("<[^>]*>"), ""); }

const std::string kTemplates = std::string(SUPPORTMAIL_SOURCE_DIR) + "/templates";

TemplateData idMailData() {
    TemplateData d;
    d.set("contact_name", "Jane <Doe>");
    d.set("partner_name", "Smith & Sons \"Ltd\"");
    d.set("partner_id", "4648141");
    d.set("plan_name", "Partner Gold Support 20Pack");
    d.set("display_name", "26 SCS-4648141-unk (0037xxxxxx)");
    d.set("access_id", "0037012345");
    d.set("contract_id", "C-4RT8WZ2NQP");
    d.set("activated_on", "2026-01-05");
    d.set("expires_on", "2027-01-05");
    d.set("incidents", "20");
    d.set("hours", "10");
    d.set("support_address", "support@example.test");
    d.set("scope_text", "on-premises and cloud products");
    return d;
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

/// Every variable of the reply and administrator mails (request_accepted,
/// request_refused, follow_up_added, follow_up_refused, mail_too_large,
/// admin_bounce) plus those of id_mail. Numbers are strings: a C++ int would
/// become a kainjow bool.
TemplateData fullSample() {
    TemplateData d = idMailData();
    d.set("contact_name", "Jane Doe");
    d.set("original_subject", "SQL Server crashes on startup");
    d.set("case_number", "SR-2026-000123");
    d.set("severity", "A");
    d.set("severity_a", true);
    d.set("severity_b", false);
    d.set("severity_c", false);
    d.set("response_hours", "2");
    d.set("around_the_clock", true);
    d.set("due_local", "2026-11-27 11:00 (UTC+07:00)");
    d.set("product", "SQL Server 2022");
    d.set("contract_display", "26 SCS-4648141-unk (0037xxxxxx)");
    d.set("incidents_left", "19");
    d.set("reason", "The contract has expired.");
    d.set("access_id_digits", "9");
    d.set("expires_on", "2026-01-05");
    d.set("portal", "https://portal.example.test/support");
    d.set("scope_text", "cloud products only");
    d.set("known_products", "SQL Server, Windows Server, Azure");
    for (const char* flag : {"unknown_pair", "expired", "no_incidents_left", "unknown_product", "out_of_scope",
                             "product_without_ids", "missing_ids", "ambiguous_contract", "missing_severity"})
        d.set(flag, false);
    d.set("expired", true);
    d.set("limit_mb", "25");
    d.set("address", "bob@partner.example");
    d.set("permanent", true);
    d.set("diagnostic", "smtp; 550 5.1.1 <bob@partner.example>: user unknown");
    d.set("partners", "4648141, 5550001");
    d.set("received_access_id", "0037xxxxxx");
    d.set("received_contract_id", "C-4Rxxxxxxxx");
    d.set("received_product", "SQL Server 2022");
    d.set("received_severity", "A");
    return d;
}

/// The variable names of the shipped mails that cannot occur in prose.
const std::vector<std::string> kVariableNames = {
    "contact_name", "support_address", "original_subject", "case_number", "severity_a", "severity_b",
    "severity_c", "response_hours", "around_the_clock", "due_local", "contract_display", "incidents_left",
    "access_id_digits", "expires_on", "scope_text", "known_products", "unknown_pair", "no_incidents_left",
    "unknown_product", "out_of_scope", "product_without_ids", "missing_ids", "ambiguous_contract",
    "missing_severity", "limit_mb", "partner_name", "partner_id", "plan_name", "display_name", "access_id",
    "contract_id", "activated_on", "received_access_id", "received_product"};

/// No Mustache syntax nor variable name survives rendering, in any part.
void checkClean(const RenderedMail& r) {
    for (const std::string* part : {&r.subject, &r.text, &r.html}) {
        CHECK(!contains(*part, "{{"));
        CHECK(!contains(*part, "}}"));
        for (const std::string& name : kVariableNames) {
            CAPTURE(name);
            CHECK(!contains(*part, name));
        }
    }
    CHECK(r.subject.find('\n') == std::string::npos);
    CHECK(!contains(r.text, "\n\n\n"));  // skipped sections leave no gaps
    CHECK(!r.html.empty());
}

/// A scratch template directory, removed at the end of the test.
struct ScratchDir {
    fs::path root;
    ScratchDir() {
        static int n = 0;
        root = fs::temp_directory_path() / ("sm-templates-" + std::to_string(::getpid()) + "-" + std::to_string(++n));
        fs::remove_all(root);
        fs::create_directories(root);
    }
    ~ScratchDir() {
        std::error_code ec;
        fs::remove_all(root, ec);
    }
    void write(const std::string& rel, const std::string& content) const {
        fs::create_directories((root / rel).parent_path());
        std::ofstream(root / rel, std::ios::binary) << content;
    }
};

}  // namespace

TEST_CASE("templates: id_mail renders in en and vi with every id and instruction", "[templates]") {
    const TemplateSet set(kTemplates);
    CHECK(set.languages("id_mail") == std::vector<std::string>{"en", "vi"});
    CHECK(set.names() == std::vector<std::string>{"admin_bounce", "benefits", "case_closed", "contract_expired", "expiry_reminder",
                                                  "follow_up_added", "follow_up_refused", "id_mail", "mail_too_large",
                                                  "no_request", "request_accepted", "request_refused", "resend_ack"});
    const TemplateData data = idMailData();

    const RenderedMail en = set.render("id_mail", "en", data);
    for (const std::string* part : {&en.text, &en.html}) {
        CHECK(contains(*part, "0037012345"));
        CHECK(contains(*part, "C-4RT8WZ2NQP"));
        CHECK(contains(*part, "Access ID: 0037012345"));
        CHECK(contains(*part, "Contract ID: C-4RT8WZ2NQP"));
        for (const char* label : {"Product:", "Usage type:", "Problem type:", "Category:", "Severity:", "Description:"})
            CHECK(contains(*part, label));
        CHECK(contains(*part, "support@example.test"));
        CHECK(contains(*part, "Access ID</strong> is exactly 10 digits") != contains(*part, "Access ID is exactly 10 digits"));
        CHECK(contains(*part, "leading zeros"));
        CHECK(contains(*part, "Give it exactly as written"));
        CHECK(contains(*part, "C-7KQ2M9XH4T"));  // the format example
        CHECK(!contains(*part, "Each is exactly 10 digits"));  // only the Access ID is all digits
        CHECK(contains(*part, "Mức độ nghiêm trọng"));         // Vietnamese labels are mentioned
        CHECK(contains(*part, "Do not forward"));
    }
    CHECK(contains(en.subject, "26 SCS-4648141-unk (0037xxxxxx)"));
    CHECK(en.subject.find('\n') == std::string::npos);

    const RenderedMail vi = set.render("id_mail", "vi", data);
    CHECK(contains(vi.text, "ID truy cập:      0037012345"));
    CHECK(contains(vi.text, "ID hợp đồng:      C-4RT8WZ2NQP"));
    for (const std::string* part : {&vi.text, &vi.html}) {
        // Vietnamese labels are the primary example, English ones are mentioned
        CHECK(contains(*part, "ID truy cập: 0037012345"));
        CHECK(contains(*part, "ID hợp đồng: C-4RT8WZ2NQP"));
        for (const char* label : {"Sản phẩm:", "Loại sử dụng:", "Loại sự cố:", "Danh mục:", "Mức độ nghiêm trọng:", "Mô tả:"})
            CHECK(contains(*part, label));
        CHECK(!contains(*part, "Access ID: 0037012345"));
        CHECK(contains(*part, "Access ID, Contract ID, Product, Usage type"));
        CHECK(contains(*part, "Mã truy cập"));
        CHECK(contains(*part, "ID truy cập</strong> gồm đúng 10 chữ số") != contains(*part, "ID truy cập gồm đúng 10 chữ số"));
        CHECK(contains(*part, "Hãy ghi chính xác như trong thư này"));
        CHECK(!contains(*part, "Mỗi ID gồm đúng 10 chữ số"));
    }
    CHECK(contains(vi.text, "kể cả các chữ số 0"));
    CHECK(contains(vi.text, "Không chuyển tiếp"));
    CHECK(contains(vi.html, "ID truy cập"));
    CHECK(contains(vi.subject, "đã được kích hoạt"));
    CHECK(vi.text != en.text);
    // no variable left unrendered
    for (const std::string* part : {&en.subject, &en.text, &en.html, &vi.subject, &vi.text, &vi.html})
        CHECK(part->find("{{") == std::string::npos);
}

TEST_CASE("templates: text and subject are not HTML-escaped, HTML is", "[templates]") {
    const TemplateSet set(kTemplates);
    const RenderedMail r = set.render("id_mail", "en", idMailData());
    CHECK(contains(r.subject, "Smith & Sons \"Ltd\""));
    CHECK(contains(r.text, "Smith & Sons \"Ltd\""));
    CHECK(contains(r.text, "Hello Jane <Doe>,"));
    CHECK(!contains(r.text, "&amp;"));
    CHECK(contains(r.html, "Smith &amp; Sons &quot;Ltd&quot;"));
    CHECK(contains(r.html, "Jane &lt;Doe&gt;"));
    CHECK(!contains(r.html, "Jane <Doe>"));
}

TEST_CASE("templates: unknown or malformed language falls back to en", "[templates]") {
    const TemplateSet set(kTemplates);
    const TemplateData data = idMailData();
    const RenderedMail en = set.render("id_mail", "en", data);
    for (const char* lang : {"fr", "", "../id_mail/en", "vi/../en", "EN-x"}) {
        CAPTURE(lang);
        const RenderedMail r = set.render("id_mail", lang, data);
        CHECK(r.subject == en.subject);
        CHECK(r.text == en.text);
        CHECK(r.html == en.html);
    }
    // repeated renders (cached templates) give the same result
    CHECK(set.render("id_mail", "vi", data).text == set.render("id_mail", "vi", data).text);
    CHECK_THROWS_AS(set.render("no_such_mail", "en", data), TemplateError);
    CHECK_THROWS_AS(set.render("../templates", "en", data), TemplateError);
}

TEST_CASE("templates: missing en and syntax errors throw TemplateError naming the file", "[templates]") {
    ScratchDir dir;
    dir.write("only_vi/vi.subject.mustache", "Chào {{name}}\n");
    dir.write("only_vi/vi.txt.mustache", "Chào {{name}}\n");
    dir.write("broken/en.subject.mustache", "Hi\n");
    dir.write("broken/en.txt.mustache", "Hello {{#open}}never closed\n");
    dir.write("no_subject/en.txt.mustache", "Hello\n");
    dir.write("ok/en.subject.mustache", "  Hi {{name}} \n");
    dir.write("ok/en.txt.mustache", "Hello {{name}}\n");
    const TemplateSet set(dir.root.string());
    TemplateData data;
    data.set("name", "A&B");

    const RenderedMail vi = set.render("only_vi", "vi", data);
    CHECK(vi.text == "Chào A&B\n");
    CHECK(vi.html.empty());
    try {
        set.render("only_vi", "de", data);
        FAIL("no exception");
    } catch (const TemplateError& e) {
        CHECK(contains(e.what(), (dir.root / "only_vi/en.txt.mustache").string()));
    }
    try {
        set.render("broken", "en", data);
        FAIL("no exception");
    } catch (const TemplateError& e) {
        CHECK(contains(e.what(), (dir.root / "broken/en.txt.mustache").string()));
        CHECK(contains(e.what(), "open"));  // kainjow's message names the unclosed section
    }
    CHECK_THROWS_AS(set.render("no_subject", "en", data), TemplateError);
    const RenderedMail ok = set.render("ok", "en", data);
    CHECK(ok.subject == "Hi A&B");
    CHECK(ok.text == "Hello A&B\n");

    try {
        set.checkAll(data);
        FAIL("no exception");
    } catch (const TemplateError& e) {
        const std::string what = e.what();
        CHECK(contains(what, "only_vi/en.txt.mustache"));
        CHECK(contains(what, "broken/en.txt.mustache"));
        CHECK(contains(what, "no_subject/en.subject.mustache"));
        CHECK(!contains(what, "ok/"));
    }
}

TEST_CASE("templates: checkAll passes on the shipped templates", "[templates]") {
    const TemplateSet set(kTemplates);
    CHECK_NOTHROW(set.checkAll(idMailData()));
    CHECK_NOTHROW(set.checkAll(fullSample()));
    for (const std::string& name : set.names()) {
        CAPTURE(name);
        CHECK(set.languages(name) == std::vector<std::string>{"en", "vi"});
    }
    const TemplateSet empty("/nonexistent-supportmail-templates");
    CHECK(empty.languages("id_mail").empty());
    CHECK_THROWS_AS(empty.checkAll(idMailData()), TemplateError);
}

TEST_CASE("templates: request_accepted gives case number, severity meaning, target and due time", "[templates]") {
    const TemplateSet set(kTemplates);
    TemplateData data = fullSample();

    SECTION("severity A, around the clock") {
        const RenderedMail en = set.render("request_accepted", "en", data);
        checkClean(en);
        CHECK(contains(en.subject, "[SR-2026-000123]"));
        CHECK(contains(en.subject, "SQL Server crashes on startup"));
        CHECK(contains(en.text, "Hello Jane Doe,"));
        for (const std::string* part : {&en.text, &en.html}) {
            CHECK(contains(*part, "SR-2026-000123"));
            CHECK(contains(*part, "A - critical business impact"));
            CHECK(!contains(*part, "moderate business impact"));
            CHECK(!contains(*part, "minimum business impact"));
            CHECK(contains(*part, "within 2 hours, around the clock"));
            CHECK(!contains(*part, "business hours"));
            CHECK(contains(*part, "2026-11-27 11:00 (UTC+07:00)"));
            CHECK(contains(*part, "SQL Server 2022"));
            CHECK(contains(*part, "26 SCS-4648141-unk (0037xxxxxx)"));
            CHECK(contains(*part, "19 (one incident was used for this request)"));
            CHECK(contains(*part, "Reply to this mail"));
            CHECK(contains(*part, "uses no incident"));
            CHECK(!contains(*part, "0037012345"));  // the Access ID is only shown masked
        }

        const RenderedMail vi = set.render("request_accepted", "vi", data);
        checkClean(vi);
        CHECK(contains(vi.subject, "[SR-2026-000123]"));
        CHECK(contains(vi.subject, "đã được chấp nhận"));
        CHECK(contains(vi.text, "Kính gửi Jane Doe,"));
        for (const std::string* part : {&vi.text, &vi.html}) {
            CHECK(contains(*part, "Số hồ sơ"));
            CHECK(contains(*part, "A - ảnh hưởng nghiêm trọng đến hoạt động kinh doanh"));
            CHECK(contains(*part, "trong vòng 2 giờ, liên tục 24/7"));
            CHECK(!contains(*part, "giờ làm việc}"));
            CHECK(contains(*part, "2026-11-27 11:00 (UTC+07:00)"));
            CHECK(contains(*part, "Số sự cố còn lại"));
            CHECK(contains(*part, "trả lời thư này"));
            CHECK(contains(*part, "không bị trừ sự cố"));
        }
        CHECK(vi.text != en.text);
    }

    SECTION("severity B and C, business hours") {
        for (const auto& [sev, hours, meaningEn, meaningVi] :
             std::vector<std::tuple<std::string, std::string, std::string, std::string>>{
                 {"B", "4", "moderate business impact", "ảnh hưởng ở mức trung bình đến hoạt động kinh doanh"},
                 {"C", "8", "minimum business impact", "ảnh hưởng ở mức tối thiểu đến hoạt động kinh doanh"}}) {
            CAPTURE(sev);
            data.set("severity", sev);
            data.set("severity_a", false);
            data.set("severity_b", sev == "B");
            data.set("severity_c", sev == "C");
            data.set("response_hours", hours);
            data.set("around_the_clock", false);
            const RenderedMail en = set.render("request_accepted", "en", data);
            checkClean(en);
            CHECK(contains(en.subject, "[SR-2026-000123]"));
            CHECK(contains(en.subject, "severity " + sev));
            CHECK(contains(en.text, sev + " - " + meaningEn));
            CHECK(contains(en.html, sev + " - " + meaningEn));
            CHECK(!contains(en.text, "critical business impact"));
            CHECK(contains(en.text, "within " + hours + " business hours"));
            CHECK(!contains(en.text, "around the clock"));
            const RenderedMail vi = set.render("request_accepted", "vi", data);
            checkClean(vi);
            CHECK(contains(vi.text, sev + " - " + meaningVi));
            CHECK(contains(vi.html, sev + " - " + meaningVi));
            CHECK(contains(vi.text, "trong vòng " + hours + " giờ làm việc"));
            CHECK(!contains(vi.text, "24/7"));
        }
    }
}

TEST_CASE("templates: request_refused has a specific text per reason, never echoes the IDs", "[templates]") {
    const TemplateSet set(kTemplates);
    struct Reason {
        const char* flag;
        std::vector<std::string> en, vi;  // specific texts
    };
    const std::vector<Reason> reasons = {
        {"unknown_pair",
         {"We found no contract with the Access ID and Contract ID", "exactly 10 digits",
          "e.g. 0230242323 not 230242323", "9 digits", "C-7KQ2M9XH4T"},
         {"không tìm thấy hợp đồng nào khớp", "đúng 10 chữ số", "0230242323 chứ không phải 230242323",
          "9 chữ số"}},
        {"expired", {"26 SCS-4648141-unk (0037xxxxxx) expired on 2026-01-05"}, {"đã hết hạn vào ngày 2026-01-05"}},
        {"no_incidents_left", {"26 SCS-4648141-unk (0037xxxxxx) has no incidents left"}, {"đã hết số sự cố"}},
        {"unknown_product",
         {"We did not recognise the product", "SQL Server, Windows Server, Azure"},
         {"không nhận ra sản phẩm", "SQL Server, Windows Server, Azure"}},
        {"out_of_scope",
         {"SQL Server 2022 is outside the scope of the contract", "cloud products only"},
         {"nằm ngoài phạm vi của hợp đồng", "cloud products only"}},
        {"product_without_ids",
         {"SQL Server 2022 does not use an Access ID and Contract ID: open the request at",
          "https://portal.example.test/support"},
         {"không dùng ID truy cập và ID hợp đồng: hãy gửi yêu cầu", "https://portal.example.test/support"}},
        {"missing_ids", {"does not give both an Access ID and a Contract ID"}, {"không ghi đủ cả ID truy cập và ID hợp đồng"}},
        {"ambiguous_contract", {"linked to more than one contract"}, {"được liên kết với nhiều hợp đồng"}},
        {"missing_severity", {"does not give a severity", "Severity: B"}, {"không ghi mức độ nghiêm trọng", "Mức độ nghiêm trọng: B"}},
    };
    for (const Reason& reason : reasons) {
        CAPTURE(reason.flag);
        TemplateData data = fullSample();
        data.set("contact_name", false);  // unknown sender: generic greeting
        for (const Reason& r : reasons) data.set(r.flag, std::string(r.flag) == reason.flag);
        const std::string sentence = "Sentence from the code, reason " + std::to_string(&reason - reasons.data()) + ".";
        data.set("reason", sentence);

        const RenderedMail en = set.render("request_refused", "en", data);
        const RenderedMail vi = set.render("request_refused", "vi", data);
        for (const RenderedMail* r : {&en, &vi}) {
            checkClean(*r);
            CHECK(contains(r->subject, "SQL Server crashes on startup"));
            for (const std::string* part : {&r->subject, &r->text, &r->html}) {
                CHECK(!contains(*part, "0037012345"));    // the Access ID given
                CHECK(!contains(*part, "C-4RT8WZ2NQP"));  // the Contract ID given
            }
        }
        CHECK(contains(en.text, "Hello,\n"));
        CHECK(contains(vi.text, "Kính gửi Quý khách,\n"));
        for (const std::string* part : {&en.text, &en.html}) {
            CHECK(contains(*part, "nothing was deducted"));
            // The reason is said once, by its own paragraph: the code's sentence is not repeated.
            CHECK(!contains(*part, sentence));
            CHECK(contains(withoutTags(*part), "0037xxxxxx"));  // what was received, masked
            CHECK(contains(withoutTags(*part), "SQL Server 2022"));
        }
        CHECK(contains(en.text, "What we received (IDs shown masked):"));
        CHECK(contains(vi.text, "Thông tin chúng tôi đã nhận"));
        for (const std::string* part : {&vi.text, &vi.html}) {
            CHECK(contains(*part, "không có sự cố nào bị trừ"));
            CHECK(!contains(*part, "Sentence from the code"));
        }
        for (const Reason& other : reasons) {
            const bool mine = &other == &reason;
            CAPTURE(other.flag);
            // the first specific text identifies the reason's paragraph
            CHECK(contains(en.text, other.en.front()) == mine);
            CHECK(contains(withoutTags(en.html), other.en.front()) == mine);
            CHECK(contains(vi.text, other.vi.front()) == mine);
            CHECK(contains(withoutTags(vi.html), other.vi.front()) == mine);
        }
        for (const std::string& text : reason.en) {
            CAPTURE(text);
            CHECK(contains(en.text, text));
            CHECK(contains(withoutTags(en.html), text));
        }
        for (const std::string& text : reason.vi) {
            CAPTURE(text);
            CHECK(contains(vi.text, text));
            CHECK(contains(withoutTags(vi.html), text));
        }
    }
}

TEST_CASE("templates: follow-up, too-large and bounce mails render in en and vi", "[templates]") {
    const TemplateSet set(kTemplates);
    const TemplateData data = fullSample();

    const RenderedMail addedEn = set.render("follow_up_added", "en", data);
    const RenderedMail addedVi = set.render("follow_up_added", "vi", data);
    for (const RenderedMail* r : {&addedEn, &addedVi}) {
        checkClean(*r);
        CHECK(contains(r->subject, "[SR-2026-000123]"));
        CHECK(contains(r->text, "SR-2026-000123"));
        CHECK(contains(r->html, "SR-2026-000123"));
    }
    CHECK(contains(addedEn.text, "was added to case SR-2026-000123"));
    CHECK(contains(addedEn.text, "no incident"));
    CHECK(contains(addedEn.html, "uses no incident"));
    CHECK(contains(addedVi.subject, "đã được thêm vào hồ sơ"));
    CHECK(contains(addedVi.text, "không bị trừ sự cố nào"));

    const RenderedMail refusedEn = set.render("follow_up_refused", "en", data);
    const RenderedMail refusedVi = set.render("follow_up_refused", "vi", data);
    for (const RenderedMail* r : {&refusedEn, &refusedVi}) {
        checkClean(*r);
        CHECK(contains(r->subject, "[SR-2026-000123]"));
    }
    CHECK(contains(refusedEn.subject, "not added"));
    CHECK(contains(refusedEn.text, "was not added to case SR-2026-000123"));
    CHECK(contains(refusedEn.html, "only the person who opened the case"));
    CHECK(contains(refusedVi.subject, "không được thêm vào hồ sơ"));
    CHECK(contains(refusedVi.text, "không được thêm vào hồ sơ SR-2026-000123"));

    const RenderedMail largeEn = set.render("mail_too_large", "en", data);
    const RenderedMail largeVi = set.render("mail_too_large", "vi", data);
    for (const RenderedMail* r : {&largeEn, &largeVi}) {
        checkClean(*r);
        CHECK(contains(r->subject, "25 MB"));
        CHECK(contains(r->subject, "SQL Server crashes on startup"));
    }
    for (const std::string* part : {&largeEn.text, &largeEn.html}) {
        CHECK(contains(*part, "25 MB, the largest mail we accept"));
        CHECK(contains(*part, "file-sharing service"));
        CHECK(contains(*part, "nothing was deducted"));
    }
    CHECK(contains(largeVi.text, "lớn hơn\n25 MB"));
    CHECK(contains(largeVi.html, "25 MB, mức tối đa"));

    const RenderedMail bounceEn = set.render("admin_bounce", "en", data);
    const RenderedMail bounceVi = set.render("admin_bounce", "vi", data);
    for (const RenderedMail* r : {&bounceEn, &bounceVi}) {
        checkClean(*r);
        CHECK(contains(r->subject, "bob@partner.example"));
        CHECK(contains(r->text, "4648141, 5550001"));
        CHECK(contains(r->text, "smtp; 550 5.1.1 <bob@partner.example>: user unknown"));
        CHECK(contains(r->html, "smtp; 550 5.1.1 &lt;bob@partner.example&gt;: user unknown"));
        CHECK(contains(r->text, "SQL Server crashes on startup"));
    }
    CHECK(contains(bounceEn.subject, "permanent failure"));
    CHECK(contains(bounceEn.text, "marked as bouncing"));
    CHECK(contains(bounceEn.text, "regional-rule"));
    CHECK(contains(bounceEn.text, "fix the contact"));
    CHECK(contains(bounceVi.subject, "vĩnh viễn"));
    CHECK(contains(bounceVi.text, "đánh dấu là bị trả thư"));

    TemplateData temporary = fullSample();
    temporary.set("permanent", false);
    const RenderedMail tempEn = set.render("admin_bounce", "en", temporary);
    CHECK(contains(tempEn.subject, "temporary failure"));
    CHECK(!contains(tempEn.text, "permanent"));
    CHECK(contains(set.render("admin_bounce", "vi", temporary).subject, "tạm thời"));
}

TEST_CASE("templates: reply mails greet generically without a contact name", "[templates]") {
    const TemplateSet set(kTemplates);
    // The code must pass an empty name as false or leave it unset: kainjow
    // treats an empty string as true in sections.
    TemplateData unset = fullSample();
    unset.set("contact_name", false);
    for (const char* name : {"request_accepted", "request_refused", "follow_up_added", "follow_up_refused",
                             "mail_too_large", "no_request"}) {
        CAPTURE(name);
        const RenderedMail en = set.render(name, "en", unset);
        CHECK(en.text.rfind("Hello,\n", 0) == 0);
        CHECK(contains(en.html, ">Hello,</p>"));
        const RenderedMail vi = set.render(name, "vi", unset);
        CHECK(vi.text.rfind("Kính gửi Quý khách,\n", 0) == 0);
        CHECK(contains(vi.html, ">Kính gửi Quý khách,</p>"));
        const RenderedMail named = set.render(name, "en", fullSample());
        CHECK(named.text.rfind("Hello Jane Doe,\n", 0) == 0);
    }
    CHECK(set.render("admin_bounce", "vi", unset).text.rfind("Kính gửi Quản trị viên,\n", 0) == 0);
}

TEST_CASE("templates: reply mails escape data in HTML only", "[templates]") {
    const TemplateSet set(kTemplates);
    TemplateData data = fullSample();
    data.set("product", "<script>alert(1)</script>");
    data.set("original_subject", "Crash & \"burn\"");
    data.set("expired", false);
    data.set("out_of_scope", true);
    for (const char* lang : {"en", "vi"}) {
        CAPTURE(lang);
        for (const char* name : {"request_accepted", "request_refused"}) {
            CAPTURE(name);
            const RenderedMail r = set.render(name, lang, data);
            CHECK(contains(r.html, "&lt;script&gt;alert(1)&lt;/script&gt;"));
            CHECK(!contains(r.html, "<script>"));
            CHECK(contains(r.html, "Crash &amp; &quot;burn&quot;"));
            CHECK(contains(r.text, "<script>alert(1)</script>"));  // text is not HTML
            CHECK(contains(r.subject, "Crash & \"burn\""));
        }
    }
}

TEST_CASE("templates: every mail in every language uses the shared layout and passes the validator", "[templates][layout]") {
    const TemplateSet set(kTemplates);
    smtest::TempDir out;
    TemplateData data = fullSample();
    data.set("state_active", true);
    data.set("decrement", true);  // both closure texts, for the word checks
    data.set("non_decrement", true);
    const auto names = set.names();
    REQUIRE(names.size() >= 11);
    CHECK(std::find(names.begin(), names.end(), "_layout") == names.end());  // the layout is not a mail
    int n = 0;
    for (const auto& name : names) {
        const auto langs = set.languages(name);
        CHECK(langs == std::vector<std::string>{"en", "vi"});
        for (const auto& lang : langs) {
            CAPTURE(name, lang);
            // Every language has every part en has: nothing falls back to English unseen.
            for (const char* part : {".subject.mustache", ".txt.mustache", ".html.mustache"})
                CHECK(fs::exists(fs::path(kTemplates) / name / (lang + part)));
            const RenderedMail r = set.render(name, lang, data);
            CHECK(!r.subject.empty());
            CHECK(!contains(r.text, "{{"));
            CHECK(!contains(r.html, "{{"));
            // The layout: one inline style sheet, a sans-serif list with fonts that have
            // Vietnamese, a readable width, nothing fetched from elsewhere.
            CHECK(contains(r.html, "<html lang=\"" + lang + "\">"));
            CHECK(contains(r.html, "'Noto Sans'"));
            CHECK(contains(r.html, "sans-serif"));
            CHECK(contains(r.html, "max-width:640px"));
            CHECK(!contains(r.html, "<style"));
            CHECK(!contains(r.html, "<link"));
            CHECK(!contains(r.html, "<img"));
            CHECK(!contains(r.html, "<p>"));      // every paragraph styled
            CHECK(!contains(r.html, "<td>"));     // every cell has border and padding
            CHECK(!contains(r.html, "<code>"));
            CHECK(!contains(r.html, "class=\"nowrap\""));
            if (contains(r.html, "<table ")) CHECK(contains(r.html, "border:1px solid #d0d7de"));
            // The partner reads plain words.
            for (const std::string* part : {&r.subject, &r.text, &r.html}) {
                CHECK(!contains(Poco::toLower(*part), "decrement"));
                if (lang == "vi") {
                    for (const char* english : {"Partner Support", "active", "Hello", "Case number", "Severity ",
                                                "bạn "}) {
                        CAPTURE(english);
                        CHECK(!contains(withoutTags(*part), english));
                    }
                }
            }
            {
                OutgoingMessage m;
                m.from = {"Partner Support", "support@example.test"};
                m.to = {{"Jane Doe", "jane@partner.example"}};
                m.subject = r.subject;
                m.text = r.text;
                m.html = r.html;
                m.messageIdDomain = "example.test";
                const auto c = compose(m);
                CHECK(contains(c.bytes, "\r\nX-Auto-Response-Suppress: All\r\n"));
                // scripts/render-mails.sh asks for the HTML parts to photograph them.
                if (const char* keep = std::getenv("SUPPORTMAIL_RENDER_DIR"))
                    smtest::writeFile(std::string(keep) + "/" + name + "-" + lang + ".html", r.html);
                const std::string file = out.file(name + "-" + lang + ".eml");
                smtest::writeFile(file, c.bytes);
                auto check = smtest::checkEml(file);
                CAPTURE(check.out, check.err);
                CHECK(check.exitCode == 0);
                ++n;
            }
        }
    }
    CHECK(n == static_cast<int>(names.size()) * 2);
}

TEST_CASE("templates: the case box shows case number, severity and due time when the mail has a case", "[templates][layout]") {
    const TemplateSet set(kTemplates);
    const TemplateData data = fullSample();
    const RenderedMail en = set.render("request_accepted", "en", data);
    const auto box = en.html.find(">Case number<");
    REQUIRE(box != std::string::npos);
    CHECK(en.html.find("SR-2026-000123", box) < en.html.find("Severity <strong>A</strong>", box));
    CHECK(contains(en.html, "white-space:nowrap\"><strong>2026-11-27 11:00 (UTC+07:00)</strong>"));
    const RenderedMail vi = set.render("request_accepted", "vi", data);
    CHECK(contains(vi.html, ">Số hồ sơ<"));
    CHECK(contains(vi.html, "Mức độ nghiêm trọng <strong>A</strong>"));
    // The ID mail has no case: no box; its IDs large and copied whole.
    const RenderedMail id = set.render("id_mail", "en", idMailData());
    CHECK(!contains(id.html, ">Case number<"));
    CHECK(contains(id.html, "font-size:19px;font-weight:700;letter-spacing:1px;white-space:nowrap"));
    CHECK(contains(id.html, "user-select:all"));
}

TEST_CASE("templates: an ID mail sent again says who asked and when, a first one does not", "[templates][layout]") {
    const TemplateSet set(kTemplates);
    TemplateData first = idMailData();
    first.set("resent", false);
    TemplateData again = idMailData();
    again.set("resent", true);
    again.set("resent_by", "bob@partner.example");
    again.set("resent_at", "2026-11-28 09:15 UTC");
    for (const char* lang : {"en", "vi"}) {
        CAPTURE(lang);
        const RenderedMail a = set.render("id_mail", lang, first);
        const RenderedMail b = set.render("id_mail", lang, again);
        for (const std::string* part : {&b.text, &b.html}) {
            CHECK(contains(withoutTags(*part), "bob@partner.example"));
            CHECK(contains(withoutTags(*part), "2026-11-28 09:15 UTC"));
        }
        CHECK(!contains(a.text, "bob@partner.example"));
        CHECK(!contains(a.text, std::string(lang) == "en" ? "Sent again on request" : "Gửi lại theo yêu cầu"));
        CHECK(contains(b.text, std::string(lang) == "en" ? "Sent again on request" : "Gửi lại theo yêu cầu"));
    }
}
