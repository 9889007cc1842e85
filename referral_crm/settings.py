"""Settings for Referral CRM, driven by the environment (django-environ).

Development defaults need nothing: SQLite in ./var and a Celery broker on the local
filesystem, so a real worker and beat run without any server. Set DATABASE_URL and
REDIS_URL for Postgres and Redis. DJANGO_ENV=production turns on the strict checks:
a missing secret key or host list stops the process at start instead of running unsafely.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

# Runtime files (SQLite database, filesystem broker queue, uploads). Never committed.
VAR_DIR = Path(env.str("REFERRAL_CRM_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "production"}:
    raise ImproperlyConfigured("DJANGO_ENV must be 'development' or 'production'.")
IS_PRODUCTION = DJANGO_ENV == "production"

DEBUG = env.bool("DJANGO_DEBUG", default=False)
if IS_PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be off in production: it leaks patient data.")

if IS_PRODUCTION:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY")
    if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure"):
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be a long random value in production.")
    ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
else:
    # Development only; production refuses to start without its own key.
    SECRET_KEY = env.str(
        "DJANGO_SECRET_KEY", default="django-insecure-development-only-key-not-for-production"
    )
    ALLOWED_HOSTS = env.list(
        "DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"]
    )
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.forms",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_filters",
    "django_htmx",
    "template_partials",
    "bootstrap",
    "simple_history",
    "core",
    "partners",
    "referrals",
    "outreach",
    "intake",
    "audit",
    "registry",
    "accounts",
    "rest_framework",
    "knox",
    "drf_spectacular",
    # After knox: its admin replaces knox's token admin.
    "interop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before the session is read: a NUL in an admin list's filter is refused outright.
    "core.middleware.AdminNulMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After WhiteNoise: the policy is for pages and API answers, not our own static files.
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Inside SessionMiddleware, so the session it marks modified is saved on the way out.
    "core.middleware.IdleLogoffMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Names who made each change in a partner's or office's history (partners/history.py).
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # After authentication and htmx: a manager or administrator who has given only the
    # password reaches nothing but the page asking for the second factor.
    "accounts.middleware.TwoFactorMiddleware",
    # After htmx and messages: turns a redirect to sign in into what a signed-out user needs.
    "core.middleware.SignedOutMiddleware",
    "core.middleware.NoStoreMiddleware",
    "core.middleware.MethodNotAllowedPageMiddleware",
    # Last, so it sees the final authentication result.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "referral_crm.urls"
WSGI_APPLICATION = "referral_crm.wsgi.application"

# The same for both template engines: a page reads the same user, role and messages
# whichever kind it is.
CONTEXT_PROCESSORS = [
    "django.template.context_processors.request",
    "django.contrib.auth.context_processors.auth",
    "core.context_processors.remembered_perms",
    "django.contrib.messages.context_processors.messages",
    "core.context_processors.navigation",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": CONTEXT_PROCESSORS,
        },
    },
    {
        # The busiest pages and the page chrome (core/jinja_env.py says why); templates in
        # each app's jinja2/ folder.
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "environment": "core.jinja_env.environment",
            "autoescape": True,
            "context_processors": CONTEXT_PROCESSORS,
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the web process, the worker and beat read while one of them writes;
        # IMMEDIATE transactions take the write lock up front instead of failing mid-way.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not memory: the test suite's Celery worker is another process.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Parameters bound by the server, and a statement run a few times on a connection is
    # prepared: Postgres then skips parsing and planning it, which was half of its CPU per
    # page view (docs/benchmarks.md, "Scale: findings"). A transaction-pooling pgbouncer
    # in front of Postgres cannot keep prepared statements: DATABASE_PREPARE_THRESHOLD=0
    # turns them off.
    _prepare_threshold = env.int("DATABASE_PREPARE_THRESHOLD", default=5)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True,
        prepare_threshold=_prepare_threshold or None,
    )
    if _prepare_threshold:
        # A prepared statement is still planned for its values each time: a generic plan
        # cannot use a partial index (the open referrals', the outbound ones'), and the
        # queue's count fell back to reading every referral once Postgres chose one
        # (6 → 44 ms at a million). Parsing is still saved.
        DATABASES["default"]["OPTIONS"]["options"] = "-c plan_cache_mode=force_custom_plan"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth and sessions ----------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend, with the user's groups and permissions read in one query.
    "core.auth.AccessBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "core:dashboard"
LOGOUT_REDIRECT_URL = "login"

# Automatic logoff: a session idle for 15 minutes ends (HIPAA workstation safeguard).
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_SECONDS", default=15 * 60)
# core.middleware.IdleLogoffMiddleware re-saves an active session at most once a minute
# (not on every request: that would be a database write per page view).
SESSION_TOUCH_SECONDS = 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# Login lockout (django-axes): five failures for one username lock it for 15 minutes.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=15)
# By username only: a whole clinic shares one public IP address, and locking that address
# would lock every colleague out along with the attacker.
AXES_LOCKOUT_PARAMETERS = ["username"]
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_RESET_ON_SUCCESS = True
# The 15 minutes run from the last failure before the lockout, as the locked-out page says:
# a try while locked out (the user's own right password, or anyone's one post every few
# minutes) must not start them again, or the account stays locked for as long as it is tried.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_USERNAME_CALLABLE = "core.lockout.lockout_username"

# Two-factor sign-in (accounts/): managers and administrators must set up an authenticator
# app; anyone else may. Off only for the local demo (bin/run), and `check --deploy` warns.
TWO_FACTOR_REQUIRED = env.bool("TWO_FACTOR_REQUIRED", default=True)
if IS_PRODUCTION and not TWO_FACTOR_REQUIRED:
    raise ImproperlyConfigured(
        "TWO_FACTOR_REQUIRED cannot be off in production: managers and administrators see "
        "every patient's details."
    )
# How the authenticator app lists the account.
OTP_TOTP_ISSUER = "Referral CRM"
# A wrong code makes the next try wait 1, 2, 4, 8... seconds (django-otp's throttling).
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("PRACTICE_TIME_ZONE", default="America/New_York")
# English only: without the translation machinery every rendered string costs less.
USE_I18N = False
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if IS_PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Outside production the app serves assets straight from the installed packages.
WHITENOISE_USE_FINDERS = not IS_PRODUCTION
MEDIA_ROOT = VAR_DIR / "media"
# Referral documents: outside STATIC_ROOT and MEDIA_ROOT, with no URL; served only
# through a permission-checked, audited view.
PRIVATE_STORAGE_ROOT = Path(env.str("PRIVATE_STORAGE_ROOT", default=str(VAR_DIR / "private")))
ATTACHMENT_MAX_BYTES = env.int("ATTACHMENT_MAX_BYTES", default=15 * 1024 * 1024)
ATTACHMENT_MAX_FILES = 5
# An office's link accepts this many referrals an hour, then refuses until it cools off.
INTAKE_LINK_SUBMISSIONS_PER_HOUR = env.int("INTAKE_LINK_SUBMISSIONS_PER_HOUR", default=20)
# Same patient (last name and birth date) and same partner within this many days is
# flagged as a possible duplicate before a referral is saved.
DUPLICATE_WINDOW_DAYS = env.int("DUPLICATE_WINDOW_DAYS", default=30)

# Form widgets may use templates from templates/ (e.g. the provider type-ahead).
FORM_RENDERER = "core.renderers.WidgetRenderer"

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- Email ----------------------------------------------------------------------------------
if "EMAIL_URL" in env:
    vars().update(env.email_url("EMAIL_URL"))
else:
    # Without EMAIL_URL each email is written as a file in var/outbox instead of sent.
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = VAR_DIR / "outbox"
PRACTICE_NAME = env.str("PRACTICE_NAME", default="Riverside Orthopedics")
# Where staff reach this app: the links in reminder and digest emails start with it.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Referral CRM <referrals@localhost>")
# The letterhead on PDF letters and HTML emails.
PRACTICE_ADDRESS = env.list(
    "PRACTICE_ADDRESS", default=["100 River Road, Suite 200", "Riverside, NY 10001"]
)
PRACTICE_PHONE = env.str("PRACTICE_PHONE", default="(555) 010-2000")
# The designated referral fax line, given to an office whose link cannot be used.
PRACTICE_FAX = env.str("PRACTICE_FAX", default="(555) 010-2001")
# Our own clinicians' NPIs: in CMS shared patient patterns, the pairs that end with us.
PRACTICE_NPIS = [npi.strip() for npi in env.list("PRACTICE_NPIS", default=[]) if npi.strip()]
# The right-hand side of every letter's Message-ID (its idempotency key).
MESSAGE_ID_DOMAIN = env.str("MESSAGE_ID_DOMAIN", default="referral-crm.localhost")
# A refused or silent SMTP server must fail the attempt (then retry), never hang a worker.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# A letter claimed by a worker that has not finished within this time is presumed lost
# with its worker and handed out again by the sweep; failed deliveries retry with
# exponential backoff from this many seconds.
LETTER_STALE_CLAIM_SECONDS = env.int("LETTER_STALE_CLAIM_SECONDS", default=600)
LETTER_RETRY_BACKOFF_SECONDS = env.int("LETTER_RETRY_BACKOFF_SECONDS", default=30)
# Dotted path to the fax transmission backend; the default leaves faxes in the print queue.
FAX_BACKEND = env.str("FAX_BACKEND", default="outreach.fax.PrintQueueFaxBackend")
# Direct secure messaging: the SMTP relay of the practice's HISP (e.g.
# smtp+tls://user:pass@hisp.example.net:587) and the practice's own Direct address. Unset,
# partners who prefer the portal get email (then fax, then mail) instead.
DIRECT_EMAIL = env.email_url("DIRECT_EMAIL_URL") if "DIRECT_EMAIL_URL" in env else None
DIRECT_FROM_EMAIL = env.str("DIRECT_FROM_EMAIL", default="")

# --- Celery ---------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
REDIS_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
    "visibility_timeout": 600,
    # Publishing gives up after one quick retry instead of kombu's default of several
    # seconds: with Redis down a request must not hang; the beat sweep re-drives
    # whatever could not be enqueued (see core/enqueue.py).
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = REDIS_BROKER_TRANSPORT_OPTIONS
else:
    # No server needed: kombu's filesystem transport, consumed by a real worker.
    _queue_dir = VAR_DIR / "celery" / "queue"
    _queue_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        # Broadcast (remote control) messages; kombu's default is ./control in the cwd.
        "control_folder": str(VAR_DIR / "celery" / "control"),
    }
# Tests give their worker a queue of its own; production uses the default.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="celery")
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
LOOP_SWEEP_SECONDS = env.float("LOOP_SWEEP_SECONDS", default=60.0)
# Days after the specialist saw an outbound referral's patient before a missing consult
# report gets a reminder task.
CONSULT_REPORT_REMINDER_DAYS = env.int("CONSULT_REPORT_REMINDER_DAYS", default=21)


def _consult_report_window_days(*, reminder_days: int) -> int:
    """Patients seen longer ago than this many days get no reminder: outbound referrals
    entered as history (sent and seen months ago, no report recorded) would each get one
    the first night. A live referral is reminded by the nightly run long before."""
    window = env.int("CONSULT_REPORT_REMINDER_WINDOW_DAYS", default=90)
    if window <= reminder_days:
        raise ImproperlyConfigured(
            "CONSULT_REPORT_REMINDER_WINDOW_DAYS must be more than CONSULT_REPORT_REMINDER_DAYS "
            f"({reminder_days}), or no consult report is ever chased."
        )
    return window


CONSULT_REPORT_REMINDER_WINDOW_DAYS = _consult_report_window_days(
    reminder_days=CONSULT_REPORT_REMINDER_DAYS
)
CELERY_BEAT_SCHEDULE = {
    # The database holds every due date; this sweep hands due work to the workers and
    # re-drives anything whose enqueue was lost (Redis down, worker killed).
    "sweep-loop-work": {
        "task": "outreach.tasks.sweep_loop_work",
        "schedule": LOOP_SWEEP_SECONDS,
    },
    "remind-missing-consult-reports": {
        "task": "referrals.tasks.remind_missing_consult_reports",
        "schedule": crontab(hour=2, minute=15),
    },
    # Nightly tiering and relationship health of every partner (partners.tasks).
    "assess-partners-nightly": {
        "task": "partners.tasks.assess_partners",
        "schedule": crontab(hour=2, minute=30),
    },
    "sweep-partner-imports": {
        "task": "partners.tasks.sweep_partner_imports",
        "schedule": 300.0,
    },
    # NPPES uploads whose task message or worker was lost are run again (registry.tasks).
    "sweep-registry-imports": {
        "task": "registry.tasks.sweep_import_jobs",
        "schedule": 300.0,
    },
    # Nightly: partners whose referrals dropped or stopped become tasks, with reasons.
    "build-rekindle-queue": {
        "task": "outreach.tasks.build_rekindle_queue",
        "schedule": crontab(hour=2, minute=15),
    },
    # Key partners whose annual meeting fell due become tasks for their owners. Before
    # the digest, so the morning email lists them.
    "remind-annual-meetings": {
        "task": "outreach.tasks.remind_annual_meetings",
        "schedule": crontab(hour=2, minute=45),
    },
    # Reminder letters to invitees of upcoming events (Event.remind_days_before); again
    # each hour of the working day, so an invitee added, or an event moved, after 7:00 is
    # reminded that day rather than the next morning, maybe after the event (each
    # invitation gets one reminder per date and place, however often this runs).
    "send-event-reminders": {
        "task": "outreach.tasks.send_event_reminders",
        "schedule": crontab(hour="7-18", minute=0),
    },
    # Weekly and monthly consult report summaries for the periods that just ended.
    "send-report-summaries": {
        "task": "outreach.tasks.send_report_summaries",
        "schedule": crontab(hour=6, minute=45),
    },
    # An email to each follow-up task's owner on its due date; again each hour until 8:35
    # for a reminder the mail server refused (each is sent once: Task.reminded_at).
    "send-follow-up-reminders": {
        "task": "outreach.tasks.send_follow_up_reminders",
        "schedule": crontab(hour="6-8", minute=35),
    },
    # Each liaison's plan for the day, before they head out; again each hour until 8:30
    # for a digest the mail server refused (each is sent once a day: DigestDelivery).
    "send-liaison-digests": {
        "task": "outreach.tasks.send_liaison_digests",
        "schedule": crontab(hour="6-8", minute=30),
    },
    # Documents kept for a form that was never sent are deleted after a day (intake.tasks).
    "delete-stale-staged-documents": {
        "task": "intake.tasks.delete_stale_staged_documents",
        "schedule": crontab(minute=40),
    },
    # Expired API tokens are deleted (interop.tasks); knox refuses them meanwhile.
    "delete-expired-api-tokens": {
        "task": "interop.tasks.delete_expired_api_tokens",
        "schedule": crontab(hour=3, minute=10),
    },
}

# --- Logging --------------------------------------------------------------------------------
# Patient data never goes into logs: nothing here logs request bodies or model values.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"refusals": {"()": "core.log_filters.RefusalsWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "axes": {"level": "WARNING"},
        # A 403 or 404 is one line, not a traceback.
        "django.request": {"filters": ["refusals"]},
    },
}


# --- API (interop/) --------------------------------------------------------------------------
def _throttle_rate(name: str, *, default: str) -> str:
    """A DRF rate ("120/minute"); refused at start, not at the first request."""
    rate = env.str(name, default=default)
    count, _, period = rate.partition("/")
    if not count.isdigit() or period not in {"second", "minute", "hour", "day"}:
        raise ImproperlyConfigured(f"{name} must be like 120/minute (second, minute, hour, day).")
    return rate


# Request counts for the API's throttling, shared by every web process when Redis is there
# (a per-process memory cache would multiply each budget by the number of workers).
CACHES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "api-throttle": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "throttle",
        # A Redis that does not answer must not hold up a request (the throttle lets it by).
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "api-throttle"},
}
# Scripts and EHRs authenticate with a token only (never the browser session, so the
# session's CSRF and two-factor rules do not apply, and a stolen cookie opens no API).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["interop.authentication.ApiTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: no browsable API pages (their forms and scripts are not the product).
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "interop.api.negotiation.SaysWhichFormats",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # Budgets per token (interop.throttling), for the REST API and the FHIR facade.
    "DEFAULT_THROTTLE_CLASSES": ["interop.throttling.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "api": _throttle_rate("API_THROTTLE_RATE", default="120/minute"),
        "fhir": _throttle_rate("FHIR_THROTTLE_RATE", default="120/minute"),
    },
}
# The REST API's OpenAPI schema (/api/v1/schema/); no UI served from a CDN.
SPECTACULAR_SETTINGS = {
    "TITLE": "Referral CRM API",
    "DESCRIPTION": "Partners and referrals, read only. Authenticate with "
    "`Authorization: Bearer <token>` (manage.py create_api_token).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # A name that says whose reason it is, not a bare "ReasonEnum".
    "ENUM_NAME_OVERRIDES": {"RemovalReasonEnum": "partners.models.ProviderRemoval.Reason"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "interop.api.schema.document_errors",
    ],
}
# Days a token made by `create_api_token` lasts unless --days says otherwise.
API_TOKEN_DAYS = env.int("API_TOKEN_DAYS", default=90)
REST_KNOX = {
    # Sent as `Authorization: Bearer <token>`, the scheme EHR and FHIR clients use.
    "AUTH_HEADER_PREFIX": "Bearer",
    "TOKEN_TTL": timedelta(days=API_TOKEN_DAYS),
    # A recognisable prefix lets secret scanners spot a token pasted where it should not be.
    "TOKEN_PREFIX": "rcrm_",
}

# How many reverse proxies (load balancer, nginx) stand in front of the app, each appending
# to X-Forwarded-For: the audit trail and the API budgets read the client's address that
# many entries from the right (core.client_ip). 0 believes no X-Forwarded-For at all.
TRUSTED_PROXIES = env.int("TRUSTED_PROXIES", default=0)
# (DRF, left unset, would believe any X-Forwarded-For for anonymous budgets.)
REST_FRAMEWORK["NUM_PROXIES"] = TRUSTED_PROXIES

# --- Production hardening -------------------------------------------------------------------
if IS_PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp) on every response, the API and the public intake
# form included: only this site's own scripts, styles, frames and connections, and no
# inline script or style at all (no 'unsafe-inline', no 'unsafe-eval'): pages that show
# patients load no third-party code, and an injected <script> or style attribute does nothing.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        # data: for Bootstrap's icons drawn in its CSS; blob: for the faxed document that
        # the referral form previews before it is sent (static/js/app.js, data-preview).
        "img-src": [SELF, "data:", "blob:"],
        "frame-src": [SELF, "blob:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        # The same as X-Frame-Options: DENY, for browsers that read only the policy.
        "frame-ancestors": [NONE],
        # What a browser refused is logged (core.csp), so a broken page is seen.
        "report-uri": ["/csp-report/"],
    }
}
SESSION_COOKIE_HTTPONLY = True
