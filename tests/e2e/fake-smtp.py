#!/usr/bin/env python3
"""Tiny misbehaving SMTP server for the e2e tests, loopback only.

Usage: fake-smtp.py PORT MODE
MODE is one of
  silent                accept the connection and never say anything (timeouts)
  hangup                close the connection at once, before any greeting
  banner-hangup         send a 220 greeting, then close (lost connection)
  banner:<reply>        answer the greeting with <reply>, e.g. "421 4.7.0 Too busy"
  rcpt:<reply>          behave until RCPT TO, answer it with <reply>, e.g.
                        "450 4.2.0 <x@y>: Recipient address rejected: Greylisted"
  data:<reply>          behave until DATA, answer it with <reply>
Binds 127.0.0.1 only. Runs until killed. Python 3.11+ has no smtpd module any
more, hence this script.
"""
import socketserver
import sys
import time


class Handler(socketserver.StreamRequestHandler):
    def say(self, line):
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        mode = self.server.mode
        if mode == "silent":
            time.sleep(3600)
            return
        if mode == "hangup":
            return
        if mode.startswith("banner:"):
            self.say(mode.split(":", 1)[1])
            return
        self.say("220 fake.test ESMTP fake-smtp.py")
        if mode == "banner-hangup":
            return
        stage, _, reply = mode.partition(":")
        for raw in self.rfile:
            cmd = raw.decode(errors="replace").strip().upper()
            if cmd.startswith(("EHLO", "HELO")):
                self.say("250 fake.test")
            elif cmd.startswith("MAIL"):
                self.say("250 2.1.0 Ok")
            elif cmd.startswith("RCPT"):
                self.say(reply if stage == "rcpt" else "250 2.1.5 Ok")
            elif cmd.startswith("DATA"):
                # Never accept a message: this server must not swallow mail.
                self.say(reply if stage == "data" else "451 4.3.0 fake-smtp.py accepts nothing")
            elif cmd.startswith("QUIT"):
                self.say("221 2.0.0 Bye")
                return
            else:
                self.say("250 2.0.0 Ok")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    srv = Server(("127.0.0.1", int(sys.argv[1])), Handler)
    srv.mode = sys.argv[2]
    srv.serve_forever()


if __name__ == "__main__":
    main()
