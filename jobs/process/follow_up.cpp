// process: DOMAIN.md flow 7: a reply to a case joins its thread; it debits nothing.
#include "jobs/process/message_handler.h"

#include "domain/requests.h"

namespace sm::jobs::processing {

std::optional<store::IncidentRow> MessageHandler::threadIncident() {
    if (auto cn = domain::findCaseNumber(mail_.subject))
        if (auto inc = incidents_.byCaseNumber(*cn)) return inc;
    if (auto inc = incidents_.byThreadMessageId(mail_.inReplyTo)) return inc;
    for (auto it = mail_.references.rbegin(); it != mail_.references.rend(); ++it)
        if (auto inc = incidents_.byThreadMessageId(*it)) return inc;
    return std::nullopt;
}

void MessageHandler::handleFollowUp() {
    auto inc = threadIncident();
    // A reply to none of our cases (to an ID mail, a refusal, a colleague's thread)
    // is read by its content, as if it had no In-Reply-To.
    if (!inc) return handleByContent();
    mail::TemplateData d;
    d.set("case_number", inc->caseNumber);
    if (!mayAddTo(*inc)) {
        reply("follow_up_refused", "follow_up_refused", d, languageOf(sender_));
        ++report_.refused;
        return finish("done", "follow_up", sender_, "not the requester nor an authenticated contact of the partner of " + inc->caseNumber);
    }
    const std::string ours = reply("follow_up", "follow_up_added", d, languageOf(sender_));
    incidents_.addExchange(inc->id, mail_.messageId, row_->id, ours);
    ++report_.followUps;
    log_.information("inbound #" + std::to_string(row_->id) + " added to " + inc->caseNumber);
    finish("done", "follow_up", sender_, "added to " + inc->caseNumber);
}

/// The requester may always add to its case (the case number and thread are its own);
/// another contact of the partner only when our MX vouches for its From.
bool MessageHandler::mayAddTo(const store::IncidentRow& inc) {
    if (sender_ == lower(inc.requesterEmail)) return true;
    if (!authenticated("not added to the case of another requester")) return false;
    auto contract = contracts_.byId(inc.contractRef);
    if (!contract) return false;
    for (const auto& c : ref_.contactsByEmail(sender_))
        if (c.partnerId == contract->partnerId) return true;
    return false;
}

}  // namespace sm::jobs::processing
