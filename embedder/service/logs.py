"""What serve's access log may say about users (setting ``access_log_users``)."""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

_USER_IN_PATH = re.compile(r"^(/users/)([^/?]+)")
_USER_IN_QUERY = re.compile(r"([?&]user=)([^&]*)")


class AccessLogUsers(logging.Filter):
    """Rewrites the user ids in the URLs uvicorn's access log writes (``/users/ID/...`` and
    ``?user=ID``): as the stored pseudonym, or ``-``, so ``forget`` leaves no raw id in the log."""

    def __init__(self, settings):
        super().__init__()
        self.settings = settings
        self.mode = settings.access_log_user_ids

    def _replace(self, quoted: str) -> str:
        if self.mode == "drop":
            return "-"
        user = unquote(quoted)
        if self.settings.pseudonymous_users:
            return self.settings.stored_user(user)
        import hashlib

        return "h:" + hashlib.sha256(user.encode()).hexdigest()[:16]

    def redact(self, url: str) -> str:
        """``url`` with its user ids replaced."""
        url = _USER_IN_PATH.sub(lambda m: m.group(1) + self._replace(m.group(2)), url)
        return _USER_IN_QUERY.sub(lambda m: m.group(1) + self._replace(m.group(2)), url)

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn's access record: args = (client, method, path with query, HTTP version, status)
        if self.mode != "keep" and isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            args[2] = self.redact(str(args[2]))
            record.args = tuple(args)
        return True
