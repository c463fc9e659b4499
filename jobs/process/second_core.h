// process, the second core: one helper thread that does the work of a message that
// needs no database, while the main thread, which owns the connection, writes.
// It parses and classifies the next message of the page (PreparedMail) while the
// main thread handles this one, and renders and composes a request's answer while
// the main thread writes the next message (DeferredAnswers). The main thread still
// inserts every outbox row itself, in order, in the page's transaction, before it
// commits: exactly-once and the order of answers are as before (see process.cpp
// for what happens when a rendering fails after its message).
//
// Tasks run one at a time, in the order given. The helper has its own TemplateSet
// (a TemplateSet is not thread-safe); the settings given must outlive it. A task's
// exception comes back through its future. The destructor waits for the tasks
// already given, then joins. Use from one thread (the main thread) only.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "mail/classify.h"
#include "mail/parsed_mail.h"
#include "mail/templates.h"
#include "store/outbox.h"

namespace sm::jobs::processing {

/// What a message is without the database: parsed (hostile shapes rejected), its
/// hygiene class and its request fields. parseFailure is the quarantine reason when
/// it could not be parsed ("" when it was); classifyError the exception the
/// classification threw (rethrown where the handler would have called it).
struct PreparedMail {
    std::string raw;
    mail::ParsedMail mail;
    std::string parseFailure;
    mail::RequestReading reading;
    mail::BounceInfo bounce;
    mail::Classification hygiene = mail::Classification::NoRequest;
    std::exception_ptr classifyError;
};

/// Parses and classifies one message (what MessageHandler::handle does first).
PreparedMail prepareMail(std::string raw);

class SecondCore {
public:
    explicit SecondCore(const std::string& templatesDir);
    ~SecondCore();
    SecondCore(const SecondCore&) = delete;
    SecondCore& operator=(const SecondCore&) = delete;

    /// Runs task on the helper thread after the tasks given before it.
    template <class F>
    auto run(F task) -> std::future<decltype(task())> {
        using R = decltype(task());
        auto job = std::make_shared<std::packaged_task<R()>>(std::move(task));
        auto result = job->get_future();
        {
            std::lock_guard<std::mutex> lock(mutex_);
            tasks_.emplace_back([job] { (*job)(); });
        }
        wake_.notify_one();
        return result;
    }

    /// The helper's own templates: only for tasks that run on it.
    const mail::TemplateSet& templates() const { return templates_; }

private:
    void loop();

    mail::TemplateSet templates_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> tasks_;
    bool stopping_ = false;
    std::thread thread_;
};

/// A rendering given to the helper failed after its message's savepoint was
/// released: the page must be rolled back and done again without deferring.
class DeferredAnswerFailed : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Answers rendering on the helper, queued into the outbox by the main thread in the
/// order they were made. A request's answer may wait past its message's savepoint
/// (its insert then runs after the next message): the page commits only after
/// flush(). Main thread only.
class DeferredAnswers {
public:
    DeferredAnswers(store::Database& db, store::Outbox& outbox) : db_(db), outbox_(outbox) {}

    void add(std::int64_t inboundId, std::string recipient, std::future<store::OutboxRow> row) {
        pending_.push_back({inboundId, std::move(recipient), std::move(row)});
    }
    /// Answers to `recipient` not in the outbox yet (the hourly reply limit counts them).
    int pendingFor(const std::string& recipient) const {
        int n = 0;
        for (const auto& p : pending_) n += p.recipient == recipient;
        return n;
    }
    bool empty() const { return pending_.empty(); }
    /// Inserts every pending answer, in order: on PostgreSQL all sent without waiting
    /// and their outcomes read in one round trip (a page of requests flushes all its
    /// answers at its end: that was a round trip each). An insert's error throws from
    /// here, as before. Throws DeferredAnswerFailed with what a rendering threw (the
    /// rows before it sent, the rest dropped: the page is rolled back).
    void flush();
    /// Forgets the answers of inbound message id (its savepoint was rolled back).
    void drop(std::int64_t inboundId);
    /// Forgets every answer not inserted yet (the page is rolled back).
    void dropAll() { pending_.clear(); }

private:
    struct Pending {
        std::int64_t inboundId;
        std::string recipient;
        std::future<store::OutboxRow> row;
    };
    store::Database& db_;
    store::Outbox& outbox_;
    std::deque<Pending> pending_;
};

}  // namespace sm::jobs::processing
