"""Fetching one record from user input for someone who may read it and perhaps change it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404

M = TypeVar("M", bound=Model)


def get_for_user(
    visible: Callable[[bool], QuerySet[M]],
    pk: int,
    *,
    write: bool = False,
    refusal: Callable[[M], str],
) -> M:
    """The record `pk` from `visible(write)`, the records this user may read (False) or
    change (True). One they cannot even read is a 404, as if it did not exist; one they
    may read but not change is a 403 whose message, `refusal(record)`, says why, so a
    liaison who follows an edit link learns who can change it instead of being told the
    record is not there."""
    queryset = visible(write)
    try:
        return queryset.get(pk=pk)
    except ObjectDoesNotExist:
        if write:
            readable = visible(False).filter(pk=pk).first()
            if readable is not None:
                raise PermissionDenied(refusal(readable)) from None
        raise Http404("No such record, or not one this role may read.") from None
