#!/usr/bin/env python3
"""Crash injection (issue 9, item 5): fetch, process, deliver and activate run together
against the real Postfix + Dovecot of the integration fixture, are killed with SIGKILL at
random moments, and are run again until every queue is drained. After each round and at
the end the store's invariants are checked:

  - every request mail stored once (inbound, by Message-ID) and processed once (one
    answer queued for it, at most one incident);
  - every incident debited once (one ledger debit keyed by its inbound row, no debit
    without its incident);
  - each contract's balance = the sum of its ledger = granted - incidents, never negative;
  - no Message-ID queued twice in the outbox, nor two answers to one request;
  - SQLite `PRAGMA integrity_check` is ok.

Two campaigns: delivery over SMTP (at least once is the guarantee: the Message-IDs
received in the IMAP mailboxes are counted and mails received twice are reported) and
delivery into a spool directory (exactly once: a Message-ID twice in the spool fails).

usage: crash_harness.py --binary PATH [--kills N] [--seed S] [--keep]
  N (default 100, or $CRASH_KILLS): kills over both campaigns (60 % SMTP, 40 % spool).
  The seed is printed; the same seed replays the same kill plan (the moments depend on
  the machine's speed, so a replay hits similar, not identical, points).
Needs MAIL_ENV_FILE (written by tests/scripts/start-mail-servers.sh). Exit 0 when every
invariant held, 1 otherwise; the last line is a summary with the figures.
"""
import argparse
import datetime
import email.parser
import imaplib
import os
import random
import re
import shutil
import signal
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
JOBS = ["fetch", "process", "deliver", "activate"]
# Partners' primary contacts: users of the fixture's Dovecot (password NAME-pw).
PRIMARIES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
MAILBOX_USERS = PRIMARIES + ["support", "ops"]
ROUND_TIMEOUT = 60  # seconds a surviving job may take before the round fails


def load_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                env[k] = v.strip('"')
    return env


class Failure(Exception):
    pass


class Imap:
    """Plain IMAP to the fixture's Dovecot (loopback test server, plaintext login allowed)."""

    def __init__(self, env, user):
        self.c = imaplib.IMAP4("127.0.0.1", int(env["IMAP_PORT"]))
        self.c.login(user, user + "-pw")
        self.c.select("INBOX")

    def append(self, raw):
        typ, _ = self.c.append("INBOX", None, None, raw)
        if typ != "OK":
            raise Failure("IMAP APPEND failed")

    def empty(self):
        typ, data = self.c.search(None, "ALL")
        if data and data[0]:
            self.c.store("1:*", "+FLAGS.SILENT", "\\Deleted")
            self.c.expunge()

    def message_ids(self):
        typ, data = self.c.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        ids = []
        for item in data or []:
            if isinstance(item, tuple):
                m = re.search(rb"<[^>]+>", item[1])
                if m:
                    ids.append(m.group(0).decode())
        return ids

    def close(self):
        try:
            self.c.logout()
        except Exception:
            pass


def write_config(work, env, transport_lines):
    """The project's configuration file with the lines below in place of its own."""
    extra = "database.url = sqlite:%s/supportmail.db\n" % work
    extra += "templates.dir = %s/templates\n" % SOURCE
    extra += transport_lines
    extra += ("inbound.support.url = imap://127.0.0.1:%s/INBOX\n"
              "inbound.support.starttls = true\ninbound.support.ca_file = %s\n"
              "inbound.support.username = support\n" % (env["IMAP_PORT"], env["MAIL_CA_CERT"]))
    # Retries come round within the drain; every request from a primary gets its answer.
    extra += ("delivery.retry_initial = 1\ndelivery.retry_max = 2\n"
              "process.replies_per_sender_per_hour = 100000\n")
    keys = {l.split("=")[0].strip() for l in extra.splitlines()}
    text = ""
    with open(os.path.join(SOURCE, "config", "supportmail.properties")) as f:
        for line in f:
            if "=" in line and line.split("=")[0].strip() in keys:
                continue
            text += line
    path = os.path.join(work, "supportmail.properties")
    with open(path, "w") as f:
        f.write(text + extra)
    return path


