from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property

PAGE_SIZE = 25


def paginate(
    request: HttpRequest, queryset: Any, *, per_page: int = PAGE_SIZE, count: int | None = None
) -> Page:
    """One page of `queryset`; a bad or out-of-range ?page= shows the nearest valid page.
    `count`, when given, is the caller's count of the rows (from a cheaper query than a
    COUNT over `queryset`'s own)."""
    paginator = (
        Paginator(queryset, per_page)
        if count is None
        else CountedPaginator(queryset, per_page, count=count)
    )
    return paginator.get_page(request.GET.get("page"))


class CountedPaginator(Paginator):
    """A paginator told how many rows there are instead of counting them."""

    def __init__(self, object_list: Any, per_page: int, *, count: int) -> None:
        super().__init__(object_list, per_page)
        self.known_count = count

    @cached_property
    def count(self) -> int:
        return self.known_count


class CappedPaginator(Paginator):
    """Counts at most `cap` rows. An exact COUNT(*) costs a scan that grows with the table
    (tens of milliseconds at a million referrals), and nobody pages past a few thousand
    rows of a work queue: they filter instead."""

    object_list: QuerySet[Any]

    def __init__(self, object_list: QuerySet[Any], per_page: int, *, cap: int) -> None:
        super().__init__(object_list, per_page)
        self.cap = cap

    @cached_property
    def count(self) -> int:
        # Unordered: the order does not change a count, and without it the database can
        # stop after `cap` rows of any index instead of walking them in sort order.
        return self.object_list.order_by().values("pk")[: self.cap + 1].count()

    @property
    def is_capped(self) -> bool:
        return self.count > self.cap


def paginate_capped(
    request: HttpRequest, queryset: Any, *, cap: int = 5000, per_page: int = PAGE_SIZE
) -> Page:
    """Like paginate, for tables too big to count: the total shows as "over `cap`"."""
    return CappedPaginator(queryset, per_page, cap=cap).get_page(request.GET.get("page"))
