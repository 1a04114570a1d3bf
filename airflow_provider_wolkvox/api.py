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
QUERY_DATES_PATH = f"{API_ROOT}/custom/queryDates.php"
UPDATE_PATH = f"{API_ROOT}/custom/update.php"
DELETE_PATH = f"{API_ROOT}/custom/delete.php"
TOKEN_INFO_PATH = f"{API_ROOT}/token/tokenInformation.php"

TOKEN_HEADER = "Wolkvox-Token"

# Concurrent requests a token may have in flight; a third one is refused with 403.
MAX_IN_FLIGHT_PER_TOKEN = 2
# The vendor's example daily quota (token_limit); the real one is set per token.
DEFAULT_DAILY_QUOTA = 4800
# Text fields hold at most this many characters.
MAX_TEXT_LENGTH = 2500

# Record metadata the CRM adds, "YYYY-MM-DD HH:MM:SS" on the CRM's own clock (time zone not public).
ID_FIELD = "wolkvox_id"
CREATED_AT_FIELD = "wolkvox_fecha_creacion"
MODIFIED_AT_FIELD = "wolkvox_fecha_modificacion"
CRM_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# queryDates.php's documented form of its from/to bounds; the fakes take CRM_DATETIME_FORMAT too.
CRM_MINUTE_FORMAT = "%Y-%m-%d %H:%M"
# update.php and delete.php name the record with a hyphen; records carry ID_FIELD with an underscore.
REQUEST_ID_PARAMETER = "wolkvox-id"
# [assumed] queryDates.php returns at most this many records per call (default and cap); an answer
# holding this many may be truncated.
QUERY_DATES_LIMIT = 1000

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
# [assumed] The texts of the fakes' shared reading where the vendor's are not public.
MSG_RECORD_DOES_NOT_EXIST = "THE RECORD DOES NOT EXIST"
MSG_MODULE_DOES_NOT_EXIST = "THE MODULE DOES NOT EXIST"
# [assumed] The maintenance text is not public; a 403 whose msg holds one of these words is read
# as the maintenance window.
MAINTENANCE_MARKERS = ("MAINTENANCE", "MANTENIMIENTO")
