from django.urls import path

from referrals import views

app_name = "referrals"

urlpatterns = [
    path("", views.referral_list, name="list"),
    path("new/", views.referral_create, name="create"),
    path("export.csv", views.referral_export, name="export"),
    path("<int:pk>/", views.referral_detail, name="detail"),
    path("<int:pk>/edit/", views.referral_update, name="update"),
    path("<int:pk>/transition/", views.referral_transition_view, name="transition"),
    path("<int:pk>/delete/", views.referral_delete, name="delete"),
]
