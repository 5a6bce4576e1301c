#!/usr/bin/env python3
"""Time one full-mailbox header FETCH against the test Dovecot.

The result is a floor for Wardmail's first sync of a folder: the time a plain
Python client needs to receive the UID, flags, INTERNALDATE, size, MODSEQ and
list-view header fields of every message in one UID FETCH 1:* over implicit
TLS: the same items Wardmail's sync fetches.

Reads the server settings from the WARDMAIL_TEST_* variables, so source the env
file first:

    source DIR/env && bench/imap-floor.py --user bench@example.org

Prints {"seconds": ..., "messages": ...} as JSON on stdout. The time covers
sending the command, Dovecot's work and imaplib reading and splitting the whole
response; it excludes connecting, login and SELECT. Uses only the standard
library (imaplib, ssl).
"""

import argparse
import imaplib
import json
import os
import re
import ssl
import sys
import time

# The items Wardmail's sync fetches (src/imap.rs, fetch_envelopes), so that the
# floor does the same server-side work.
FETCH_ITEMS = (
    "(UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ BODY.PEEK[HEADER.FIELDS "
    "(DATE FROM TO CC SUBJECT MESSAGE-ID IN-REPLY-TO CONTENT-TYPE)])"
)
REQUIRED_VARIABLES = (
    "WARDMAIL_TEST_HOST",
    "WARDMAIL_TEST_IMAP_TLS_PORT",
    "WARDMAIL_TEST_CA",
    "WARDMAIL_TEST_PASSWORD",
)
# A FETCH response line starts with the message sequence number. The parts that
# imaplib splits off after a literal start with a space or ")", never a digit.
FETCH_RESPONSE_START = re.compile(rb"^\d+ \(")


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--user", required=True, help="IMAP user name, e.g. bench@example.org")
    parser.add_argument("--mailbox", default="Bench", help="mailbox to fetch (default: Bench)")
    parser.add_argument("--items", default=FETCH_ITEMS, help=f"FETCH items (default: {FETCH_ITEMS})")
    return parser.parse_args()


def read_settings():
    missing = [name for name in REQUIRED_VARIABLES if name not in os.environ]
    if missing:
        sys.exit(f"imap-floor: error: {', '.join(missing)} not set; run `source DIR/env` first")
    return {name: os.environ[name] for name in REQUIRED_VARIABLES}


def count_fetch_responses(data):
    """Return the number of FETCH responses in imaplib's list of response parts."""
    count = 0
    for part in data:
        first_line = part[0] if isinstance(part, tuple) else part
        if first_line is not None and FETCH_RESPONSE_START.match(first_line):
            count += 1
    return count


def main():
    arguments = parse_arguments()
    settings = read_settings()

    context = ssl.create_default_context(cafile=settings["WARDMAIL_TEST_CA"])
    connection = imaplib.IMAP4_SSL(
        settings["WARDMAIL_TEST_HOST"],
        int(settings["WARDMAIL_TEST_IMAP_TLS_PORT"]),
        ssl_context=context,
    )
    try:
        connection.login(arguments.user, settings["WARDMAIL_TEST_PASSWORD"])
        status, data = connection.select(arguments.mailbox, readonly=True)
        if status != "OK":
            sys.exit(f"imap-floor: error: SELECT {arguments.mailbox} failed: {data!r}")
        exists = int(data[0])

        started = time.perf_counter()
        status, data = connection.uid("FETCH", "1:*", arguments.items)
        seconds = time.perf_counter() - started
        if status != "OK":
            sys.exit(f"imap-floor: error: UID FETCH failed: {data!r}")

        messages = count_fetch_responses(data) if exists else 0
        if messages != exists:
            print(f"imap-floor: warning: expected {exists} FETCH responses (EXISTS), received {messages}", file=sys.stderr)
        print(json.dumps({"seconds": round(seconds, 3), "messages": messages}))
    finally:
        connection.logout()


if __name__ == "__main__":
    main()
