"""Skylight settings: one file, driven by the environment.

With no environment at all Skylight runs the embedded default: SQLite and local files under
``SKYLIGHT_DATA_DIR`` (``./data``) and Celery tasks executed in-process. Production sets
``DATABASE_URL`` (PostgreSQL), ``CELERY_BROKER_URL`` (Redis or RabbitMQ) and the ``SKYLIGHT_S3_*``
variables. A bad value stops the process at start with a message that names the variable.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------
# Helpers: every one rejects a bad value loudly, naming the variable.
# ---------------------------------------------------------------------------------------------


def _bad(name: str, problem: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"Environment variable {name}: {problem}")


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise _bad(name, f"expected true/false, got {raw!r}")


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise _bad(name, f"expected an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise _bad(name, f"must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise _bad(name, f"must be at most {maximum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise _bad(name, f"expected a number, got {raw!r}") from None
    if value < minimum:
        raise _bad(name, f"must be at least {minimum}, got {value}")
    return value


def env_secret(name: str, default: str = "") -> str:
    """Read NAME, or the file named by NAME_FILE (for Docker/Kubernetes secrets)."""
    file_name = os.environ.get(f"{name}_FILE", "").strip()
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise _bad(f"{name}_FILE", f"cannot read {file_name!r} ({exc.strerror})") from None
    return os.environ.get(name, default).strip()


def env_url(name: str, schemes: set[str], default: str = "") -> str:
    raw = env_str(name, default)
    if not raw:
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in schemes:
        allowed = ", ".join(sorted(schemes))
        raise _bad(name, f"URL scheme must be one of {allowed}, got {parts.scheme or 'none'!r}")
    if not parts.hostname and parts.scheme not in {"sqlite"}:
        raise _bad(name, "URL has no host")
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise _bad(name, "URL has an invalid port") from None
    return raw


def env_networks(name: str, default: str = "") -> list[str]:
    raw = env_str(name, default)
    networks = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise _bad(name, f"{item!r} is not an IP network") from None
    return networks


# ---------------------------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------------------------

DATA_DIR = Path(env_str("SKYLIGHT_DATA_DIR", str(BASE_DIR / "data"))).resolve()
DEBUG = env_bool("SKYLIGHT_DEBUG", False)

SECRET_KEY = env_secret("SKYLIGHT_SECRET_KEY")
if not SECRET_KEY:
    # Embedded default: a key made once and kept in the data folder, so sessions survive restarts.
    key_file = DATA_DIR / "secret_key"
    if key_file.exists():
        SECRET_KEY = key_file.read_text().strip()
    else:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        SECRET_KEY = secrets.token_urlsafe(50)
        key_file.write_text(SECRET_KEY)
        key_file.chmod(0o600)

ALLOWED_HOSTS = [
    h.strip()
    for h in env_str("SKYLIGHT_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in env_str("SKYLIGHT_CSRF_TRUSTED_ORIGINS").split(",") if o.strip()
]
# Absolute URLs in DICOMweb answers (RetrieveURL, BulkDataURI) use this root when set; otherwise
# they follow the request (X-Forwarded-Proto/Host are honoured behind a proxy).
PUBLIC_URL = env_url("SKYLIGHT_PUBLIC_URL", {"http", "https"}).rstrip("/")
USE_X_FORWARDED_HOST = env_bool("SKYLIGHT_BEHIND_PROXY", False)
if USE_X_FORWARDED_HOST:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "guardian",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "tenants",
    "studies",
    "worklists",
    "django_htmx",
    "reports",
    "viewer",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "tenants.headers.ContentSecurityPolicyMiddleware",
    # Only application/dicom+json (never HTML, whose CSRF tokens BREACH could recover).
    "studies.dicomweb.responses.DicomJsonGZipMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Authentication (issue 7): which device verified this session, the session's clocks, and
    # "enrol or verify before anything else".
    "django_otp.middleware.OTPMiddleware",
    "tenants.sessions.SessionClockMiddleware",
    "tenants.mfa.MfaRequiredMiddleware",
    # PostgreSQL row-level security: the request's tenants (tenants/rls.py).
    "tenants.rls.TenantContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it answers a locked-out login with our own message.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "tenants.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username+address before the password is even checked.
    "tenants.auth.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenants.mfa.context",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# The OHIF viewer served at /viewer/: the prebuilt dist of npm @ohif/app, installed and rewritten
# by infra/install-ohif.sh (never committed).
OHIF_VERSION = "3.13.2"
OHIF_DIST = (
    Path(env_str("SKYLIGHT_OHIF_DIR", str(BASE_DIR / "var" / "ohif"))) / OHIF_VERSION / "dist"
)
STATIC_ROOT = DATA_DIR / "static"
WHITENOISE_USE_FINDERS = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------------------------------------
# Authentication (issue 7): cookies, session clocks, MFA, lockout, API token lifetimes.
# ---------------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("SKYLIGHT_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# The session ends with the browser, and in any case at the absolute lifetime below.
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SKYLIGHT_IDLE_TIMEOUT_MINUTES = env_int("SKYLIGHT_IDLE_TIMEOUT_MINUTES", 30, minimum=1)
SKYLIGHT_SESSION_LIFETIME_HOURS = env_int("SKYLIGHT_SESSION_LIFETIME_HOURS", 12, minimum=1)
SESSION_COOKIE_AGE = SKYLIGHT_SESSION_LIFETIME_HOURS * 3600
# Radiologists, admins and staff must verify a TOTP code after their password. Off only for
# test runs that log in through the form without a second factor.
SKYLIGHT_MFA_REQUIRED = env_bool("SKYLIGHT_MFA_REQUIRED", True)
SKYLIGHT_MFA_MAX_ATTEMPTS = env_int("SKYLIGHT_MFA_MAX_ATTEMPTS", 5, minimum=1)
OTP_TOTP_ISSUER = "Skylight"
# django-otp's own back-off would refuse a right code for seconds after a typo; tenants.mfa
# counts wrong codes itself (5 in 15 minutes lock the second step) and audits each.
OTP_TOTP_THROTTLE_FACTOR = 0
OTP_STATIC_THROTTLE_FACTOR = 0
# django-axes: 5 failed passwords for one username from one address lock that pair 15 minutes.
AXES_FAILURE_LIMIT = env_int("SKYLIGHT_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("SKYLIGHT_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "tenants.auth.client_address"
AXES_LOCKOUT_CALLABLE = "tenants.views.locked_out"
AXES_VERBOSE = False
# API tokens expire: after this many days unless asked otherwise, and never later than the max.
SKYLIGHT_TOKEN_DEFAULT_DAYS = env_int("SKYLIGHT_TOKEN_DEFAULT_DAYS", 90, minimum=1)
SKYLIGHT_TOKEN_MAX_DAYS = env_int("SKYLIGHT_TOKEN_MAX_DAYS", 365, minimum=1)
# The reading room shows the viewer beside the report in a frame of our own pages; other sites
# still cannot frame ours (clickjacking).
X_FRAME_OPTIONS = "SAMEORIGIN"

# Security headers (docs/security.md). TLS terminates at the proxy in front of the web tier: set
# SKYLIGHT_BEHIND_PROXY (the proxy sends X-Forwarded-Proto) and SKYLIGHT_SECURE_COOKIES, and HSTS
# is sent on every HTTPS response for a year unless SKYLIGHT_HSTS_SECONDS says otherwise.
# Content-Security-Policy comes from tenants/headers.py (one policy for our pages, one for OHIF).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SECURE_HSTS_SECONDS = env_int(
    "SKYLIGHT_HSTS_SECONDS", 31_536_000 if SESSION_COOKIE_SECURE else 0, minimum=0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SKYLIGHT_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = False
SECURE_SSL_REDIRECT = env_bool("SKYLIGHT_SSL_REDIRECT", False)

# ---------------------------------------------------------------------------------------------
# Database: PostgreSQL from DATABASE_URL, or the embedded SQLite file.
# ---------------------------------------------------------------------------------------------

# WAL and IMMEDIATE transactions let the SCP threads, the web threads and the in-process tasks
# share one SQLite file without "database is locked" errors.
_SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 30,
}
DATABASE_URL = env_url("DATABASE_URL", {"postgres", "postgresql", "pgsql", "sqlite"})
if DATABASE_URL:
    import dj_database_url

    try:
        DATABASES = {
            "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
        }
    except ValueError as exc:
        raise _bad("DATABASE_URL", str(exc)) from None
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        DATABASES["default"]["OPTIONS"] = dict(_SQLITE_OPTIONS)
        DATABASES["default"]["CONN_MAX_AGE"] = 0
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int(
            "SKYLIGHT_DB_CONNECT_TIMEOUT", 10, minimum=1
        )
        DATABASES["default"]["TEST"] = {"NAME": env_str("SKYLIGHT_TEST_DB_NAME") or None}
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "skylight.sqlite3"),
            "OPTIONS": dict(_SQLITE_OPTIONS),
            # A file, not memory, so the test suite's web and worker processes share it.
            "TEST": {"NAME": str(DATA_DIR / "test-skylight.sqlite3")},
        }
    }
IS_POSTGRESQL = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"

# ---------------------------------------------------------------------------------------------
# Object storage: S3 (django-storages + boto3) or durable local files.
# ---------------------------------------------------------------------------------------------

S3_BUCKET = env_str("SKYLIGHT_S3_BUCKET")
S3_ENDPOINT_URL = env_url("SKYLIGHT_S3_ENDPOINT_URL", {"http", "https"})
if S3_BUCKET:
    S3_ACCESS_KEY_ID = env_secret("SKYLIGHT_S3_ACCESS_KEY_ID")
    S3_SECRET_ACCESS_KEY = env_secret("SKYLIGHT_S3_SECRET_ACCESS_KEY")
    if bool(S3_ACCESS_KEY_ID) != bool(S3_SECRET_ACCESS_KEY):
        raise _bad(
            "SKYLIGHT_S3_SECRET_ACCESS_KEY",
            "set both SKYLIGHT_S3_ACCESS_KEY_ID and SKYLIGHT_S3_SECRET_ACCESS_KEY, or neither",
        )
    S3_REGION = env_str("SKYLIGHT_S3_REGION", "us-east-1")
    DICOM_STORAGE = {
        "BACKEND": "studies.storage.S3ObjectStorage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": S3_ENDPOINT_URL or None,
            "access_key": S3_ACCESS_KEY_ID or None,
            "secret_key": S3_SECRET_ACCESS_KEY or None,
            "region_name": S3_REGION,
            "addressing_style": env_str("SKYLIGHT_S3_ADDRESSING_STYLE", "path"),
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": False,
            "location": "",
        },
    }
else:
    if S3_ENDPOINT_URL:
        raise _bad("SKYLIGHT_S3_BUCKET", "SKYLIGHT_S3_ENDPOINT_URL is set but no bucket is named")
    DICOM_STORAGE = {
        "BACKEND": "studies.storage.DurableFileSystemStorage",
        "OPTIONS": {"location": str(DATA_DIR / "objects")},
    }

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    "dicom": DICOM_STORAGE,
}

# ---------------------------------------------------------------------------------------------
# Celery: a broker from CELERY_BROKER_URL, or tasks executed in-process (embedded default).
# ---------------------------------------------------------------------------------------------

CELERY_BROKER_URL = env_url("CELERY_BROKER_URL", {"redis", "rediss", "amqp", "amqps", "pyamqp"})
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "ingest"
CELERY_TASK_ROUTES = {
    "studies.tasks.index_receipts": {"queue": "ingest"},
    "studies.tasks.reconcile_receipts": {"queue": "ingest"},
    "studies.tasks.sweep_ready_studies": {"queue": "ingest"},
    "worklists.tasks.auto_assign": {"queue": "ingest"},
    "worklists.tasks.housekeeping": {"queue": "ingest"},
    "worklists.tasks.prefetch_priors": {"queue": "prefetch"},
    "reports.critical.tasks.escalate_critical": {"queue": "ingest"},
    "reports.delivery.tasks.deliver": {"queue": "ingest"},
    "reports.delivery.tasks.sweep_deliveries": {"queue": "ingest"},
    "tenants.tasks.seal_audit_log": {"queue": "ingest"},
}
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Redis re-delivers an unacknowledged task (its worker died) after this many seconds.
    "visibility_timeout": env_int("SKYLIGHT_BROKER_VISIBILITY_TIMEOUT", 600, minimum=5),
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
READY_SWEEP_SECONDS = env_float("SKYLIGHT_READY_SWEEP_SECONDS", 5.0, minimum=0.5)
# Lease expiry, SLA escalation and the missed-item net of the worklist run this often.
WORKLIST_HOUSEKEEPING_SECONDS = env_float(
    "SKYLIGHT_WORKLIST_HOUSEKEEPING_SECONDS", 10.0, minimum=0.5
)
RECONCILE_SECONDS = env_float("SKYLIGHT_RECONCILE_SECONDS", 30.0, minimum=1.0)
# Critical results not acknowledged within their hospital's limit are escalated this often.
CRITICAL_ESCALATION_SECONDS = env_float("SKYLIGHT_CRITICAL_ESCALATION_SECONDS", 30.0, minimum=1.0)
# Break-glass: how long a hospital radiologist's emergency read access to one work item lasts.
BREAK_GLASS_MINUTES = env_int("SKYLIGHT_BREAK_GLASS_MINUTES", 60, minimum=5)
# How often new audit rows are sealed into their tenant's hash chain.
AUDIT_SEAL_SECONDS = env_float("SKYLIGHT_AUDIT_SEAL_SECONDS", 5.0, minimum=0.5)
CELERY_BEAT_SCHEDULE = {
    "sweep-ready-studies": {
        "task": "studies.tasks.sweep_ready_studies",
        "schedule": READY_SWEEP_SECONDS,
    },
    "reconcile-receipts": {
        "task": "studies.tasks.reconcile_receipts",
        "schedule": RECONCILE_SECONDS,
    },
    "worklist-housekeeping": {
        "task": "worklists.tasks.housekeeping",
        "schedule": WORKLIST_HOUSEKEEPING_SECONDS,
    },
    "critical-escalation": {
        "task": "reports.critical.tasks.escalate_critical",
        "schedule": CRITICAL_ESCALATION_SECONDS,
    },
    # Report deliveries whose task the broker lost are queued again (reports/delivery/services).
    "sweep-deliveries": {"task": "reports.delivery.tasks.sweep_deliveries", "schedule": 60.0},
    # New audit rows are linked into their tenant's hash chain (tenants/audit.py).
    "seal-audit-log": {"task": "tenants.tasks.seal_audit_log", "schedule": AUDIT_SEAL_SECONDS},
    # Licences and privileges ending in 30 and 7 days: one mail each (worklists/groupadmin).
    "remind-expiring-credentials": {
        "task": "worklists.groupadmin.tasks.remind_expiring_credentials",
        "schedule": 3600.0,
    },
    # Studies past their hospital's retention policy are purged (studies/retention).
    "apply-retention": {"task": "studies.retention.tasks.apply_retention", "schedule": 3600.0},
}
# Task modules that autodiscovery (``<app>.tasks``) does not find.
CELERY_IMPORTS = ("worklists.groupadmin.tasks", "studies.retention.tasks")

# ---------------------------------------------------------------------------------------------
# Skylight behaviour
# ---------------------------------------------------------------------------------------------

SKYLIGHT: dict[str, Any] = {
    "SCP_HOST": env_str("SKYLIGHT_SCP_HOST", "127.0.0.1"),
    "SCP_PORT": env_int("SKYLIGHT_SCP_PORT", 11112, minimum=1, maximum=65535),
    # The host name modalities are told to send to (the set-up wizard's DICOM page); the
    # listening address when unset.
    "SCP_PUBLIC_HOST": env_str("SKYLIGHT_SCP_PUBLIC_HOST", ""),
    "SCP_MAX_ASSOCIATIONS": env_int("SKYLIGHT_SCP_MAX_ASSOCIATIONS", 32, minimum=1),
    "SCP_MAX_PDU": env_int("SKYLIGHT_SCP_MAX_PDU", 1048576, minimum=0),
    # DICOM TLS (studies/dimse/tls.py): a second listener, off unless a port is given (2762 is
    # the registered port). With a CA, senders must present a certificate it signed.
    "SCP_TLS_PORT": env_int("SKYLIGHT_SCP_TLS_PORT", 0, minimum=0, maximum=65535),
    "SCP_TLS_CERT": env_str("SKYLIGHT_SCP_TLS_CERT"),
    "SCP_TLS_KEY": env_str("SKYLIGHT_SCP_TLS_KEY"),
    "SCP_TLS_CA": env_str("SKYLIGHT_SCP_TLS_CA"),
    "SCP_TLS_REQUIRE_CLIENT_CERT": env_bool("SKYLIGHT_SCP_TLS_REQUIRE_CLIENT_CERT", True),
    # STOW-RS: bodies larger than this are refused with 413 before anything is stored.
    # QIDO-RS answers at most this many results per request (limit/offset page through more).
    "QIDO_MAX_RESULTS": env_int("SKYLIGHT_QIDO_MAX_RESULTS", 1000, minimum=1, maximum=100_000),
    "STOW_MAX_BODY_BYTES": env_int("SKYLIGHT_STOW_MAX_BODY_BYTES", 8 * 1024**3, minimum=1024),
    "STOW_MAX_PART_BYTES": env_int("SKYLIGHT_STOW_MAX_PART_BYTES", 4 * 1024**3, minimum=1024),
    "STOW_UPLOAD_THREADS": env_int("SKYLIGHT_STOW_UPLOAD_THREADS", 4, minimum=1, maximum=64),
    # Parts up to this size stay in memory while they are checked and uploaded; larger ones spool
    # to a temporary file, so a request's memory stays bounded whatever its size.
    "STOW_SPOOL_BYTES": env_int("SKYLIGHT_STOW_SPOOL_BYTES", 4 * 1024**2, minimum=64 * 1024),
    # A receipt still waiting for indexing after this long is queued again by the reconciler.
    "RECONCILE_AFTER_SECONDS": env_int("SKYLIGHT_RECONCILE_AFTER_SECONDS", 60, minimum=0),
    "INDEX_BATCH_SIZE": env_int("SKYLIGHT_INDEX_BATCH_SIZE", 64, minimum=1, maximum=1000),
    # Quiet period of a new tenant (each tenant can change its own).
    "DEFAULT_QUIET_PERIOD_SECONDS": env_int("SKYLIGHT_DEFAULT_QUIET_PERIOD", 60, minimum=0),
    # A series' derived data (metadata document, thumbnail) is rebuilt once no instance has
    # changed it for this long, not once per arriving instance.
    "DERIVE_QUIET_SECONDS": env_float("SKYLIGHT_DERIVE_QUIET_SECONDS", 5.0, minimum=0.0),
    "DEMO_PASSWORD": env_secret("SKYLIGHT_DEMO_PASSWORD"),
    # The demo tenants admit any calling AE title from these networks.
    "DEMO_CALLER_NETWORKS": env_networks("SKYLIGHT_DEMO_CALLER_NETWORKS", "127.0.0.0/8,::1/128"),
    # Worklist: a claim lasts this long unless the reading page's heartbeat renews it.
    "CLAIM_LEASE_SECONDS": env_int("SKYLIGHT_CLAIM_LEASE_SECONDS", 600, minimum=10),
    # Priors shown with a work item: how many, and how old at most.
    "PRIORS_COUNT": env_int("SKYLIGHT_PRIORS_COUNT", 3, minimum=0, maximum=20),
    "PRIORS_MAX_AGE_DAYS": env_int("SKYLIGHT_PRIORS_MAX_AGE_DAYS", 3650, minimum=1),
    "WORKLIST_HOUSEKEEPING_SECONDS": WORKLIST_HOUSEKEEPING_SECONDS,
    "READY_SWEEP_SECONDS": READY_SWEEP_SECONDS,
    "RECONCILE_SECONDS": RECONCILE_SECONDS,
}

if SKYLIGHT["SCP_TLS_PORT"]:
    for _name, _key in (
        ("SKYLIGHT_SCP_TLS_CERT", "SCP_TLS_CERT"),
        ("SKYLIGHT_SCP_TLS_KEY", "SCP_TLS_KEY"),
    ):
        if not SKYLIGHT[_key] or not Path(SKYLIGHT[_key]).is_file():
            raise _bad(_name, "SKYLIGHT_SCP_TLS_PORT is set, so name a readable PEM file here")
    if SKYLIGHT["SCP_TLS_CA"] and not Path(SKYLIGHT["SCP_TLS_CA"]).is_file():
        raise _bad("SKYLIGHT_SCP_TLS_CA", "name a readable PEM file of the CA that signs senders")

# ---------------------------------------------------------------------------------------------
# E-mail (invitations, notifications): SMTP when SKYLIGHT_EMAIL_HOST is set (production), else
# printed to the console (the embedded default). SKYLIGHT_EMAIL_BACKEND overrides the choice:
# console, smtp, file (Django's filebased backend into SKYLIGHT_EMAIL_FILE_PATH), locmem or a
# dotted path; tests that run the web in another process read invitations from files so.
# ---------------------------------------------------------------------------------------------

_EMAIL_BACKENDS = {
    "console": "django.core.mail.backends.console.EmailBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "file": "django.core.mail.backends.filebased.EmailBackend",
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
}
EMAIL_HOST = env_str("SKYLIGHT_EMAIL_HOST")
EMAIL_PORT = env_int("SKYLIGHT_EMAIL_PORT", 587, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("SKYLIGHT_EMAIL_USER")
EMAIL_HOST_PASSWORD = env_secret("SKYLIGHT_EMAIL_PASSWORD")
EMAIL_USE_TLS = env_bool("SKYLIGHT_EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = env_int("SKYLIGHT_EMAIL_TIMEOUT", 20, minimum=1)
DEFAULT_FROM_EMAIL = env_str("SKYLIGHT_EMAIL_FROM", "Skylight <skylight@localhost>")
_email_choice = env_str("SKYLIGHT_EMAIL_BACKEND", "smtp" if EMAIL_HOST else "console")
EMAIL_BACKEND = _EMAIL_BACKENDS.get(_email_choice, _email_choice)
if "." not in EMAIL_BACKEND:
    raise _bad("SKYLIGHT_EMAIL_BACKEND", f"expected {', '.join(_EMAIL_BACKENDS)} or a dotted path")
if EMAIL_BACKEND == _EMAIL_BACKENDS["file"]:
    EMAIL_FILE_PATH = env_str("SKYLIGHT_EMAIL_FILE_PATH") or str(DATA_DIR / "mail")
# Links in e-mails (invitations) are absolute: the address people reach Skylight at.
SKYLIGHT_PUBLIC_URL = env_url("SKYLIGHT_PUBLIC_URL", {"http", "https"}, "http://127.0.0.1:8000")
SKYLIGHT_INVITATION_DAYS = env_int("SKYLIGHT_INVITATION_DAYS", 7, minimum=1, maximum=90)

# ---------------------------------------------------------------------------------------------
# REST framework and OpenAPI
# ---------------------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Skylight API",
    "DESCRIPTION": "Multi-tenant cloud PACS. DICOMweb lives under /t/<tenant-slug>/dicomweb/.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# ---------------------------------------------------------------------------------------------
# Logging: identifiers only. Library loggers that print data sets (pynetdicom at DEBUG, pydicom
# value warnings) are held at WARNING/ERROR so patient data never reaches a log.
# ---------------------------------------------------------------------------------------------

LOG_LEVEL = env_str("SKYLIGHT_LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
    raise _bad("SKYLIGHT_LOG_LEVEL", f"expected DEBUG, INFO, WARNING or ERROR, got {LOG_LEVEL!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "pynetdicom": {"level": "WARNING"},
        "pydicom": {"level": "ERROR"},
        # highdicom logs the UIDs of the datasets it copies from at INFO: patient data.
        "highdicom": {"level": "ERROR"},
        "botocore": {"level": "WARNING"},
        "boto3": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
        # Every failure and lockout is in the audit log; axes' own lines add nothing there.
        "axes": {"level": "WARNING"},
    },
}

# ---------------------------------------------------------------------------------------------
# Operators' metrics (tenants/usage/metrics.py): GET /metrics in Prometheus text format.
# ---------------------------------------------------------------------------------------------

# With a token, /metrics answers only "Authorization: Bearer <token>"; without one, only callers
# on the loopback interface. Everyone else gets 404.
SKYLIGHT_METRICS_TOKEN = env_secret("SKYLIGHT_METRICS_TOKEN")
# Web workers, the SCP and Celery workers are separate processes: each writes its counters into
# files in one directory (prometheus-client's multiprocess mode) and /metrics adds them up. The
# library reads PROMETHEUS_MULTIPROC_DIR when it is first imported, so it is settled here, before
# any app code runs. Production sets it per host (and empties it when the host starts); the
# embedded mode keeps it in the data directory (``runall`` empties it at start).
METRICS_DIR = env_str("PROMETHEUS_MULTIPROC_DIR") or (
    "" if DATABASE_URL else str(DATA_DIR / "metrics")
)
if METRICS_DIR:
    Path(METRICS_DIR).mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = METRICS_DIR
