"""The Celery application. All configuration lives in settings under CELERY_*."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "referral_crm.settings")

app = Celery("referral_crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
