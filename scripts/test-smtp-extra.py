#!/usr/bin/python3
"""SMTP test servers that Postfix cannot play, started by scripts/test-servers.

    test-smtp-extra.py CERT KEY SUBMISSION_ADDRESS:PORT SILENT_ADDRESS:PORT

SUBMISSION: an aiosmtpd server with STARTTLS that advertises REQUIRETLS (RFC 8689)
in its EHLO reply once TLS is active. It accepts no mail (every RCPT is rejected),
because the tests only read its capabilities.

SILENT: accepts TCP connections and never sends a byte, like a port 25 that a
firewall swallows, so probes run into their timeout.

Runs in the foreground until SIGTERM.
"""

import asyncio
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP


class RequireTlsHandler:
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if session.ssl is not None:
            # The last line ("250 HELP") must stay last.
            responses.insert(len(responses) - 1, "250-REQUIRETLS")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "550 5.7.1 this test server accepts no mail"


def split(address_port):
    address, _, port = address_port.rpartition(":")
    return address, int(port)


async def silent(reader, writer):
    # Keep the connection open without answering until the client gives up.
    await reader.read()
    writer.close()


async def main():
    cert, key, submission, silent_at = sys.argv[1:5]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    loop = asyncio.get_running_loop()
    handler = RequireTlsHandler()
    host, port = split(submission)
    submission_server = await loop.create_server(
        lambda: SMTP(handler, hostname="localhost", tls_context=context), host, port
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
