// How far a long job is: the jobs report to a ProgressSink, the application
// draws it (app/progress.h: a bar with rate and ETA when stderr is a terminal,
// nothing otherwise). A job given no sink reports nothing.
#pragma once

#include <cstdint>

namespace sm::jobs {

class ProgressSink {
public:
    virtual ~ProgressSink() = default;
    /// The amount of work ahead (-1: not known). May be called again when a job
    /// learns more (e.g. a second page of rows).
    virtual void begin(std::int64_t total) = 0;
    /// n more items done.
    virtual void advance(std::int64_t n = 1) = 0;
};

/// For callers that pass a possibly-null sink.
inline void progressBegin(ProgressSink* p, std::int64_t total) {
    if (p) p->begin(total);
}
inline void progressAdvance(ProgressSink* p, std::int64_t n = 1) {
    if (p) p->advance(n);
}

}  // namespace sm::jobs
