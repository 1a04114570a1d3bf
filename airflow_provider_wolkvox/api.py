"""The wolkvox CRM API contract: paths, header, documented messages and limits.

Shared by the client and the embedded fake server so that both speak one contract. Every string
here is quoted from the vendor's documentation (``shared/wolkvox-api.md``) unless marked otherwise.
This module imports nothing from Airflow.
"""

from __future__ import annotations

API_ROOT = "/server/API/v2"
INSERT_PATH = f"{API_ROOT}/custom/insert.php"
INSERT_MANY_PATH = f"{API_ROOT}/custom/insertMany.php"
QUERY_PATH = f"{API_ROOT}/custom/query.php"
TOKEN_INFO_PATH = f"{API_ROOT}/token/tokenInformation.php"

TOKEN_HEADER = "Wolkvox-Token"

# Concurrent requests a token may have in flight; a third one is refused with 403.
MAX_IN_FLIGHT_PER_TOKEN = 2
# The vendor's example daily quota (token_limit); the real one is set per token.
DEFAULT_DAILY_QUOTA = 4800
# Text fields hold at most this many characters.
MAX_TEXT_LENGTH = 2500

# The `error` member: the string "null" (or JSON null) on success.
ERROR_NONE = "null"
ERROR_BAD_REQUEST = "BAD REQUEST"
ERROR_UNAUTHORIZED = "UNAUTHORIZED"
ERROR_FORBIDDEN = "FORBIDDEN"

MSG_UNKNOWN_API = "THE API YOU WANT TO CONSULT DOES NOT EXIST"
MSG_MISSING_PARAMETERS = "SOME PARAMETERS ARE REQUIRED"
MSG_MISSING_TOKEN = "PLEASE ENTER THE WOLKVOX-TOKEN"
MSG_INVALID_TOKEN = "PLEASE VALIDATE TOKEN"
MSG_QUOTA_EXCEEDED = "TOKEN LIMIT EXCEEDED"
MSG_TOO_MANY_SIMULTANEOUS = "EXCEEDS THE LIMIT OF SIMULTANEOUS REQUESTS PER TOKEN (2)"
# [assumed] The maintenance text is not public; a 403 whose msg holds one of these words is read
# as the maintenance window.
MAINTENANCE_MARKERS = ("MAINTENANCE", "MANTENIMIENTO")
