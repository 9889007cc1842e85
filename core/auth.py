"""One query for who a signed-in user is allowed to be.

Django's ModelBackend loads a user's own permissions and their groups' permissions in two
queries, and the role (core.roles.user_role) took a third for the group names: three
queries before every page. `load_access` reads all three in one statement and fills the
same per-request caches ModelBackend uses, so `has_perm` and `{% if perms... %}` behave
as Django's do, with one exception: a user in several role groups holds the permissions
of the least privileged one only (core.roles.least_privileged).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.db import connection

from core.roles import Role, least_privileged

_ACCESS_SQL = """
SELECT 'group', g.name, '', ''
FROM auth_group g JOIN auth_user_groups ug ON ug.group_id = g.id
WHERE ug.user_id = %(user)s
UNION ALL
SELECT 'user', '', ct.app_label, p.codename
FROM auth_permission p
JOIN django_content_type ct ON ct.id = p.content_type_id
JOIN auth_user_user_permissions up ON up.permission_id = p.id
WHERE up.user_id = %(user)s
UNION ALL
SELECT 'group_perm', g.name, ct.app_label, p.codename
FROM auth_permission p
JOIN django_content_type ct ON ct.id = p.content_type_id
JOIN auth_group_permissions gp ON gp.permission_id = p.id
JOIN auth_group g ON g.id = gp.group_id
JOIN auth_user_groups ug ON ug.group_id = g.id
WHERE ug.user_id = %(user)s
"""


def load_access(user: Any) -> None:
    """Fill the user object's caches: group names, own and group permissions."""
    if hasattr(user, "_group_names"):
        return
    groups: set[str] = set()
    own: set[str] = set()
    by_group: list[tuple[str, str]] = []
    with connection.cursor() as cursor:
        cursor.execute(_ACCESS_SQL, {"user": user.pk})
        for kind, name, app_label, codename in cursor.fetchall():
            if kind == "group":
                groups.add(name)
            elif kind == "user":
                own.add(f"{app_label}.{codename}")
            else:
                by_group.append((name, f"{app_label}.{codename}"))
    # Of several role groups only the least privileged one's permissions count (a user
    # the admin once put in two); groups that are no role add theirs as Django's do.
    role = least_privileged(groups)
    inherited = {perm for group, perm in by_group if group == role or group not in Role.ALL}
    user._group_names = frozenset(groups)
    if not user.is_superuser:
        # ModelBackend's own cache attributes: its has_perm and get_*_permissions read them.
        user._user_perm_cache = own
        user._group_perm_cache = inherited
        user._perm_cache = own | inherited


class AccessBackend(ModelBackend):
    """ModelBackend with the permission load done by `load_access` (one query)."""

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        active = user_obj.is_active and not user_obj.is_anonymous
        if active and obj is None and not user_obj.is_superuser:
            load_access(user_obj)
        return super().get_all_permissions(user_obj, obj)
