from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("two-factor/", views.security, name="security"),
    path("password/", views.password_change, name="password_change"),
    path("two-factor/code/", views.verify, name="verify"),
    path("two-factor/set-up/", views.setup, name="setup"),
    path("two-factor/backup-codes/", views.backup_codes, name="backup_codes"),
    path("two-factor/backup-codes/new/", views.backup_codes_new, name="backup_codes_new"),
    path("two-factor/off/", views.two_factor_off, name="off"),
    path("users/", views.team, name="team"),
    path("users/<int:pk>/hand-over/", views.user_handover, name="user_handover"),
]
