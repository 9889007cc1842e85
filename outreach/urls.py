from django.urls import path

from outreach import views

app_name = "outreach"

urlpatterns = [
    path("tasks/", views.task_list, name="task_list"),
    path("tasks/new/", views.task_create, name="task_create"),
    path("tasks/<int:pk>/", views.task_detail, name="task_detail"),
    path("tasks/<int:pk>/done/", views.task_complete_view, name="task_complete"),
    path("activities/", views.activity_list, name="activity_list"),
    path("activities/new/", views.activity_create, name="activity_create"),
    path("letters/<int:pk>/", views.letter_detail, name="letter_detail"),
    path("letters/<int:pk>/pdf/", views.letter_pdf_download, name="letter_pdf"),
    path("letters/<int:pk>/printed/", views.letter_printed, name="letter_printed"),
    path("print-queue/", views.print_queue, name="print_queue"),
    path("templates/", views.template_list, name="template_list"),
    path("templates/<int:pk>/", views.template_update, name="template_update"),
    path("templates/<int:pk>/preview/", views.template_preview, name="template_preview"),
]
