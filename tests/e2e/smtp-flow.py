#!/usr/bin/env python3
"""Known SMTP traffic for the log families' end-to-end test (tests/e2e.rs).

Usage: smtp-flow.py
Talks to the services tests/e2e/flow-setup.sh adds, all on 127.0.0.1, from
127.0.0.1 and the other loopback addresses named below. Every reply is
checked: on anything unexpected it exits 1 and says which session and what
came back. Prints one line per session. Each session is what the test's
expected counts are made of, so a change here is a change there.

Sessions (port 10025 is postfix/flow, 10587 postfix/submission, 10043
postscreen in front of postfix/smtpd; see flow-setup.sh):
  connect        from 127.0.0.3: 554 instead of the greeting (client map)
  helo           EHLO bad!helo: 501 (reject_invalid_helo_hostname)
  sender         MAIL FROM:<nosuchsender@localhost>: 550 (reject_unlisted_sender)
  relay          from 127.0.0.2, RCPT TO:<someone@elsewhere.test>: 554
  recipients     RCPT root@localhost (250: the queue file is made), then
                 nosuchuser@localhost 550, policy@localhost 554 (policy server),
                 greylist@localhost 450 (policy server); DATA: accepted
  data           from 127.0.0.5, RCPT root@localhost 250, DATA: 554
  end-of-data    MAIL FROM:<eod@sender.test>, the message: 554 at its end
  header-reject  Subject: pfdtest-reject: 550 from cleanup's header_checks
  header-hold    Subject: pfdtest-hold: accepted, and put on hold
  lost           EHLO, then the connection is closed
  timeout        EHLO, then silence past smtpd_timeout (2 s): 421
  starttls       EHLO, STARTTLS, EHLO, QUIT
  auth-failure   submission: AUTH PLAIN with a wrong password: 535
  submission     submission: AUTH PLAIN as pfduser, one message accepted
  pregreet       postscreen, from 127.0.0.7: talks before the greeting: dropped
  pass-new       postscreen, from 127.0.0.1: waits, passes, one message accepted
  pass-old       postscreen, from 127.0.0.1 again: passes from the cache, QUIT
"""
import smtplib
import socket
import ssl
import sys
import time

HOST = "127.0.0.1"
FLOW, SUBMISSION, POSTSCREEN = 10025, 10587, 10043
BODY = "Subject: {subject}\r\n\r\nfrom tests/e2e/smtp-flow.py\r\n"


def fail(session, what):
    print(f"smtp-flow.py: {session}: {what}", file=sys.stderr)
    sys.exit(1)


def expect(session, got, code):
    if got[0] != code:
        fail(session, f"expected {code}, got {got[0]} {got[1]!r}")


def client(port, source="127.0.0.1", session=""):
    try:
        return smtplib.SMTP(HOST, port, source_address=(source, 0), timeout=30)
    except (OSError, smtplib.SMTPException) as e:
        fail(session, f"connect from {source} to {port}: {e}")


def greeted(session, source="127.0.0.1", port=FLOW):
    """A client past a good EHLO."""
    s = client(port, source, session)
    expect(session, s.ehlo("client.test"), 250)
    return s


def message(s, session, sender, subject, final=250):
    expect(session, s.mail(sender), 250)
    expect(session, s.rcpt("root@localhost"), 250)
    expect(session, s.data(BODY.format(subject=subject).encode()), final)


def connect_reject():
    sock = socket.socket()
    sock.bind(("127.0.0.3", 0))
    sock.connect((HOST, FLOW))
    reply = sock.recv(512)
    if not reply.startswith(b"554 "):
        fail("connect", f"expected 554, got {reply!r}")
    sock.sendall(b"QUIT\r\n")
    sock.recv(512)
    sock.close()


def helo():
    s = client(FLOW, session="helo")
    expect("helo", s.ehlo("bad!helo"), 501)
    s.quit()


def sender():
    s = greeted("sender")
    expect("sender", s.mail("nosuchsender@localhost"), 550)
    s.quit()


