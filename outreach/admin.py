from django.contrib import admin

from outreach.models import Activity, Letter, LetterTemplate, Task


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "kind", "organization", "logged_by", "next_step_due"]
    list_filter = ["kind", "logged_by"]
    search_fields = ["notes", "next_step", "organization__name"]
    list_select_related = ["organization", "logged_by"]
    autocomplete_fields = ["organization", "providers", "staff"]
    date_hierarchy = "occurred_at"


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["title", "kind", "due_on", "assignee", "status"]
    list_filter = ["kind", "status", "assignee"]
    search_fields = ["title"]
    list_select_related = ["assignee"]
    raw_id_fields = ["referral", "provider", "activity"]


@admin.register(LetterTemplate)
class LetterTemplateAdmin(admin.ModelAdmin):
    list_display = ["kind", "subject", "delay_business_days", "updated_at"]


@admin.register(Letter)
class LetterAdmin(admin.ModelAdmin):
    list_display = ["pk", "kind", "provider", "status", "channel", "due_on", "sent_at", "attempts"]
    list_filter = ["kind", "status", "channel"]
    search_fields = ["provider__last_name", "=referral__pk"]
    list_select_related = ["provider"]
    raw_id_fields = ["referral", "provider"]
