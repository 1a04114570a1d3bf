"""Isolating the refused items of a batch: split it until the refused ones stand alone.

Shared by the creates of a load (``insertMany.php`` batches, ``sender.py``) and the deletes of a
mirror sync (``delete.php`` batches, ``sync/deletes.py``): the CRM refuses a whole batch for one bad
item, and says neither which one nor why in a form a client could rely on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from airflow_provider_wolkvox import api
from airflow_provider_wolkvox.exceptions import WolkvoxBadRequestError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: Sends one batch: its items' results, or the refusal of a batch of more than one item (a single
#: item's refusal is its result).
Send = Callable[[Sequence[T]], list[R] | WolkvoxBadRequestError]

# Answers that refuse the request itself, not an item in it: splitting the batch cannot help.
_REQUEST_LEVEL_MESSAGES = frozenset({api.MSG_MISSING_PARAMETERS, api.MSG_UNKNOWN_API})
# These may refuse an item (400, and 413/422 for one too large or unprocessable); the other 4xx
# (404, 405, 412, 416, 417, ...) refuse the request.
_ITEM_LEVEL_STATUSES = frozenset({400, 413, 422})


def refuses_the_request(error: WolkvoxBadRequestError) -> bool:
    """True when a 4xx refuses the request itself rather than an item in it."""
    if error.status_code is not None and error.status_code not in _ITEM_LEVEL_STATUSES:
        return True
    return (error.msg or "").strip().upper() in _REQUEST_LEVEL_MESSAGES


def isolate(
    items: Sequence[T],
    refusal: WolkvoxBadRequestError,
    send: Send[T, R],
    *,
    what: str = "records",
    dense: bool = False,
) -> list[R]:
    """The results of a batch of several ``items`` refused for some of them (``refusal``): the good
    items are sent again in halves, the refused halves split further, until the refused items stand
    alone; one result per item, in their order.

    Halving finds a few refused items in about 2·log2(n) calls. Where they are dense (both halves
    refused twice running, e.g. a file loaded again into a module with a unique field), one call per
    item is cheaper, so the cost stays near n calls, never 2n.

    :param what: names the items in the log line.
    """
    log.info(
        "wolkvox refused a batch of %d %s (%s); splitting it to isolate the rejected %s, at the cost "
        "of extra calls",
        len(items),
        what,
        refusal.msg,
        what,
    )
    half = len(items) // 2
    parts = (items[:half], items[half:])
    outcomes = [send(part) for part in parts]
    both_refused = all(isinstance(outcome, WolkvoxBadRequestError) for outcome in outcomes)
    if both_refused and dense:
        return [result for item in items for result in _single(send, item)]
    results: list[R] = []
    for part, outcome in zip(parts, outcomes, strict=True):
        if isinstance(outcome, WolkvoxBadRequestError):
            results += isolate(part, outcome, send, what=what, dense=both_refused)
        else:
            results += outcome
    return results


def _single(send: Send[T, R], item: T) -> list[R]:
    outcome = send([item])
    if isinstance(outcome, WolkvoxBadRequestError):  # a single item's refusal is its result
        raise AssertionError("send() returned the refusal of a single item")
    return outcome
