#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The test SMTP server (aiosmtpd), started by servers.SmtpServer as
    /usr/bin/python3 smtp_server.py WORKDIR/smtp/config.json
config.json: host, port, smtps_port (0 = pick a free one), cert, key, users {login: password},
mail_dir, ports_file, auth_require_tls, auth_required, require_starttls.

Listens with STARTTLS on `port` and with implicit TLS on `smtps_port`; once both listen it
writes {"port", "smtps_port"} to ports_file (atomically) — that is the readiness signal.
Each accepted message goes to mail_dir/<stem>.eml (as received) + <stem>.json (envelope).
Recipients whose local part starts with "bounce" are refused with 550."""
import asyncio
import itertools
import json
import logging
import os
import signal
import ssl
import sys
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def write_atomically(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


class Handler:
    def __init__(self, mail_dir):
        self.mail_dir = mail_dir
        self.counter = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@", 1)[0].lower().startswith("bounce"):
            return "550 5.1.1 <%s>: mailbox unavailable (test bounce)" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        stem = f"{time.time_ns()}-{next(self.counter):05d}"
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "auth_user": session.auth_data if session.authenticated else None,
            "tls": bool(session.ssl) or server.transport.get_extra_info("sslcontext")
            is not None,
            "peer": list(session.peer) if session.peer else None,
            "port": server.transport.get_extra_info("sockname")[1],
            "mail_options": list(envelope.mail_options),
        }
        # the .json first: a reader polls for .eml and then reads both
        write_atomically(os.path.join(self.mail_dir, stem + ".json"),
                         json.dumps(meta, indent=1).encode())
        write_atomically(os.path.join(self.mail_dir, stem + ".eml"), envelope.original_content)
        logging.info("stored %s from %s to %s", stem, envelope.mail_from, envelope.rcpt_tos)
        return f"250 2.0.0 OK queued as {stem}"


def make_authenticator(users):
    def authenticator(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        ok = login in users and users[login] == password
        logging.info("AUTH %s %s: %s", mechanism, login, "ok" if ok else "refused")
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)
    return authenticator


async def main(config_path):
    with open(config_path) as f:
        config = json.load(f)
    loop = asyncio.get_running_loop()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(config["cert"], config["key"])
    handler = Handler(config["mail_dir"])
    authenticator = make_authenticator(config["users"])
    common = dict(hostname="localhost", enable_SMTPUTF8=True, authenticator=authenticator,
                  auth_required=config["auth_required"], loop=loop)

    def starttls_factory():
        return SMTP(handler, tls_context=tls, require_starttls=config["require_starttls"],
                    auth_require_tls=config["auth_require_tls"], **common)

    def smtps_factory():
        # already encrypted: aiosmtpd only knows STARTTLS, so do not make it demand that
        return SMTP(handler, auth_require_tls=False, **common)

    plain = await loop.create_server(starttls_factory, config["host"], config["port"])
    smtps = await loop.create_server(smtps_factory, config["host"], config["smtps_port"],
                                     ssl=tls)
    ports = {"port": plain.sockets[0].getsockname()[1],
             "smtps_port": smtps.sockets[0].getsockname()[1]}
    write_atomically(config["ports_file"], json.dumps(ports).encode())
    logging.info("listening: %s", ports)

    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    await stop
    plain.close()
    smtps.close()
    logging.info("stopped")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(main(sys.argv[1]))
