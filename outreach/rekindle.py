"""The liaison's note for a rekindle task.

The nightly queue (services.rekindle) gives the owner of a partner who slipped
away a task with the reasons. From it the liaison writes a note, starting from the
editable rekindle note template with the partner's merge fields filled, and sends it. The
note is an ordinary Letter: routed by the partner's channel and opt-out (letter_route),
delivered by the letter pipeline, on the partner's timeline. Sending also logs the touch
(a letter activity, so the partner leaves the queue like after a call) and completes the
task. A task gets one note: the database refuses a second, so a double press or a
re-posted form never sends two. The note is about the relationship: patient merge fields
are refused, as in a newsletter.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.enqueue import enqueue_on_commit
from outreach.fax import PrintQueueFaxBackend, fax_backend
from outreach.models import Activity, Letter, LetterTemplate, Task
from outreach.models.merge_fields import merge_text_error, render_merge_fields
from outreach.services.activities import activity_log
from outreach.services.letters import (
    letter_route,
    letter_template_for,
    new_message_id,
    provider_merge_values,
)
from partners.models import Provider
from partners.selectors import can_change_provider

K = LetterTemplate.Kind


def can_write_note(user: User, task: Task) -> bool:
    """Whether `user` may send the note of `task`, decided without a query for a task
    loaded with its partner: an open rekindle task they may change (as
    TaskQuerySet.for_user(write=True) decides: their own, or any for a manager) about a
    partner they may change (a liaison's own partners, any for a manager)."""
    if task.kind != Task.Kind.REKINDLE or task.status != Task.Status.OPEN:
        return False
    if not user.has_perm("outreach.change_task"):
        return False
    if not (user.has_perm("outreach.view_all_tasks") or task.assignee_id == user.pk):
        return False
    return task.provider is not None and can_change_provider(user, task.provider)


def _note_values(provider: Provider, sender: User) -> dict[str, str]:
    """The partner's merge fields, signed by whoever writes the note (a manager writing for a
    liaison's partner signs it; so does a liaison whose partner has no owner on record)."""
    return {
        **provider_merge_values(provider),
        "sender_name": sender.get_full_name() or sender.get_username(),
    }


def note_draft(provider: Provider, sender: User) -> tuple[str, str]:
    """The subject and body the liaison starts from: the rekindle note template with the
    partner's merge fields filled."""
    template = letter_template_for(K.REKINDLE)
    values = _note_values(provider, sender)
    return (
        render_merge_fields(template.subject, values)[:200],
        render_merge_fields(template.body, values),
    )


def note_render(provider: Provider, sender: User, *, subject: str, body: str) -> tuple[str, str]:
    """The note as the partner reads it: a merge field typed by hand is filled too."""
    values = _note_values(provider, sender)
    return render_merge_fields(subject, values)[:200], render_merge_fields(body, values)


@dataclass(frozen=True)
class NoteRoute:
    """Where the note would go, as letter_route decides for every letter."""

    channel: str
    status: str
    recipient: str
    # Their office opted out for all its partners, not the partner themselves.
    office_opted_out: bool = False
    # They take letters about their patients, but no newsletters or invitations (a note
    # courting them is one).
    marketing_opted_out: bool = False

    @property
    def opted_out(self) -> bool:
        return self.status == Letter.Status.SKIPPED

    @property
    def channel_label(self) -> str:
        return Letter.Channel(self.channel).label if self.channel else ""

    @property
    def description(self) -> str:
        """How the note goes, as a phrase: "by email to dr@example.org"."""
        C = Letter.Channel
        if self.channel == C.EMAIL:
            return f"by email to {self.recipient}"
        if self.channel == C.DIRECT:
            return f"by Direct secure message to {self.recipient}"
        if self.channel == C.FAX:
            if isinstance(fax_backend(), PrintQueueFaxBackend):
                return f"by fax to {self.recipient}, faxed from the print/fax queue"
            return f"by fax to {self.recipient}"
        return "by mail, printed from the print/fax queue and mailed to the office"


def note_route(provider: Provider) -> NoteRoute:
    if provider.letters_opted_out:
        office, marketing = provider.office_opted_out and not provider.letters_opt_out, False
    else:
        marketing = provider.marketing_opted_out
        office = marketing and not provider.marketing_opt_out
    return NoteRoute(
        *letter_route(provider, K.REKINDLE),
        office_opted_out=office,
        marketing_opted_out=marketing,
    )


def note_text_error(text: str) -> str | None:
    """What keeps `text` out of a note: patient merge fields, unknown ones, template
    syntax (the rule of the rekindle note template itself)."""
    return merge_text_error(K.REKINDLE, "rekindle note", text)


def check_note_text(*, subject: str, body: str) -> None:
    """A subject and body a note may carry; raises ValidationError by field."""
    errors = {}
    for field, text in (("subject", subject), ("body", body)):
        if not text.strip():
            errors[field] = "Write something here."
        elif problem := note_text_error(text):
            errors[field] = problem
    if errors:
        raise ValidationError(errors)


def check_note_send(*, task: Task, route: NoteRoute) -> None:
    """May this task's note go out now? The task must still be open, and the partner must
    take letters."""
    if task.kind != Task.Kind.REKINDLE or task.provider_id is None:
        raise ValidationError("Only a rekindle task about a partner has a note.")
    if task.status != Task.Status.OPEN:
        raise ValidationError(
            f"This task is already {task.get_status_display().lower()}; its note was not sent."
        )
    if route.opted_out:
        who = "This partner's office" if route.office_opted_out else "This partner"
        what = "newsletters and invitations" if route.marketing_opted_out else "letters"
        raise ValidationError(
            f"{who} opted out of {what}, so no note is sent. Call or visit instead, "
            "and log it as an activity."
        )


@dataclass(frozen=True)
class NoteSent:
    letter: Letter
    # False when the task already had its note (a second press, a re-posted form).
    created: bool


@transaction.atomic
def rekindle_note_send(*, task: Task, subject: str, body: str, actor: User) -> NoteSent:
    """Send the note for a rekindle task (see the module's rule), once per task."""
    # Under the task's row lock a second post waits for the first, then finds its note.
    locked = Task.objects.select_for_update().get(pk=task.pk)
    existing = Letter.objects.filter(task=locked).first()
    if existing is not None:
        return NoteSent(existing, created=False)
    check_note_text(subject=subject, body=body)
    assert locked.provider_id is not None, "a rekindle task is about a partner"
    provider = Provider.objects.select_related("organization", "owner").get(pk=locked.provider_id)
    route = note_route(provider)
    check_note_send(task=locked, route=route)
    subject, body = note_render(provider, actor, subject=subject, body=body)
    letter = Letter(
        kind=K.REKINDLE,
        provider=provider,
        task=locked,
        subject=subject,
        body=body,
        due_on=timezone.localdate(),
        channel=route.channel,
        status=route.status,
        recipient=route.recipient,
        message_id=new_message_id(),
    )
    letter.full_clean()
    letter.save()
    # The touch: where we left off, the partner's last touch (the queue leaves them alone
    # for a while, as after a call) and the liaison's activity.
    activity_log(
        activity=Activity(
            kind=Activity.Kind.LETTER,
            organization=provider.organization,
            notes=f"Rekindle note by {route.channel_label.lower()}: “{subject}”",
        ),
        providers=[provider],
        staff=[],
        actor=actor,
    )
    locked.status = Task.Status.DONE
    locked.completed_at = timezone.now()
    locked.save(update_fields=["status", "completed_at"])
    from outreach.tasks import deliver_letter

    enqueue_on_commit(deliver_letter, letter.pk)
    return NoteSent(letter, created=True)
