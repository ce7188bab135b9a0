"""Shared fixtures: the named people every test uses, a small campaign, and services.

In CI (CI=true) the suite must run on PostgreSQL and Redis: a missing service stops the
run with an error instead of skipping tests. Elsewhere, tests that need Redis skip with
the reason.
"""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.db import connection

from annotate.models import Campaign, CampaignItem, Membership, Problem, Proof, Role
from tests.browser import browser  # noqa: F401  (fixture: real Chromium, see tests/browser.py)

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PASSWORD = "correct horse battery staple"


def pytest_sessionstart(session: pytest.Session) -> None:
    if not IN_CI:
        return
    engine = settings.DATABASES["default"]["ENGINE"]
    if engine != "django.db.backends.postgresql":
        raise pytest.UsageError(f"CI=true needs DATABASE_URL pointing at PostgreSQL, got {engine}")
    if not settings.REDIS_URL:
        raise pytest.UsageError("CI=true needs REDIS_URL pointing at a Redis server")
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise pytest.UsageError(
            f"CI=true but Redis at {settings.REDIS_URL} is unreachable: {exc}"
        ) from exc


@pytest.fixture(autouse=True, scope="session")
def fast_password_hashing():
    """Production-strength PBKDF2 costs about a second per user; tests need no strength."""
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


def require_service(name: str, reason: str) -> None:
    """Skip outside CI; fail in CI (services are mandatory there)."""
    if IN_CI:
        pytest.fail(f"{name} is required in CI: {reason}")
    pytest.skip(f"{name} unavailable: {reason}")


@pytest.fixture
def redis_url() -> str:
    if not settings.REDIS_URL:
        require_service("Redis", "REDIS_URL is not set")
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        require_service("Redis", f"{settings.REDIS_URL}: {exc}")
    return settings.REDIS_URL


@pytest.fixture
def on_postgres() -> None:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        require_service("PostgreSQL", "DATABASE_URL does not point at PostgreSQL")


@pytest.fixture
def pool_for_32_threads(on_postgres):
    """Each of 32 threads (tests/work_race.py) keeps its own connection for its whole run,
    more than the default pool holds: widen the process's pool for the test, then restore it."""
    options = connection.settings_dict["OPTIONS"]
    saved = options.get("pool")
    connection.close()
    connection.close_pool()
    options["pool"] = {**(saved if isinstance(saved, dict) else {}), "max_size": 40}
    yield
    connection.close()
    connection.close_pool()
    options["pool"] = saved


def _user(django_user_model, username: str, **extra):
    return django_user_model.objects.create_user(username=username, password=PASSWORD, **extra)


@pytest.fixture
def owner(django_user_model):
    return _user(django_user_model, "olga_owner")


@pytest.fixture
def expert(django_user_model):
    return _user(django_user_model, "emmy_expert")


@pytest.fixture
def expert2(django_user_model):
    return _user(django_user_model, "david_expert")


@pytest.fixture
def reviewer(django_user_model):
    return _user(django_user_model, "rita_reviewer")


@pytest.fixture
def outsider(django_user_model):
    return _user(django_user_model, "oscar_outsider")


@pytest.fixture
def problem(db) -> Problem:
    return Problem.objects.create(
        external_id="PB-Test-001",
        statement="Prove that $\\sqrt{2}$ is irrational.",
        reference_solution="Suppose $\\sqrt 2 = p/q$ in lowest terms...",
        guidelines="(Partial) 1. Set up the contradiction.",
        category="number_theory",
        level="pre-IMO",
        source="Folklore",
    )


@pytest.fixture
def proof(problem) -> Proof:
    return Proof.objects.create(
        problem=problem,
        text="Assume $$\\sqrt{2}=\\frac{p}{q}$$ with $\\gcd(p,q)=1$. Then $p^2 = 2q^2$...",
        generator_model="deepseek-math-v2",
        generator_version="2025-11",
        sampling={"temperature": 1.0},
    )


@pytest.fixture
def campaign(owner, expert, expert2, reviewer, proof) -> Campaign:
    campaign = Campaign.objects.create(
        name="Test campaign", overlap=2, blind=True, created_by=owner
    )
    CampaignItem.objects.create(campaign=campaign, proof=proof)
    for user, role in [
        (owner, Role.OWNER),
        (expert, Role.GRADER),
        (expert2, Role.GRADER),
        (reviewer, Role.REVIEWER),
    ]:
        Membership.objects.create(campaign=campaign, user=user, role=role)
    return campaign


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache: ids repeat across tests' rolled-back data, so
    briefly cached figures (annotate/progress.py) must not outlive the test that made them."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _recompute_inline(settings):
    """Tests see a commit's disagreements and gold label as soon as it returns, whatever the
    broker; the deferred path has its own tests (tests/test_derived.py)."""
    settings.RECOMPUTE_INLINE = True
