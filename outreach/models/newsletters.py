"""Newsletter issues: one newsletter sent to a segment of the partners."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

if TYPE_CHECKING:
    pass


class NewsletterIssue(models.Model):
    """One newsletter sent to a segment of the active partners: its text (from the
    newsletter template, edited for this issue), the audience it was sent to and how far
    the send has got. Each partner's copy is a Letter (unique per issue and partner), so
    the ordinary letter pipeline delivers it by the partner's channel. Newsletters carry
    no patient data: the patient merge fields are refused."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        PREPARING = "preparing", "Preparing the letters"
        SENT = "sent", "Handed to delivery"
        # Re-driven MAX_REDRIVES times and never finished (outreach.newsletters).
        FAILED = "failed", "Stopped: the letters could not be prepared"

    subject = models.CharField(max_length=200)
    body = models.TextField()
    # The audience: active partners, narrowed by each filter that is set.
    tiers = models.JSONField("tiers", default=list, blank=True)
    health = models.JSONField("relationship health", default=list, blank=True)
    specialty = models.CharField(max_length=100, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="relationship owner",
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    # How many partners the audience held when the send began, and how many letters
    # are made so far: the progress bar of the preparation.
    audience_size = models.PositiveIntegerField(default=0)
    prepared_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Touched by the worker at each step; the sweep re-drives a send whose worker died.
    heartbeat_at = models.DateTimeField(default=timezone.now)
    prepared_at = models.DateTimeField(null=True, blank=True)
    # How often the sweep sent it again after its worker stopped reporting.
    redrives = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The sweep looks for sends that have not finished preparing.
            models.Index(
                fields=["heartbeat_at"],
                condition=~Q(state="sent"),
                name="newsletter_unfinished_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.subject

    def get_absolute_url(self) -> str:
        return reverse("outreach:newsletter_detail", args=[self.pk])
