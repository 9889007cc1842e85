from django.urls import include, path, re_path
from rest_framework.routers import SimpleRouter

from interop.api import views

app_name = "api"

router = SimpleRouter()
# Before "partners", whose detail address would otherwise take "removed" for an id.
router.register("partners/removed", views.PartnerRemovalViewSet, basename="partner-removal")
router.register("partners", views.PartnerViewSet, basename="partner")
router.register("referrals", views.ReferralViewSet, basename="referral")

urlpatterns = [
    path("schema/", views.SchemaView.as_view(), name="schema"),
    path("", include(router.urls)),
    # Last: any other address under the API is a JSON 404, not the app's HTML page (even
    # one with a newline, which "." does not match).
    re_path(r"^[\s\S]*$", views.unknown_address, name="unknown"),
]
