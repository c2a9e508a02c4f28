"""The password-reset mail: sent through ``SMTP_URL``, or logged when none is configured
(the original's "dev mode").

``smtp://[user:pass@]host[:port]`` talks plain SMTP (port 25 by default);
``smtps://...`` uses implicit TLS (port 465 by default). smtplib blocks, so the exchange
with the server runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import html
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from excentra.http.config import RESET_TOKEN_TTL, Settings
from excentra.http.errors import ApiError

log = logging.getLogger("excentra.mail")

SUBJECT = "Reset your Excentra password"
SMTP_TIMEOUT = 10.0
"""Seconds to wait for the mail server before answering 500."""


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None


def parse_smtp_url(url: str) -> SmtpTarget:
    """``smtp://`` / ``smtps://`` URL → where and how to connect.

    Raises:
        ValueError: another scheme or no host.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError(f"SMTP_URL must be smtp://[user:pass@]host[:port] or smtps://..., "
                         f"got {parts.scheme}://{parts.hostname or ''}")
    tls = scheme == "smtps"
    return SmtpTarget(parts.hostname, parts.port or (465 if tls else 25), tls,
                      unquote(parts.username) if parts.username else None,
                      unquote(parts.password) if parts.password else None)


def reset_link(settings: Settings, raw_token: str) -> str:
    return f"{settings.frontend_url}/reset-password?token={raw_token}"


def reset_message(settings: Settings, to: str, link: str) -> EmailMessage:
    minutes = RESET_TOKEN_TTL // 60
    message = EmailMessage()
    message["Subject"] = SUBJECT
    message["From"] = settings.mail_from
    message["To"] = to
    message.set_content(
        "Someone asked to reset the password of your Excentra account.\n\n"
        f"Open this link to choose a new password (it expires in {minutes} minutes):\n"
        f"{link}\n\nIf you did not ask for this, ignore this e-mail.\n")
    safe = html.escape(link, quote=True)
    message.add_alternative(
        "<p>Someone asked to reset the password of your Excentra account.</p>"
        f'<p><a href="{safe}">Reset your password</a> '
        f"(the link expires in {minutes} minutes).</p>"
        "<p>If you did not ask for this, ignore this e-mail.</p>", subtype="html")
    return message


async def send_reset_mail(settings: Settings, to: str, raw_token: str) -> None:
    """Mail the reset link to ``to`` (or log it without ``SMTP_URL``).

    Raises:
        ApiError: 500 ``Failed to send email`` when the server cannot be reached or
            refuses the message.
    """
    link = reset_link(settings, raw_token)
    if not settings.smtp_url:
        log.info("SMTP_URL not set: password-reset link logged instead of mailed",
                 extra={"to": to, "link": link})
        return
    message = reset_message(settings, to, link)
    try:
        await asyncio.to_thread(_deliver, parse_smtp_url(settings.smtp_url), message)
    except (OSError, smtplib.SMTPException, ValueError) as exc:
        log.error("password-reset mail failed", extra={"to": to, "error": repr(exc)})
        raise ApiError(500, "Failed to send email") from None


def _deliver(target: SmtpTarget, message: EmailMessage) -> None:
    smtp: smtplib.SMTP
    if target.tls:
        smtp = smtplib.SMTP_SSL(target.host, target.port, timeout=SMTP_TIMEOUT,
                                context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(target.host, target.port, timeout=SMTP_TIMEOUT)
    with smtp:
        if target.username is not None:
            smtp.login(target.username, target.password or "")
        smtp.send_message(message)
