from django.urls import path

from intake import views

app_name = "intake"

urlpatterns = [
    path("links/", views.link_list, name="links"),
    path("offices/<int:pk>/links/", views.organization_links, name="organization_links"),
    path("links/<int:pk>/revoke/", views.link_revoke, name="link_revoke"),
    path("attachments/<int:pk>/", views.attachment_download, name="attachment_download"),
    path(
        "referrals/<int:pk>/attachments/new/",
        views.referral_attachment_add,
        name="referral_attachment_add",
    ),
    path("hl7/", views.hl7_upload, name="hl7_upload"),
    path("kept/<str:reference>/", views.staged_document, name="staged_document"),
    # Public: the office's link. The token is the only credential.
    path("<str:token>/", views.public_form, name="public_form"),
    path("<str:token>/sent/<str:reference>/", views.public_submitted, name="public_submitted"),
]
