#!/usr/bin/env python3
"""A fault proxy for tests (issue 9, item 6): listens on 127.0.0.1:PORT, relays to the
real Postfix or Dovecot at 127.0.0.1:UPSTREAM, and breaks the conversation on purpose.

usage: fault_proxy.py --listen PORT --upstream PORT --fault FAULT [options]

faults:
  pass              relay untouched (with --cert: TLS ends here, a bad certificate)
  silent            accept, read, never answer
  reply             SMTP: answer --reply in place of the server when the client's line
                    starts with --at (MAIL FROM, RCPT TO, DATA; "." = the end of DATA);
                    a 421 closes the connection as a server would
  cut-data          SMTP: close both sides after --bytes bytes of the message in DATA
  silent-after-dot  SMTP: the final "." of DATA is held back and never answered
  cut-literal       IMAP: close both sides half way through the first FETCH literal
                    of more than --bytes bytes
  delete-mailbox    IMAP: when the client's line holds --at (e.g. "FETCH"), delete
                    --mailbox over a connection of its own (--user, --password), then relay;
                    --skip N lets the first N such lines pass

--only N: the fault hits only the Nth connection accepted (1 = the first); the others
are relayed untouched (one of several connections cut, the rest healthy).

--cert/--key: the client side speaks TLS (implicit TLS, as smtps/imaps) with this
certificate; the upstream side stays plain. Prints "ready" once listening.
Runs until killed.
"""
import argparse
import asyncio
import imaplib
import re
import ssl
import sys


def parse():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--upstream", type=int, required=True)
    ap.add_argument("--fault", required=True,
                    choices=["pass", "silent", "reply", "cut-data", "silent-after-dot", "cut-literal",
                             "delete-mailbox"])
    ap.add_argument("--at", default="")
    ap.add_argument("--reply", default="")
    ap.add_argument("--bytes", type=int, default=200)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--only", type=int, default=0, help="fault only the Nth connection accepted; relay the others")
    ap.add_argument("--skip", type=int, default=0, help="delete-mailbox: let this many matching lines pass first")
    ap.add_argument("--mailbox", default="")
    ap.add_argument("--user", default="")
    ap.add_argument("--password", default="")
    return ap.parse_args()


A = parse()
accepted = 0  # connections accepted so far (--only)


def abort(*writers):
    for w in writers:
        if w is not None:
            w.transport.abort()


async def hold(reader):
    """Read and discard until the client goes away: a server that never answers."""
    while await reader.read(65536):
        pass


async def handle(creader, cwriter):
    global accepted
    accepted += 1
    fault = A.fault if A.only in (0, accepted) else "pass"
    if fault == "silent":
        await hold(creader)
        cwriter.close()
        return
    try:
        ureader, uwriter = await asyncio.open_connection("127.0.0.1", A.upstream, limit=1 << 24)
    except OSError:
        abort(cwriter)
        return
    state = {"data": False, "cut": False, "local": False, "held": False}

    async def server_to_client():
        while True:
            line = await ureader.readline()
            if not line:
                break
            if fault == "cut-literal" and not state["cut"]:
                m = re.search(rb"FETCH .*\{(\d+)\}\r\n$", line)
                if m and int(m.group(1)) > A.bytes:
                    half = int(m.group(1)) // 2
                    body = await ureader.readexactly(half)
                    cwriter.write(line + body)
                    await cwriter.drain()
                    state["cut"] = True
                    abort(cwriter, uwriter)
                    return
            if line.startswith(b"354"):
                state["data"] = True
            if state["local"]:
                continue  # the proxy answers now; late server lines are dropped
            cwriter.write(line)
            await cwriter.drain()
        if not state["local"] and not state["held"]:
            cwriter.close()

    async def client_to_server():
        sent = 0
        while True:
            line = await creader.readline()
            if not line:
                break
            if state["local"]:
                # After a reply injected at the end of DATA the server's side is gone:
                # the proxy answers what a server would, and refuses any new mail.
                cmd = line.strip().upper()
                if cmd == b"QUIT":
                    cwriter.write(b"221 2.0.0 Bye\r\n")
                    await cwriter.drain()
                    break
                if cmd in (b"RSET", b"NOOP"):
                    cwriter.write(b"250 2.0.0 Ok\r\n")
                    await cwriter.drain()
                    continue
                cwriter.write(b"421 4.3.0 fault proxy: closing\r\n")
                await cwriter.drain()
                break
            if state["held"]:
                continue
            if state["data"]:
                if line == b".\r\n":
                    state["data"] = False
                    if fault == "silent-after-dot":
                        state["held"] = True
                        continue
                    if fault == "reply" and A.at == ".":
                        state["local"] = True
                        abort(uwriter)
                        cwriter.write(A.reply.encode() + b"\r\n")
                        await cwriter.drain()
                        if A.reply.startswith("421"):
                            break
                        continue
                elif fault == "cut-data":
                    sent += len(line)
                    if sent > A.bytes:
                        uwriter.write(line)
                        abort(cwriter, uwriter)
                        return
            elif fault == "reply" and A.at != "." and line.upper().startswith(A.at.upper().encode()):
                cwriter.write(A.reply.encode() + b"\r\n")
                await cwriter.drain()
                if A.reply.startswith("421"):
                    break
                continue
            elif fault == "delete-mailbox" and A.at.encode().upper() in line.upper() and not state["cut"]:
                state["seen"] = state.get("seen", 0) + 1
                if state["seen"] <= A.skip:
                    uwriter.write(line)
                    await uwriter.drain()
                    continue
                state["cut"] = True
                await asyncio.get_running_loop().run_in_executor(None, delete_mailbox)
            uwriter.write(line)
            await uwriter.drain()
        abort(uwriter)
        cwriter.close()

    tasks = [asyncio.ensure_future(server_to_client()), asyncio.ensure_future(client_to_server())]
    try:
        await asyncio.gather(*tasks)
    except (ConnectionError, asyncio.IncompleteReadError, OSError):
        pass
    finally:
        for t in tasks:
            t.cancel()
        if state["held"]:
            await hold(creader)


def delete_mailbox():
    c = imaplib.IMAP4("127.0.0.1", A.upstream)
    c.login(A.user, A.password)
    typ, data = c.delete(A.mailbox)
    print("deleted %s: %s %s" % (A.mailbox, typ, data), flush=True)
    c.logout()


async def main():
    ctx = None
    if A.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(A.cert, A.key)
    server = await asyncio.start_server(handle, "127.0.0.1", A.listen, ssl=ctx, limit=1 << 24)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
