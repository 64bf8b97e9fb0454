"""Run daphne with an access log that never shows an order token (`?token=…` in order-page URLs).

python -m config.serve -b 127.0.0.1 -p 8000 config.asgi:application   # same arguments as daphne
"""

import re

from daphne import access, cli

_SECRET = re.compile(r"([?&](?:token|access_token)=)[^&\s\"]*")


class RedactingAccessLog(access.AccessLogGenerator):
    def write_entry(self, host, date, request, status=None, length=None, ident=None, user=None):
        super().write_entry(host, date, _SECRET.sub(r"\1[redacted]", request), status, length, ident, user)


def main() -> None:
    cli.AccessLogGenerator = RedactingAccessLog
    cli.CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
