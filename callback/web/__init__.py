"""The ASGI app of ``callback serve``: voice webhooks, health and the OpenAPI document.

Importing this package needs the ``web`` extra (Starlette); it never imports a vendor SDK.
The Twilio routes load the ``twilio`` dialer through ``callback.plugins`` on first use.
"""

from callback.web.app import create_app
from callback.web.settings import WebSettings

__all__ = ["WebSettings", "create_app"]
