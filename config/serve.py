"""The web's production entry point: daphne, with the application writing the access log instead.

python -m config.serve -b 0.0.0.0 -p 8000 config.asgi:application   # same arguments as daphne

daphne's own access log would show the proxy's address and every `?token=…`; config/access_log.py logs
each request with the client resolved through TRUSTED_PROXIES and secrets redacted, so daphne's is off.
"""

from daphne import cli


def main() -> None:
    cli.AccessLogGenerator = lambda stream: None  # daphne builds it only when it has a stream
    cli.CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
