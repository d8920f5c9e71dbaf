"""Application layer of EN 13757-3: headers, data records, telegrams and request payloads.

Public API (pinned in docs/architecture.md "Application layer"):
``decode_telegram``, ``Telegram``, ``Record`` (``Record.build``, ``encode``), ``Header``,
``ShortHeader``, ``FixedData``, ``encode_variable_data`` and friends, ``telegram_json``,
and the request payloads of requests.py for the link layer and the master.
"""

from .datafield import DataField
from .header import FixedData, Header, ShortHeader, status_names
from .json_view import record_json, telegram_json
from .records import FUNCTIONS, Record, encode_records, parse_records
from .requests import (
    ApplicationReset,
    BaudSwitch,
    DataSend,
    Request,
    Selection,
    baud_switch_ci,
    decode_request,
    encode_application_reset,
    encode_request,
    encode_selection,
    encode_set_address,
)
from .telegram import (
    APPLICATION_ERRORS,
    Telegram,
    application_error_name,
    decode_data,
    decode_telegram,
    encode_alarm,
    encode_application_error,
    encode_fixed_data,
    encode_short_data,
    encode_telegram,
    encode_variable_data,
    telegram_frame,
)

__all__ = [
    "APPLICATION_ERRORS", "FUNCTIONS", "ApplicationReset", "BaudSwitch", "DataField",
    "DataSend", "FixedData", "Header", "Record", "Request", "Selection", "ShortHeader",
    "Telegram", "application_error_name", "baud_switch_ci", "decode_data", "decode_request",
    "decode_telegram", "encode_alarm", "encode_application_error", "encode_application_reset",
    "encode_fixed_data", "encode_records", "encode_request", "encode_selection",
    "encode_set_address", "encode_short_data", "encode_telegram", "encode_variable_data",
    "parse_records", "record_json", "status_names", "telegram_frame", "telegram_json",
]
