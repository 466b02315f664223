"""Mail over SMTP: the account mails of USER-1/4/5/6 with plain-text and HTML bodies.

Settings: ``RMON_RELAY_SMTP_URL`` is ``smtp://user:pass@host:port`` (plain, default port 25),
``smtps://…`` (TLS from the first byte, default 465) or ``smtp+starttls://…`` (STARTTLS,
default 587); user and password are optional and percent-decoded. Python's ``smtplib`` runs in
a thread (``asyncio.to_thread``): one short conversation per mail needs no extra dependency.

What is never logged: the SMTP password, links' tokens, verification codes and initial
passwords. Log lines name the kind of mail and the recipient only. Without an SMTP URL the
mailer logs that a mail was not sent (still without its secrets); a relay without mail cannot
sign anyone up, so operators see it at once.
"""

from __future__ import annotations

import asyncio
import html
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import unquote, urlencode, urlsplit

from relay.settings import RelaySettings

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"smtp": 25, "smtps": 465, "smtp+starttls": 587}


class MailError(Exception):
    """The SMTP server refused or could not be reached (wraps smtplib/OSError)."""


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to hand mail over, parsed from ``RMON_RELAY_SMTP_URL``."""

    scheme: str
    host: str
    port: int
    username: str
    password: str

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        """Parse and check the URL; ValueError names what is wrong (never the password)."""
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PORTS:
            raise ValueError("smtp_url: scheme must be smtp, smtps or smtp+starttls")
        if not parts.hostname:
            raise ValueError("smtp_url: no host")
        return cls(
            scheme=parts.scheme,
            host=parts.hostname,
            port=parts.port or _DEFAULT_PORTS[parts.scheme],
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
        )

    def __repr__(self) -> str:
        """Without the password (settings and targets end up in logs and tracebacks)."""
        return f"SmtpTarget({self.scheme}://{self.username}@{self.host}:{self.port})"


@dataclass(frozen=True)
class Mail:
    """One message: recipient, subject, and the same text as plain text and HTML."""

    to: str
    subject: str
    text: str
    html: str
    kind: str  # for logs: "signup", "reset", … (never the secret inside)


class Mailer:
    """Builds the account mails and sends them through the configured SMTP server."""

    def __init__(self, settings: RelaySettings, *, tls_context: ssl.SSLContext | None = None):
        self.settings = settings
        self.target = SmtpTarget.parse(settings.smtp_url) if settings.smtp_url else None
        self.tls_context = tls_context or ssl.create_default_context()

    @property
    def public_url(self) -> str:
        """Base of links in mail."""
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        host = self.settings.public_hosts[0] if self.settings.public_hosts else "localhost"
        return f"https://{host}:{self.settings.listen_port}"

    def link(self, route: str, **params: str) -> str:
        """A portal link such as ``…/#/signup/confirm?token=…``."""
        return f"{self.public_url}/#/{route}?{urlencode(params)}"

    async def send(self, mail: Mail) -> None:
        """Send in a thread; MailError when the server refuses or is unreachable."""
        if self.target is None:
            log.warning("mail not sent (no smtp_url): %s to %s", mail.kind, mail.to)
            return
        try:
            await asyncio.to_thread(self._send_sync, self.target, self._message(mail))
        except (smtplib.SMTPException, OSError) as err:
            log.warning("mail %s to %s failed: %s", mail.kind, mail.to, type(err).__name__)
            raise MailError(f"could not send the {mail.kind} mail") from err
        log.info("mail %s sent to %s", mail.kind, mail.to)

    def _message(self, mail: Mail) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.settings.mail_from
        msg["To"] = mail.to
        msg["Subject"] = mail.subject
        msg["Message-ID"] = make_msgid(domain="rmon.invalid")
        msg.set_content(mail.text)
        msg.add_alternative(mail.html, subtype="html")
        return msg

    def _send_sync(self, target: SmtpTarget, msg: EmailMessage) -> None:
        """One SMTP conversation (blocking: runs in a thread)."""
        timeout = self.settings.smtp_timeout_s
        smtp: smtplib.SMTP
        if target.scheme == "smtps":
            smtp = smtplib.SMTP_SSL(
                target.host, target.port, timeout=timeout, context=self.tls_context
            )
        else:
            smtp = smtplib.SMTP(target.host, target.port, timeout=timeout)
        with smtp:
            if target.scheme == "smtp+starttls":
                smtp.starttls(context=self.tls_context)
            if target.username:
                smtp.login(target.username, target.password)
            smtp.send_message(msg)

    # -- the account mails --------------------------------------------------------------------

    def signup_mail(self, to: str, name: str, token: str) -> Mail:
        """USER-1: the confirmation link (valid 24 h)."""
        url = self.link("signup/confirm", token=token)
        hours = self.settings.signup_link_ttl_s // 3600
        return _mail(
            to,
            "Confirm your rmon account",
            f"Hello {name},",
            [
                "Thank you for signing up. Open this link to activate your account:",
                url,
                f"The link is valid for {hours} hours. If you did not sign up, ignore this mail.",
            ],
            kind="signup",
            link=url,
        )

    def email_change_mail(self, to: str, name: str, token: str) -> Mail:
        """USER-5: confirm the new address; every session ends when it is used."""
        url = self.link("email/confirm", token=token)
        return _mail(
            to,
            "Confirm your new rmon e-mail address",
            f"Hello {name},",
            [
                "Open this link to make this your login address:",
                url,
                "After the change you are logged out everywhere and log in with the new address.",
            ],
            kind="email_change",
            link=url,
        )

    def reset_mail(self, to: str, name: str, code: str) -> Mail:
        """USER-4: "Notice of Initialization of Password" with the verification code."""
        url = self.link("password/reset", email=to)
        minutes = self.settings.reset_code_ttl_s // 60
        return _mail(
            to,
            "Notice of Initialization of Password",
            f"Hello {name},",
            [
                f"Verification code: {code}",
                "Please set a new password here, with the verification code:",
                url,
                f"The code is valid for {minutes} minutes. If you did not ask for it, ignore "
                "this mail: your password has not changed.",
            ],
            kind="reset",
            link=url,
        )

    def invitation_mail(self, to: str, name: str, owner: str, password: str) -> Mail:
        """USER-6: the initial password, to be changed at the first login."""
        url = self.link("login")
        return _mail(
            to,
            "You are invited to rmon",
            f"Hello {name},",
            [
                f"{owner} has shared cameras with you on rmon.",
                f"Login e-mail address: {to}",
                f"Initial password: {password}",
                "Log in here and set your own password (required at the first login):",
                url,
            ],
            kind="invitation",
            link=url,
        )


def _mail(to: str, subject: str, greeting: str, lines: list[str], *, kind: str, link: str) -> Mail:
    """The same words as plain text and as escaped HTML (the link clickable)."""
    text = "\n\n".join([greeting, *lines, "-- rmon"]) + "\n"
    parts = []
    for line in lines:
        escaped = html.escape(line)
        if line == link:
            escaped = f'<a href="{html.escape(link, quote=True)}">{escaped}</a>'
        parts.append(f"<p>{escaped}</p>")
    body = f"<p>{html.escape(greeting)}</p>{''.join(parts)}<p>-- rmon</p>"
    return Mail(to, subject, text, f"<!doctype html><html><body>{body}</body></html>", kind)
