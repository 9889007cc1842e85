from django.urls import path

from core import csp, views

app_name = "core"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("csp-report/", csp.csp_report, name="csp_report"),
]