def relay():
    s = greeted("relay", "127.0.0.2")
    expect("relay", s.mail("a@sender.test"), 250)
    expect("relay", s.rcpt("someone@elsewhere.test"), 554)
    s.quit()


def recipients():
    s = greeted("recipients")
    expect("recipients", s.mail("a@sender.test"), 250)
    expect("recipients", s.rcpt("root@localhost"), 250)
    expect("recipients", s.rcpt("nosuchuser@localhost"), 550)
    expect("recipients", s.rcpt("policy@localhost"), 554)
    expect("recipients", s.rcpt("greylist@localhost"), 450)
    expect("recipients", s.data(BODY.format(subject="pfdtest flow").encode()), 250)
    s.quit()


def data():
    s = greeted("data", "127.0.0.5")
    expect("data", s.mail("a@sender.test"), 250)
    expect("data", s.rcpt("root@localhost"), 250)
    expect("data", s.docmd("DATA"), 554)
    s.quit()


def end_of_data():
    s = greeted("end-of-data")
    message(s, "end-of-data", "eod@sender.test", "pfdtest eod", final=554)
    s.quit()


def header(subject, final, session):
    s = greeted(session)
    message(s, session, "a@sender.test", subject, final=final)
    s.quit()


def lost():
    s = greeted("lost")
    s.close()


def timeout():
    s = greeted("timeout")
    time.sleep(4)
    try:
        code, _ = s.getreply()
    except smtplib.SMTPServerDisconnected:
        fail("timeout", "closed without the 421")
    if code != 421:
        fail("timeout", f"expected 421, got {code}")
    s.close()


def starttls():
    s = greeted("starttls")
    # The snakeoil certificate is self-signed: no verification, as an opportunistic client.
    expect("starttls", s.starttls(context=ssl._create_unverified_context()), 220)
    expect("starttls", s.ehlo("client.test"), 250)
    s.quit()


def auth(password, session):
    s = greeted(session, port=SUBMISSION)
    s.user, s.password = "pfduser", password
    # One mechanism, one attempt (login() would try every advertised one).
    try:
        got = s.auth("PLAIN", s.auth_plain)
    except smtplib.SMTPAuthenticationError as e:
        got = (e.smtp_code, e.smtp_error)
    return s, got


def auth_failure():
    s, got = auth("wrong", "auth-failure")
    expect("auth-failure", got, 535)
    s.quit()


def submission():
    s, got = auth("pfdtest-secret", "submission")
    expect("submission", got, 235)
    message(s, "submission", "pfduser@localhost", "pfdtest submission")
    s.quit()


def pregreet():
    sock = socket.socket()
    sock.bind(("127.0.0.7", 0))
    sock.connect((HOST, POSTSCREEN))
    sock.sendall(b"EHLO pregreet.test\r\n")
    sock.settimeout(30)
    got = b""
    try:
        while chunk := sock.recv(512):
            got += chunk
    except ConnectionResetError:
        pass  # dropped while our EHLO was still unread
    sock.close()
    # The teaser "220-" at most, never the full greeting.
    if b"220 " in got:
        fail("pregreet", f"expected to be dropped, got {got!r}")


def pass_new():
    s = greeted("pass-new", port=POSTSCREEN)
    message(s, "pass-new", "a@sender.test", "pfdtest postscreen")
    s.quit()


def pass_old():
    s = greeted("pass-old", port=POSTSCREEN)
    s.quit()


SESSIONS = [
    ("connect", connect_reject),
    ("helo", helo),
    ("sender", sender),
    ("relay", relay),
    ("recipients", recipients),
    ("data", data),
    ("end-of-data", end_of_data),
    ("header-reject", lambda: header("pfdtest-reject", 550, "header-reject")),
    ("header-hold", lambda: header("pfdtest-hold", 250, "header-hold")),
    ("lost", lost),
    ("timeout", timeout),
    ("starttls", starttls),
    ("auth-failure", auth_failure),
    ("submission", submission),
    ("pregreet", pregreet),
    ("pass-new", pass_new),
    ("pass-old", pass_old),
]

if __name__ == "__main__":
    for name, run in SESSIONS:
        run()
        print(f"ok {name}")
