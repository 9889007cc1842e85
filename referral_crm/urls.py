from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts.views import SignInView

# Under /fhir/r4/ and /api/v1/, in their own formats; elsewhere the 500.html page.
handler500 = "interop.errors.server_error"

admin.site.site_header = "Referral CRM back office"
admin.site.site_title = "Referral CRM admin"

urlpatterns = [
    path("", include("core.urls")),
    path("partners/", include("partners.urls")),
    path("referrals/", include("referrals.urls")),
    path("outreach/", include("outreach.urls")),
    path("intake/", include("intake.urls")),
    path("audit/", include("audit.urls")),
    path("registry/", include("registry.urls")),
    path("accounts/login/", SignInView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("accounts.urls")),
    path("fhir/r4/", include("interop.fhir.urls")),
    path("api/v1/", include("interop.api.urls")),
    path("admin/", admin.site.urls),
]
