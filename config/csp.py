"""Content-Security-Policy on every HTML answer (Django 5.2 has no built-in one).

Scripts and styles come only from our own origin (vendored, no CDN, nothing inline), so an injected
`<script>` or `onclick=` does not run. Websockets and fetches go to the page's own origin, which 'self'
covers (ws:/wss: on the same host and port included, as CSP Level 3 browsers read it).
"""

from __future__ import annotations

from django.conf import settings

DEFAULT_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def policy_header(policy: dict[str, list[str]]) -> str:
    return "; ".join(f"{directive} {' '.join(sources)}".strip() for directive, sources in policy.items())


class ContentSecurityPolicyMiddleware:
    """Adds the policy (settings.CONTENT_SECURITY_POLICY, a dict of directive -> sources) to HTML answers
    that have none; CONTENT_SECURITY_POLICY_REPORT_ONLY=True sends it as Report-Only (to try a change)."""

    def __init__(self, get_response):
        self.get_response = get_response
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", None) or DEFAULT_POLICY
        self.header_value = policy_header(policy)
        report_only = getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", False)
        self.header_name = "Content-Security-Policy" + ("-Report-Only" if report_only else "")

    def __call__(self, request):
        response = self.get_response(request)
        content_type = response.get("Content-Type", "")
        if content_type.startswith("text/html") and self.header_name not in response:
            response[self.header_name] = self.header_value
        return response
