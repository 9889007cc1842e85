# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_ENV=production \
    REFERRAL_CRM_VAR_DIR=/app/var

WORKDIR /app
COPY requirements.lock pyproject.toml ./
RUN pip install --requirement requirements.lock
COPY . .
# collectstatic needs settings to load; the build-time key is never used at run time.
RUN DJANGO_SECRET_KEY=build-only-not-a-secret-build-only-not-a-secret-xx \
    DJANGO_ALLOWED_HOSTS=build python manage.py collectstatic --no-input -v0 \
    && mkdir -p /app/var/media /app/var/private /app/var/registry \
    && useradd --system --home /app referralcrm && chown -R referralcrm /app/var
USER referralcrm
EXPOSE 8000
CMD ["gunicorn", "referral_crm.wsgi", "--bind", "0.0.0.0:8000", "--workers", "4"]
