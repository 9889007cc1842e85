from django.urls import path

from referrals.views import detail, entry, export, inquiries, queue, reports

app_name = "referrals"

urlpatterns = [
    path("", queue.referral_list, name="list"),
    path("new/", entry.referral_create, name="create"),
    path("bulk/", queue.referral_bulk, name="bulk"),
    path("refer-out/", entry.referral_refer_out, name="refer_out"),
    path("reports/leakage/", reports.leakage_report, name="leakage"),
    path("reports/reciprocity/", reports.reciprocity_report, name="reciprocity"),
    path("reports/conversion/", reports.conversion_report, name="conversion"),
    path("reports/turnaround/", reports.turnaround_report, name="turnaround"),
    path("reports/referrers/", reports.referrers_report, name="referrers"),
    path("inquiries/", inquiries.inquiry_list, name="inquiries"),
    path("inquiries/new/", inquiries.inquiry_edit, name="inquiry_create"),
    path("inquiries/<int:pk>/", inquiries.inquiry_edit, name="inquiry_update"),
    path("<int:pk>/consult-report/", detail.referral_consult_report, name="consult_report"),
    path("<int:pk>/claim/", queue.referral_claim_view, name="claim"),
    path("<int:pk>/assign/", queue.referral_assign_view, name="assign"),
    path("export.csv", export.referral_export, name="export"),
    path("<int:pk>/", detail.referral_detail, name="detail"),
    path("<int:pk>/edit/", detail.referral_update, name="update"),
    path("<int:pk>/transition/", detail.referral_transition_view, name="transition"),
    path("<int:pk>/duplicate/", detail.referral_mark_duplicate_view, name="mark_duplicate"),
    path(
        "<int:pk>/duplicate/undo/",
        detail.referral_unmark_duplicate_view,
        name="unmark_duplicate",
    ),
    path("<int:pk>/not-duplicate/", detail.referral_not_duplicate_view, name="not_duplicate"),
    path("<int:pk>/delete/", detail.referral_delete, name="delete"),
]
