from django.urls import path

from referrals import views

app_name = "referrals"

urlpatterns = [
    path("", views.referral_list, name="list"),
    path("new/", views.referral_create, name="create"),
    path("bulk/", views.referral_bulk, name="bulk"),
    path("refer-out/", views.referral_refer_out, name="refer_out"),
    path("reports/leakage/", views.leakage_report, name="leakage"),
    path("reports/reciprocity/", views.reciprocity_report, name="reciprocity"),
    path("reports/conversion/", views.conversion_report, name="conversion"),
    path("inquiries/new/", views.inquiry_edit, name="inquiry_create"),
    path("inquiries/<int:pk>/", views.inquiry_edit, name="inquiry_update"),
    path("<int:pk>/consult-report/", views.referral_consult_report, name="consult_report"),
    path("<int:pk>/claim/", views.referral_claim_view, name="claim"),
    path("<int:pk>/assign/", views.referral_assign_view, name="assign"),
    path("export.csv", views.referral_export, name="export"),
    path("<int:pk>/", views.referral_detail, name="detail"),
    path("<int:pk>/edit/", views.referral_update, name="update"),
    path("<int:pk>/transition/", views.referral_transition_view, name="transition"),
    path("<int:pk>/delete/", views.referral_delete, name="delete"),
]