class Campaign:
    def __init__(self, name, args, env, rng, kills_wanted, spool):
        self.name = name
        self.args = args
        self.env = env
        self.rng = rng
        self.kills_wanted = kills_wanted
        self.spool = spool
        self.work = tempfile.mkdtemp(prefix="smcrash.")
        if spool:
            transport = "transport.url = maildir:%s/spool\n" % self.work
        else:
            transport = ("transport.url = smtp://127.0.0.1:%s/supportmail.test\n"
                         "transport.starttls = true\ntransport.ca_file = %s\n"
                         "transport.username = support\n" % (env["SMTP_PORT"], env["MAIL_CA_CERT"]))
        self.config = write_config(self.work, env, transport)
        self.child_env = dict(os.environ, SUPPORTMAIL_SMTP_PASSWORD="support-pw",
                              SUPPORTMAIL_IMAP_PASSWORD="support-pw")
        self.kills = {j: 0 for j in JOBS}
        self.rounds = 0
        self.requests = []  # Message-IDs of the request mails put into the support INBOX
        self.problems = []
        self.exit_codes = {}

    # ---- running the program ----
    def cmd(self, *a):
        return [self.args.binary, "--config", self.config, "-q"] + list(a)

    def run(self, *a):
        r = subprocess.run(self.cmd(*a), env=self.child_env, capture_output=True, text=True, timeout=120)
        return r

    def must(self, *a):
        r = self.run(*a)
        if r.returncode != 0:
            raise Failure("%s exited %d: %s%s" % (" ".join(a), r.returncode, r.stdout, r.stderr))
        return r

    # ---- set-up ----
    def setup(self):
        for u in MAILBOX_USERS:
            m = Imap(self.env, u)
            m.empty()
            m.close()
        csv = ("partner_id,partner_name,membership,hq_country,contact_email,contact_name,contact_role,"
               "contact_country,contact_language,location_id,location_name,location_country\n")
        for i, u in enumerate(PRIMARIES):
            csv += "%d,Crash Partner %d,gold,DE,%s@example.test,%s,hq_primary,DE,en,,,\n" % (
                8100001 + i, i, u, u.capitalize())
        p = os.path.join(self.work, "partners.csv")
        with open(p, "w") as f:
            f.write(csv)
        self.must("import-partners", p)
        self.import_renewals(["%d,gold,%s," % (8100001 + i, self.day(0)) for i in range(len(PRIMARIES))])
        self.must("activate")  # the gold contracts the requests name; their ID mails stay queued
        db = self.db()
        self.contracts = db.execute(
            "SELECT c.access_id, c.contract_id, p.email FROM contracts c JOIN contacts p "
            "ON p.partner_id = c.partner_id AND p.role = 'hq_primary' WHERE c.plan_key = 'gold'").fetchall()
        db.close()
        if len(self.contracts) != len(PRIMARIES):
            raise Failure("set-up activated %d gold contracts, expected %d" % (len(self.contracts), len(PRIMARIES)))
        self.support = Imap(self.env, "support")

    @staticmethod
    def day(back):
        return (datetime.date.today() - datetime.timedelta(days=back)).isoformat()

    def import_renewals(self, rows):
        p = os.path.join(self.work, "renewals-%d.csv" % self.rounds)
        with open(p, "w") as f:
            f.write("partner_id,benefit,renewal_date,location_id\n" + "\n".join(rows) + "\n")
        self.must("import-renewals", p)

    def db(self):
        return sqlite3.connect("file:%s/supportmail.db" % self.work, uri=True, timeout=30)

    # ---- one round: new work, the four jobs together, kills ----
    def feed(self):
        # New renewals for activate (an SCS contract per partner and day) and requests for fetch/process.
        partners = self.rng.sample(range(len(PRIMARIES)), 2)
        self.import_renewals(["%d,scs,%s," % (8100001 + i, self.day(self.rounds % 25)) for i in partners])
        for k in range(self.rng.randint(3, 6)):
            access, contract, sender = self.rng.choice(self.contracts)
            mid = "<crash-%s-%d-%d-%d@partner.example>" % (self.name, self.args.seed, self.rounds, k)
            raw = ("From: %s\r\nTo: support@example.test\r\nSubject: cluster down %d\r\n"
                   "Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: %s\r\nMIME-Version: 1.0\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\n\r\nAccess ID: %s\r\n"
                   "Contract ID: %s\r\nProduct: Windows Server 2019\r\nSeverity: B\r\n"
                   "Description: the cluster fails over every hour.\r\n" % (
                       sender, self.rounds, mid, access, contract))
            self.support.append(raw.encode())
            self.requests.append(mid)

    def round(self):
        self.rounds += 1
        self.feed()
        procs = {}
        for j in self.rng.sample(JOBS, len(JOBS)):
            procs[j] = subprocess.Popen(self.cmd(j), env=self.child_env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        # The kill plan: 1-3 victims, each at a random moment in the first 600 ms.
        victims = self.rng.sample(JOBS, self.rng.randint(1, 3))
        moments = sorted((self.rng.uniform(0.0, 0.6), v) for v in victims)
        start = time.monotonic()
        killed = set()
        for at, v in moments:
            delay = start + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if procs[v].poll() is None:
                procs[v].send_signal(signal.SIGKILL)
                killed.add(v)
                self.kills[v] += 1
        for j, p in procs.items():
            try:
                _, err = p.communicate(timeout=ROUND_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                self.problems.append("round %d: %s still running after %d s" % (self.rounds, j, ROUND_TIMEOUT))
                continue
            if j in killed:
                continue
            self.exit_codes.setdefault((j, p.returncode), 0)
            self.exit_codes[(j, p.returncode)] += 1
            if p.returncode not in (0, 73):
                self.problems.append("round %d: %s exited %d: %s" % (self.rounds, j, p.returncode,
                                                                    err.decode(errors="replace").strip()[:300]))
        self.check(final=False)

    # ---- the invariants ----
    def check(self, final):
        db = self.db()
        bad = []
        ok = db.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            bad.append("integrity_check: " + ok)
        for mid, n in db.execute("SELECT message_id, COUNT(*) FROM inbound GROUP BY message_id HAVING COUNT(*) > 1"):
            bad.append("request %s stored %d times" % (mid, n))
        for mid, n in db.execute("SELECT message_id, COUNT(*) FROM outbox GROUP BY message_id HAVING COUNT(*) > 1"):
            bad.append("Message-ID %s queued %d times" % (mid, n))
        # One answer per request: the answers thread to the request (In-Reply-To).
        answers = {}
        for (raw,) in db.execute("SELECT b.bytes FROM outbox o JOIN outbox_bytes b ON b.outbox_id = o.id WHERE o.kind <> 'id_mail'"):
            m = re.search(r"^In-Reply-To:\s*(<[^>]+>)", raw, re.M | re.I)
            if m:
                answers[m.group(1)] = answers.get(m.group(1), 0) + 1
        for mid, n in answers.items():
            if n > 1:
                bad.append("request %s answered %d times" % (mid, n))
        for inc, n in db.execute(
                "SELECT i.id, (SELECT COUNT(*) FROM ledger l WHERE l.entry_key = 'debit:inbound:' || i.inbound_ref) "
                "FROM incidents i"):
            if n != 1:
                bad.append("incident %d debited %d times" % (inc, n))
        for (key,) in db.execute(
                "SELECT entry_key FROM ledger WHERE entry_key LIKE 'debit:inbound:%' AND NOT EXISTS "
                "(SELECT 1 FROM incidents i WHERE 'debit:inbound:' || i.inbound_ref = ledger.entry_key)"):
            bad.append("debit %s without its incident" % key)
        for cid, granted, total, incidents in db.execute(
                "SELECT c.id, c.incidents_granted, (SELECT COALESCE(SUM(delta), 0) FROM ledger l "
                "WHERE l.contract_ref = c.id), (SELECT COUNT(*) FROM incidents i WHERE i.contract_ref = c.id) "
                "FROM contracts c"):
            if total < 0:
                bad.append("contract %d balance %d < 0" % (cid, total))
            if total != granted - incidents:
                bad.append("contract %d: ledger sum %d != granted %d - incidents %d" % (cid, total, granted, incidents))
        if final:
            stored = {r[0] for r in db.execute("SELECT message_id FROM inbound")}
            for mid in self.requests:
                if mid not in stored:
                    bad.append("request %s never stored" % mid)
                elif answers.get(mid, 0) != 1:
                    bad.append("request %s answered %d times" % (mid, answers.get(mid, 0)))
            for what, sql in (("inbound pending", "SELECT COUNT(*) FROM inbound WHERE state = 'pending'"),
                              ("renewals pending", "SELECT COUNT(*) FROM renewals WHERE state = 'pending'"),
                              ("outbox not sent", "SELECT COUNT(*) FROM outbox WHERE state <> 'sent'")):
                n = db.execute(sql).fetchone()[0]
                if n:
                    bad.append("%s after the drain: %d" % (what, n))
        db.close()
        for b in bad:
            self.problems.append(("final: " if final else "round %d: " % self.rounds) + b)
        if bad and not final:
            raise Failure("invariant broken after round %d:\n  %s" % (self.rounds, "\n  ".join(bad)))

    # ---- drain: the jobs one after the other, without kills, until nothing is left ----
    def drain(self):
        for attempt in range(30):
            for j in ("fetch", "activate", "process", "deliver"):
                r = self.run(j)
                if r.returncode not in (0, 73):
                    self.problems.append("drain: %s exited %d: %s" % (j, r.returncode, r.stderr.strip()[:300]))
            db = self.db()
            left = db.execute(
                "SELECT (SELECT COUNT(*) FROM inbound WHERE state = 'pending') + "
                "(SELECT COUNT(*) FROM renewals WHERE state = 'pending') + "
                "(SELECT COUNT(*) FROM outbox WHERE state <> 'sent')").fetchone()[0]
            stored = db.execute("SELECT COUNT(*) FROM inbound").fetchone()[0]
            db.close()
            if left == 0 and stored >= len(self.requests):
                return attempt + 1
            time.sleep(1)  # a retried mail is due again after delivery.retry_initial
        return 30

    # ---- what arrived ----
    def duplicates(self):
        db = self.db()
        queued = {r[0] for r in db.execute("SELECT message_id FROM outbox")}
        db.close()
        seen = {}
        if self.spool:
            tmp = os.listdir(os.path.join(self.work, "spool", "tmp")) if os.path.isdir(
                os.path.join(self.work, "spool", "tmp")) else []
            self.spool_tmp = len(tmp)
            for sub in ("new", "cur"):
                d = os.path.join(self.work, "spool", sub)
                for f in os.listdir(d) if os.path.isdir(d) else []:
                    with open(os.path.join(d, f), "rb") as fh:
                        msg = email.parser.BytesHeaderParser().parse(fh)
                    mid = (msg.get("Message-ID") or "").strip()
                    seen[mid] = seen.get(mid, 0) + 1
        else:
            for u in MAILBOX_USERS:
                m = Imap(self.env, u)
                for mid in m.message_ids():
                    if mid in queued:  # the support INBOX also holds the requests
                        seen[mid] = seen.get(mid, 0) + 1
                m.close()
        missing = [m for m in queued if m not in seen]
        for m in missing:
            self.problems.append("final: %s marked sent but never arrived" % m)
        twice = sum(1 for n in seen.values() if n > 1)
        extra = sum(n - 1 for n in seen.values() if n > 1)
        return len(queued), twice, extra

    def campaign(self):
        self.setup()
        t0 = time.monotonic()
        while sum(self.kills.values()) < self.kills_wanted:
            self.round()
        rounds_time = time.monotonic() - t0
        passes = self.drain()
        self.check(final=True)
        mails, twice, extra = self.duplicates()
        self.support.close()
        return {"kills": sum(self.kills.values()), "by_job": dict(self.kills), "rounds": self.rounds,
                "requests": len(self.requests), "mails": mails, "twice": twice, "extra": extra,
                "drain_passes": passes, "seconds": round(rounds_time, 1),
                "spool_tmp": getattr(self, "spool_tmp", 0)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--kills", type=int, default=int(os.environ.get("CRASH_KILLS", "100")))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("CRASH_SEED", "0")) or random.randrange(1, 10**9))
    ap.add_argument("--keep", action="store_true", help="keep the work directories")
    args = ap.parse_args()
    env = load_env(os.environ["MAIL_ENV_FILE"])
    print("crash harness: seed %d (replay: --seed %d or CRASH_SEED=%d), %d kills" % (
        args.seed, args.seed, args.seed, args.kills), flush=True)
    rng = random.Random(args.seed)
    smtp_kills = (args.kills * 6 + 9) // 10
    results, failed = {}, False
    for name, kills, spool in (("smtp", smtp_kills, False), ("spool", args.kills - smtp_kills, True)):
        c = Campaign(name, args, env, rng, kills, spool)
        try:
            results[name] = c.campaign()
        except Failure as e:
            c.problems.append(str(e))
        codes = ", ".join("%s=%d:%d" % (j, rc, n) for (j, rc), n in sorted(c.exit_codes.items()))
        r = results.get(name)
        if r:
            print("%s: %d kills %s in %d rounds (%.1f s), %d requests, %d mails queued; drained in %d passes; "
                  "received twice: %d mails (%d extra copies)%s; exit codes of the jobs not killed: %s" % (
                      name, r["kills"], r["by_job"], r["rounds"], r["seconds"], r["requests"], r["mails"],
                      r["drain_passes"], r["twice"], r["extra"],
                      ("; files left in spool/tmp: %d" % r["spool_tmp"]) if spool else "", codes), flush=True)
            if spool and r["twice"]:
                c.problems.append("spool: %d mails delivered twice (delivery into the spool must be exactly once)"
                                  % r["twice"])
            if spool and r["spool_tmp"]:
                c.problems.append("spool: %d files left in spool/tmp" % r["spool_tmp"])
        # One line per job for the "database is locked" exits (there can be dozens).
        locked = [p for p in c.problems if "database is locked" in p]
        for j in JOBS:
            n = sum(1 for p in locked if (" %s exited 70" % j) in p)
            if n:
                print("FAIL %s: %s exited 70 \"database is locked\" %d times" % (name, j, n), flush=True)
        others = [p for p in c.problems if p not in locked]
        for p in others[:40]:
            print("FAIL %s: %s" % (name, p), flush=True)
        if len(others) > 40:
            print("FAIL %s: ... and %d more" % (name, len(others) - 40))
        failed = failed or bool(c.problems)
        if not args.keep and not c.problems:
            shutil.rmtree(c.work, ignore_errors=True)
        else:
            print("%s: work directory kept: %s" % (name, c.work))
    total = sum(r["kills"] for r in results.values())
    print("crash harness: seed %d, %d kills, %d rounds, %d requests, %d mails; twice over SMTP: %s, "
          "twice into the spool: %s: %s" % (
              args.seed, total, sum(r["rounds"] for r in results.values()),
              sum(r["requests"] for r in results.values()), sum(r["mails"] for r in results.values()),
              results.get("smtp", {}).get("twice", "?"), results.get("spool", {}).get("twice", "?"),
              "FAILED" if failed else "ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
