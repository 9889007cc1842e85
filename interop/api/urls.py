from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from interop.api import views

app_name = "api"

router = SimpleRouter()
router.register("partners", views.PartnerViewSet, basename="partner")
router.register("referrals", views.ReferralViewSet, basename="referral")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("", include(router.urls)),
]
