from django.urls import path

from outreach import field_views, views, views_newsletters, views_rekindle

app_name = "outreach"

urlpatterns = [
    path("tasks/", views.task_list, name="task_list"),
    path("tasks/new/", views.task_create, name="task_create"),
    path("tasks/<int:pk>/", views.task_detail, name="task_detail"),
    path("tasks/<int:pk>/done/", views.task_complete_view, name="task_complete"),
    path("tasks/<int:pk>/note/", views_rekindle.rekindle_note, name="rekindle_note"),
    path(
        "tasks/<int:pk>/note/preview/",
        views_rekindle.rekindle_note_preview,
        name="rekindle_note_preview",
    ),
    path("activities/", views.activity_list, name="activity_list"),
    path("activities/new/", views.activity_create, name="activity_create"),
    path("letters/<int:pk>/", views.letter_detail, name="letter_detail"),
    path("letters/<int:pk>/pdf/", views.letter_pdf_download, name="letter_pdf"),
    path("letters/<int:pk>/printed/", views.letter_printed, name="letter_printed"),
    path("print-queue/", views.print_queue, name="print_queue"),
    path("templates/", views.template_list, name="template_list"),
    path("templates/<int:pk>/", views.template_update, name="template_update"),
    path("day/", views.day_plan, name="day_plan"),
    path("day/add/", views.day_plan_add, name="day_plan_add"),
    path("day/route/", views.day_plan_route, name="day_plan_route"),
    path(
        "day/offices/",
        field_views.day_plan_office_typeahead,
        name="day_plan_office_typeahead",
    ),
    path("day/visits/<int:pk>/log/", views.planned_visit_log_view, name="planned_visit_log"),
    path("day/visits/<int:pk>/ledger/", views.planned_visit_ledger, name="planned_visit_ledger"),
    path("day/visits/<int:pk>/skip/", views.planned_visit_skip_view, name="planned_visit_skip"),
    path("compliance/", views.compliance_report, name="compliance_report"),
    path("compliance/limit/", views.compliance_limit_save, name="compliance_limit_save"),
    path("calendar/", views.calendar_settings, name="calendar_settings"),
    path("calendar/<str:token>.ics", views.calendar_feed_view, name="calendar_feed"),
    path("events/", views.event_list, name="event_list"),
    path("annual-meetings/", field_views.annual_meeting_list, name="annual_meeting_list"),
    path("events/new/", views.event_create, name="event_create"),
    path("events/<int:pk>/", views.event_detail, name="event_detail"),
    path("events/<int:pk>/edit/", field_views.event_update, name="event_update"),
    path("events/<int:pk>/invite/", views.event_invite_view, name="event_invite"),
    path("events/<int:pk>/attendance/", views.event_attendance, name="event_attendance"),
    path("invitations/<int:pk>/", views.invitation_update, name="invitation_update"),
    path("templates/<int:pk>/preview/", views.template_preview, name="template_preview"),
    path("newsletters/", views_newsletters.newsletter_list, name="newsletter_list"),
    path("newsletters/new/", views_newsletters.newsletter_create, name="newsletter_create"),
    path(
        "newsletters/new/preview/",
        views_newsletters.newsletter_preview,
        name="newsletter_preview",
    ),
    path("newsletters/<int:pk>/", views_newsletters.newsletter_detail, name="newsletter_detail"),
]
