"""Working the network: activities with partners, tasks, and the letters we send back.

One module per resource. Every model is imported here, so Django finds them and
`from outreach.models import Letter` works wherever a model is needed."""

from outreach.models.activities import Activity
from outreach.models.compliance import ActivityShare, ComplianceLimit
from outreach.models.day_plan import CalendarFeed, DigestDelivery, PlannedVisit, PlannedVisitEvent
from outreach.models.events import Event, Invitation
from outreach.models.letters import Letter, LetterEvent, LetterTemplate
from outreach.models.newsletters import NewsletterIssue
from outreach.models.tasks import Task

__all__ = [
    "Activity",
    "ActivityShare",
    "CalendarFeed",
    "ComplianceLimit",
    "DigestDelivery",
    "Event",
    "Invitation",
    "Letter",
    "LetterEvent",
    "LetterTemplate",
    "NewsletterIssue",
    "PlannedVisit",
    "PlannedVisitEvent",
    "Task",
]
