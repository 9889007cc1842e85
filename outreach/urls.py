from django.urls import path

from outreach import field_views, views_newsletters, views_rekindle
from outreach.views import activities, compliance, day_plan, events, letters, tasks

app_name = "outreach"

urlpatterns = [
    path("tasks/", tasks.task_list, name="task_list"),
    path("tasks/new/", tasks.task_create, name="task_create"),
    path("tasks/<int:pk>/", tasks.task_detail, name="task_detail"),
    path("tasks/<int:pk>/done/", tasks.task_complete_view, name="task_complete"),
    path("tasks/<int:pk>/note/", views_rekindle.rekindle_note, name="rekindle_note"),
    path(
        "tasks/<int:pk>/note/preview/",
        views_rekindle.rekindle_note_preview,
        name="rekindle_note_preview",
    ),
    path("activities/", activities.activity_list, name="activity_list"),
    path("activities/new/", activities.activity_create, name="activity_create"),
    path("letters/<int:pk>/", letters.letter_detail, name="letter_detail"),
    path("letters/<int:pk>/pdf/", letters.letter_pdf_download, name="letter_pdf"),
    path("letters/<int:pk>/printed/", letters.letter_printed, name="letter_printed"),
    path("print-queue/", letters.print_queue, name="print_queue"),
    path("templates/", letters.template_list, name="template_list"),
    path("templates/<int:pk>/", letters.template_update, name="template_update"),
    path("day/", day_plan.day_plan, name="day_plan"),
    path("day/add/", day_plan.day_plan_add, name="day_plan_add"),
    path("day/route/", day_plan.day_plan_route, name="day_plan_route"),
    path(
        "day/offices/",
        field_views.day_plan_office_typeahead,
        name="day_plan_office_typeahead",
    ),
    path("day/visits/<int:pk>/log/", day_plan.planned_visit_log_view, name="planned_visit_log"),
    path("day/visits/<int:pk>/ledger/", day_plan.planned_visit_ledger, name="planned_visit_ledger"),
    path("day/visits/<int:pk>/skip/", day_plan.planned_visit_skip_view, name="planned_visit_skip"),
    path("compliance/", compliance.compliance_report, name="compliance_report"),
    path("compliance/limit/", compliance.compliance_limit_save, name="compliance_limit_save"),
    path("calendar/", day_plan.calendar_settings, name="calendar_settings"),
    path("calendar/<str:token>.ics", day_plan.calendar_feed_view, name="calendar_feed"),
    path("events/", events.event_list, name="event_list"),
    path("annual-meetings/", field_views.annual_meeting_list, name="annual_meeting_list"),
    path("events/new/", events.event_create, name="event_create"),
    path("events/<int:pk>/", events.event_detail, name="event_detail"),
    path("events/<int:pk>/edit/", field_views.event_update, name="event_update"),
    path("events/<int:pk>/invite/", events.event_invite_view, name="event_invite"),
    path("events/<int:pk>/attendance/", events.event_attendance, name="event_attendance"),
    path("invitations/<int:pk>/", events.invitation_update, name="invitation_update"),
    path("templates/<int:pk>/preview/", letters.template_preview, name="template_preview"),
    path("newsletters/", views_newsletters.newsletter_list, name="newsletter_list"),
    path("newsletters/new/", views_newsletters.newsletter_create, name="newsletter_create"),
    path(
        "newsletters/new/preview/",
        views_newsletters.newsletter_preview,
        name="newsletter_preview",
    ),
    path("newsletters/<int:pk>/", views_newsletters.newsletter_detail, name="newsletter_detail"),
]
