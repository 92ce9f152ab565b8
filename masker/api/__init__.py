"""Agent-desktop API: call control, live token feed, metrics, health and the payment panel.

`start_api_server(registry, config)` is what the service calls; see docs/CONTRACTS.md.
"""

from masker.api.app import build_app
from masker.api.server import ApiServer, start_api_server
from masker.api.settings import ApiConfig, ApiKey

__all__ = ["ApiConfig", "ApiKey", "ApiServer", "build_app", "start_api_server"]
