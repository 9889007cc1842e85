from django.urls import path, re_path

from interop.fhir import views
from interop.fhir.http import unknown_address

app_name = "fhir"

urlpatterns = [
    path("metadata", views.CapabilityStatementView.as_view(), name="metadata"),
    path("Practitioner", views.PractitionerListView.as_view(), name="practitioner_search"),
    path("Practitioner/<str:pk>", views.PractitionerView.as_view(), name="practitioner"),
    path(
        "PractitionerRole",
        views.PractitionerRoleListView.as_view(),
        name="practitionerrole_search",
    ),
    path(
        "PractitionerRole/<str:pk>",
        views.PractitionerRoleView.as_view(),
        name="practitionerrole",
    ),
    path("Organization", views.OrganizationListView.as_view(), name="organization_search"),
    path("Organization/<str:pk>", views.OrganizationView.as_view(), name="organization"),
    path("ServiceRequest", views.ServiceRequestListView.as_view(), name="servicerequest_search"),
    path("ServiceRequest/<str:pk>", views.ServiceRequestView.as_view(), name="servicerequest"),
    # Last: everything else under the facade ([\s\S], not ".": a path may hold a newline,
    # as an id read from a file often does).
    re_path(r"^(?P<rest>[\s\S]*)$", unknown_address, name="unknown"),
]
