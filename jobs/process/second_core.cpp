// process, the second core: the helper thread and the preparation of a message.
#include "jobs/process/second_core.h"

#include "mail/mime_parser.h"

#include <algorithm>

namespace sm::jobs::processing {

PreparedMail prepareMail(std::string raw) {
    PreparedMail p;
    p.raw = std::move(raw);
    try {
        // Hostile shapes (too deep, too many parts, monstrous headers) are quarantined,
        // not cut: an operator should look at them.
        mail::ParseLimits limits;
        limits.rejectHostile = true;
        p.mail = mail::parseMail(p.raw, limits);
    } catch (const mail::MailRejected& e) {
        p.parseFailure = std::string("unparseable: ") + e.what();
        return p;
    } catch (const std::exception& e) {
        p.parseFailure = std::string("parser failed: ") + e.what();
        return p;
    }
    try {
        p.reading = mail::readRequest(p.mail);
        p.hygiene = mail::classifyHygiene(p.mail, &p.bounce, &p.reading);
    } catch (...) {
        p.classifyError = std::current_exception();
    }
    return p;
}

SecondCore::SecondCore(const std::string& templatesDir) : templates_(templatesDir), thread_([this] { loop(); }) {}

SecondCore::~SecondCore() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
}

void SecondCore::loop() {
    for (;;) {
        std::function<void()> task;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
            if (tasks_.empty()) return;  // stopping, and every task given has run
            task = std::move(tasks_.front());
            tasks_.pop_front();
        }
        task();  // a packaged_task: its exception goes to its future
    }
}

void DeferredAnswers::flush() {
    if (pending_.empty()) return;
    while (!pending_.empty()) {
        auto next = std::move(pending_.front());
        pending_.pop_front();
        store::OutboxRow row;
        try {
            row = next.row.get();
        } catch (const std::exception& e) {
            pending_.clear();
            throw DeferredAnswerFailed("the answer to inbound #" + std::to_string(next.inboundId) + ": " + e.what());
        }
        outbox_.enqueuePipelined(row);
    }
    // Their outcomes, before anything else is sent: an error belongs to these answers,
    // not to the message that comes next.
    db_.flush();
}

void DeferredAnswers::drop(std::int64_t inboundId) {
    pending_.erase(std::remove_if(pending_.begin(), pending_.end(),
                                  [&](const Pending& p) { return p.inboundId == inboundId; }),
                   pending_.end());
}

}  // namespace sm::jobs::processing
