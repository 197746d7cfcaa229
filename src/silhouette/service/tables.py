"""What the record tables share (records.py: jobs, batch_records.py: batches): binding a
PynamoDB model to the table the settings name, which is only known at run time, and changes
and deletions made only if a condition holds, a failed condition reported as False rather than
raised."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from pynamodb.exceptions import DeleteError, PutError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from silhouette.settings import get_settings

M = TypeVar("M", bound=Model)


def utc_now() -> datetime:
    return datetime.now(UTC)


def bound(model: type[M], table_name: str) -> type[M]:
    """`model` on `table_name` in the settings' region (its connection renewed on a change)."""
    meta = model.Meta
    region = get_settings().region
    if meta.table_name != table_name or getattr(meta, "region", None) != region:
        meta.table_name = table_name
        meta.region = region
        model._connection = None
    return model


def update_if(item: Model, changes: dict[str, Any], condition: Condition) -> bool:
    """Apply `changes` (attribute name -> value; None removes it) to the stored `item` if
    `condition` holds; False if it does not (every condition must require the item to exist:
    an update would otherwise create it)."""
    attributes = type(item).get_attributes()
    actions = [
        attributes[name].set(value) if value is not None else attributes[name].remove()
        for name, value in changes.items()
    ]
    return act_if(item, actions, condition)


def act_if(item: Model, actions: list[Action], condition: Condition) -> bool:
    """`update_if` with update actions of any kind (a map entry set, a number added)."""
    try:
        item.update(actions=actions, condition=condition)
    except UpdateError as error:
        if is_condition_failure(error):
            return False
        raise
    return True


def delete_if(item: Model, condition: Condition) -> bool:
    """Delete the stored `item` if `condition` holds; False if it does not."""
    try:
        item.delete(condition=condition)
    except DeleteError as error:
        if is_condition_failure(error):
            return False
        raise
    return True


def is_condition_failure(error: PutError | UpdateError | DeleteError) -> bool:
    return error.cause_response_code == "ConditionalCheckFailedException"
