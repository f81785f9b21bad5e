"""A real SMTP server on 127.0.0.1 (aiosmtpd) for the alert tests, and the Airflow settings that
send the project's alerts to it through Airflow's SMTP notifier."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Generator
from contextlib import contextmanager
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tools.airflow_services import free_port

RECIPIENT, SENDER = "oncall@example.com", "airflow@example.com"


class Inbox:
    """aiosmtpd handler: keeps every message received, in order."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.port = 0

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's hook name)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 OK"

    @property
    def subjects(self) -> list[str]:
        return [message["Subject"] for message in self.messages]

    def settings(self) -> dict[str, str]:
        """The environment that turns the alerts on, sending mail here."""
        return {
            "AIRFLOW_VAR_SPARKIFY_ALERTS": json.dumps({"to": RECIPIENT, "from_email": SENDER}),
            "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps({
                "conn_type": "smtp", "host": "127.0.0.1", "port": self.port,
                "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 10, "retry_limit": 1},
            }),
        }


def body(message: EmailMessage) -> str:
    return message.get_body(("html",)).get_content()


@contextmanager
def smtp_server() -> Generator[Inbox, None, None]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.port = controller.port
    try:
        yield inbox
    finally:
        controller.stop()
