#!/usr/bin/env python3
"""The reference bench_ingest compares supportmail with: the same job written as a
competent developer would in plain Python (standard library only), on the same
Maildir and a copy of the same database (same schema, WAL, synchronous=FULL).

For every mail in MAILDIR/new: store it raw (with its SHA-256 and Message-ID),
parse it with the email package (its fast compat32 API, as the modern
EmailMessage API is several times slower on headers), read the labelled fields, check the Access ID /
Contract ID pair, the expiry and the balance; accepted: an incident with its case
number, a ledger debit keyed by the mail, the thread entries; then render the
answer (text and HTML from string.Template) and queue it composed (EmailMessage,
threaded) in the outbox. A commit every 100 mails; each committed group's files
are moved to cur/ (seen) after the commit, as `fetch` marks them.

usage: ingest_reference.py DATABASE MAILDIR   prints "reference: N mails in S s"
"""
import email, email.header, email.utils, hashlib, html, os, re, sqlite3, sys, time
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from string import Template

FIELDS = re.compile(r"^\s*(Access ID|Contract ID|Product|Severity|Description)\s*:\s*(.*?)\s*$", re.I | re.M)
PRODUCTS = {"sql server": "SQL Server", "windows server 2019": "Windows Server 2019", "exchange server": "Exchange Server"}
TEXT = {"accepted": Template("Hello $name,\n\nyour request is case $case (severity $severity) on $contract.\n"
                             "We answer within $hours business hours. Incidents left: $left.\n\n$support\n"),
        "refused": Template("Hello $name,\n\nwe could not open a case: $reason\nNothing was deducted.\n\n$support\n")}
HTML = Template("<html><body><p>Hello $name,</p><p>$line</p><p>$support</p></body></html>")


def main(db_path, maildir):
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    names = sorted(os.listdir(os.path.join(maildir, "new")))
    start = time.monotonic()
    for group in range(0, len(names), 100):
        batch = names[group:group + 100]
        db.execute("BEGIN IMMEDIATE")
        for name in batch:
            handle(db, maildir, name)
        db.execute("COMMIT")
        for name in batch:
            os.rename(os.path.join(maildir, "new", name), os.path.join(maildir, "cur", name + ":2,S"))
    print(f"reference: {len(names)} mails in {time.monotonic() - start:.3f} s")


def handle(db, maildir, name):
    with open(os.path.join(maildir, "new", name), "rb") as f:
        raw = f.read()
    now = int(time.time())
    msg = email.message_from_bytes(raw)
    message_id = msg.get("Message-ID", "").strip()
    inbound = db.execute("INSERT INTO inbound (source, source_key, message_id, sha256, size, fetched_at) "
                         "VALUES (?, ?, ?, ?, ?, ?)", ("maildir:" + maildir, name, message_id,
                                                       hashlib.sha256(raw).hexdigest(), len(raw), now)).lastrowid
    db.execute("INSERT INTO inbound_raw (inbound_id, raw) VALUES (?, ?)", (inbound, raw))
    sender_name, sender = email.utils.parseaddr(msg.get("From", ""))
    sender_name = str(email.header.make_header(email.header.decode_header(sender_name)))
    sender = sender.lower()
    subject = str(email.header.make_header(email.header.decode_header(msg.get("Subject", ""))))
    text = ""
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            text = part.get_payload(decode=True).decode(part.get_content_charset() or "us-ascii", "replace")
            break
    fields = {k.lower(): v for k, v in FIELDS.findall(text)}
    row = db.execute("SELECT id, display_name, expires_on FROM contracts WHERE access_id = ? AND contract_id = ?",
                     (fields.get("access id", ""), fields.get("contract id", "").upper())).fetchone()
    product = PRODUCTS.get(fields.get("product", "").lower())
    severity = fields.get("severity", "").upper()
    reason = None
    if row is None:
        reason = "the Access ID and Contract ID do not match a contract"
    elif row[2] < time.strftime("%Y-%m-%d"):
        reason = "the contract has expired"
    elif product is None or severity not in ("A", "B", "C"):
        reason = "the product or the severity is missing"
    else:
        balance = db.execute("SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE contract_ref = ?", (row[0],)).fetchone()[0]
        if balance < 1:
            reason = "no incidents left"
    words = dict(name=sender_name or "", support="support@example.test")
    if reason is None:
        incident = db.execute("INSERT INTO incidents (contract_ref, inbound_ref, requester_email, product, severity, "
                              "description, response_hours, due_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              (row[0], inbound, sender, product, severity, fields.get("description", ""), 8,
                               now + 8 * 3600, now)).lastrowid
        case = f"SR-{time.strftime('%Y')}-{incident:06d}"
        db.execute("UPDATE incidents SET case_number = ? WHERE id = ?", (case, incident))
        db.execute("INSERT INTO ledger (contract_ref, delta, reason, entry_key, created_at) VALUES (?, -1, ?, ?, ?)",
                   (row[0], "incident " + case, f"debit:inbound:{inbound}", now))
        db.execute("INSERT INTO case_messages (incident_ref, direction, message_id, inbound_ref, created_at) "
                   "VALUES (?, 'in', ?, ?, ?)", (incident, message_id, inbound, now))
        words.update(case=case, severity=severity, contract=row[1], hours=8, left=balance - 1)
        kind, title, text = "reply:accepted", f"[{case}] {subject}", TEXT["accepted"].substitute(words)
    else:
        kind, title, text = "reply:refused", f"Re: {subject}", TEXT["refused"].substitute(words, reason=reason)
    escaped = {k: html.escape(str(v)) for k, v in words.items()}
    answer = MIMEMultipart("alternative")
    answer["From"] = "Partner Support <support@example.test>"
    answer["To"] = email.utils.formataddr((str(email.header.Header(sender_name, "utf-8")), sender))
    answer["Subject"] = email.header.Header(title, "utf-8")
    answer["Date"] = email.utils.formatdate(now)
    answer["Message-ID"] = answer_id = email.utils.make_msgid(domain="support.example.test")
    answer["In-Reply-To"] = message_id
    answer["References"] = message_id
    answer["Auto-Submitted"] = "auto-replied"
    answer.attach(MIMEText(text, "plain", "utf-8"))
    answer.attach(MIMEText(HTML.substitute(escaped, line=html.escape(text.split("\n\n")[1])), "html", "utf-8"))
    queued = db.execute("INSERT INTO outbox (message_id, kind, envelope_from, recipients, next_attempt_at, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)", (answer_id, kind, "support@example.test", sender, now, now)).lastrowid
    db.execute("INSERT INTO outbox_bytes (outbox_id, bytes) VALUES (?, ?)",
               (queued, answer.as_bytes().decode("ascii", "replace")))
    if reason is None:
        db.execute("INSERT INTO case_messages (incident_ref, direction, message_id, created_at) VALUES (?, 'out', ?, ?)",
                   (incident, answer_id, now))
    db.execute("UPDATE inbound SET state = 'done', classification = 'request', sender = ?, processed_at = ? "
               "WHERE id = ?", (sender, now, inbound))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
