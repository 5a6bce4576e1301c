#!/usr/bin/python3
"""SMTP test servers that Postfix cannot play, started by scripts/test-servers.

    test-smtp-extra.py CERT KEY SUBMISSION_ADDRESS:PORT SILENT_ADDRESS:PORT SPOOL PASSWORD

SUBMISSION: an aiosmtpd server with STARTTLS that advertises REQUIRETLS (RFC 8689)
in its EHLO reply once TLS is active. After AUTH with PASSWORD (any user name) it
accepts mail and writes each message to SPOOL/N.eml, where N counts from 1. The
file starts with a "X-Test-Requiretls: yes" or "no" line that records whether MAIL
FROM carried the REQUIRETLS parameter, then the envelope recipients as
"X-Test-Rcpt:" lines, then the message as received.

SILENT: accepts TCP connections and never sends a byte, like a port 25 that a
firewall swallows, so probes run into their timeout.

Runs in the foreground until SIGTERM.
"""

import asyncio
import os
import re
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

REQUIRETLS = re.compile(r"\s+REQUIRETLS\b", re.IGNORECASE)


class RequireTlsSmtp(SMTP):
    """Accepts the REQUIRETLS MAIL parameter, which aiosmtpd does not know."""

    async def smtp_MAIL(self, arg):
        requested = bool(arg and REQUIRETLS.search(arg))
        if requested:
            arg = REQUIRETLS.sub("", arg)
        self.requiretls = requested
        await super().smtp_MAIL(arg)


class RequireTlsHandler:
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if session.ssl is not None:
            # The last line ("250 HELP") must stay last.
            responses.insert(len(responses) - 1, "250-REQUIRETLS")
        return responses

    def __init__(self, spool):
        self.spool = spool
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        flag = "yes" if getattr(server, "requiretls", False) else "no"
        lines = [f"X-Test-Requiretls: {flag}"]
        lines += [f"X-Test-Rcpt: {rcpt}" for rcpt in envelope.rcpt_tos]
        head = ("\r\n".join(lines) + "\r\n").encode()
        with open(os.path.join(self.spool, f"{self.count}.eml"), "wb") as file:
            file.write(head + envelope.original_content)
        return "250 2.0.0 stored"


def authenticator(password):
    def check(server, session, envelope, mechanism, auth_data):
        accepted = isinstance(auth_data, LoginPassword) and auth_data.password == password
        return AuthResult(success=accepted)

    return check


def split(address_port):
    address, _, port = address_port.rpartition(":")
    return address, int(port)


async def silent(reader, writer):
    # Keep the connection open without replying until the client gives up.
    await reader.read()
    writer.close()


async def main():
    cert, key, submission, silent_at, spool, password = sys.argv[1:7]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    loop = asyncio.get_running_loop()
    handler = RequireTlsHandler(spool)
    check = authenticator(password.encode())
    host, port = split(submission)
    submission_server = await loop.create_server(
        lambda: RequireTlsSmtp(
            handler,
            hostname="localhost",
            tls_context=context,
            authenticator=check,
            auth_require_tls=True,
        ),
        host,
        port,
    )
    host, port = split(silent_at)
    silent_server = await asyncio.start_server(silent, host, port)

    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(f"listening on {submission} (REQUIRETLS) and {silent_at} (silent)", flush=True)
    await stop.wait()
    submission_server.close()
    silent_server.close()


if __name__ == "__main__":
    asyncio.run(main())
