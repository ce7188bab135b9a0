"""Settings: typed environment helpers, secure defaults, a clean deployment check."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from proofdesk.env import env_bool, env_int, env_list, env_secret, env_url

ROOT = Path(__file__).resolve().parent.parent

# Variables that settings read: cleared so each subprocess sees only what a test gives it.
SETTINGS_VARIABLES = (
    "DEBUG", "CI", "SECRET_KEY", "SECRET_KEY_FILE", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL", "TEST_DATABASE_NAME", "REDIS_URL", "SECURE_COOKIES", "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS", "SECURE_HSTS_PRELOAD", "BEHIND_TLS_PROXY", "WHITENOISE_USE_FINDERS",
    "PROOFDESK_VAR_DIR", "DJANGO_SETTINGS_MODULE",
)  # fmt: skip


def manage(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- typed helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [("true", True), ("1", True), ("On", True), ("false", False), ("0", False), ("", False)],
)
def test_env_bool_reads_booleans(monkeypatch, raw, expected):
    monkeypatch.setenv("PD_FLAG", raw)
    assert env_bool("PD_FLAG") is expected


def test_env_bool_uses_default_when_unset(monkeypatch):
    monkeypatch.delenv("PD_FLAG", raising=False)
    assert env_bool("PD_FLAG", True) is True


@pytest.mark.parametrize("raw", ["maybe", "2", "yess", "truee"])
def test_env_bool_rejects_other_values(monkeypatch, raw):
    monkeypatch.setenv("PD_FLAG", raw)
    with pytest.raises(ImproperlyConfigured, match="PD_FLAG"):
        env_bool("PD_FLAG")


def test_env_int_reads_integers_and_defaults(monkeypatch):
    monkeypatch.setenv("PD_N", " 42 ")
    assert env_int("PD_N", 1) == 42
    monkeypatch.setenv("PD_N", "")
    assert env_int("PD_N", 7) == 7


@pytest.mark.parametrize("raw", ["ten", "1.5", "0x10", "3 600"])
def test_env_int_rejects_non_integers(monkeypatch, raw):
    monkeypatch.setenv("PD_N", raw)
    with pytest.raises(ImproperlyConfigured, match="PD_N must be an integer"):
        env_int("PD_N", 0)


def test_env_int_rejects_values_below_minimum(monkeypatch):
    monkeypatch.setenv("PD_N", "-1")
    with pytest.raises(ImproperlyConfigured, match="at least 0"):
        env_int("PD_N", 0, minimum=0)


def test_env_list_splits_and_trims(monkeypatch):
    monkeypatch.setenv("PD_HOSTS", " a.example , b.example,, ")
    assert env_list("PD_HOSTS", []) == ["a.example", "b.example"]


@pytest.mark.parametrize(
    "raw", ["postgres://u@h:5432/db", "postgresql://h/db", "sqlite:////tmp/x.sqlite3"]
)
def test_env_url_accepts_allowed_schemes(monkeypatch, raw):
    monkeypatch.setenv("PD_URL", raw)
    assert env_url("PD_URL", schemes=("postgres", "postgresql", "sqlite")) == raw


@pytest.mark.parametrize(
    "raw", ["mysql://h/db", "http://h/db", "localhost:5432", "postgres:/h/db", "://h"]
)
def test_env_url_rejects_other_schemes_and_malformed_urls(monkeypatch, raw):
    monkeypatch.setenv("PD_URL", raw)
    with pytest.raises(ImproperlyConfigured, match="PD_URL must be a URL"):
        env_url("PD_URL", schemes=("postgres", "postgresql", "sqlite"))


def test_env_url_is_empty_when_unset(monkeypatch):
    monkeypatch.delenv("PD_URL", raising=False)
    assert env_url("PD_URL", schemes=("redis",)) == ""


def test_env_secret_reads_the_variable_or_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("PD_KEY", "direct")
    monkeypatch.delenv("PD_KEY_FILE", raising=False)
    assert env_secret("PD_KEY") == "direct"

    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    monkeypatch.delenv("PD_KEY")
    monkeypatch.setenv("PD_KEY_FILE", str(key_file))
    assert env_secret("PD_KEY") == "from-file"


def test_env_secret_rejects_both_variable_and_file(monkeypatch, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("from-file")
    monkeypatch.setenv("PD_KEY", "direct")
    monkeypatch.setenv("PD_KEY_FILE", str(key_file))
    with pytest.raises(ImproperlyConfigured, match="not both"):
        env_secret("PD_KEY")


@pytest.mark.parametrize("make_path", [lambda tmp: tmp / "missing", lambda tmp: tmp])
def test_env_secret_rejects_an_unreadable_file(monkeypatch, tmp_path, make_path):
    monkeypatch.delenv("PD_KEY", raising=False)
    monkeypatch.setenv("PD_KEY_FILE", str(make_path(tmp_path)))
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        env_secret("PD_KEY")


def test_env_secret_rejects_an_empty_file(monkeypatch, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("  \n")
    monkeypatch.delenv("PD_KEY", raising=False)
    monkeypatch.setenv("PD_KEY_FILE", str(key_file))
    with pytest.raises(ImproperlyConfigured, match="is empty"):
        env_secret("PD_KEY")


# --- the settings module as a deployment sees it -----------------------------------------


@pytest.fixture
def production_env(tmp_path) -> dict[str, str]:
    key_file = tmp_path / "secret_key"
    key_file.write_text(secrets.token_urlsafe(64))
    key_file.chmod(0o600)
    return {
        "SECRET_KEY_FILE": str(key_file),
        "ALLOWED_HOSTS": "proofdesk.example.org",
        "SECURE_SSL_REDIRECT": "true",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_PRELOAD": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "PROOFDESK_VAR_DIR": str(tmp_path),
    }


def test_deploy_check_is_clean_with_production_variables(production_env):
    result = manage(["check", "--deploy", "--fail-level", "WARNING"], production_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_deploy_check_warns_when_debug_is_on(production_env):
    result = manage(
        ["check", "--deploy", "--fail-level", "WARNING"], {**production_env, "DEBUG": "true"}
    )
    assert result.returncode != 0
    assert "security.W018" in result.stderr


def test_settings_refuse_to_start_without_a_secret_key_when_debug_is_off(production_env):
    env = {k: v for k, v in production_env.items() if k != "SECRET_KEY_FILE"}
    result = manage(["check"], env)
    assert result.returncode != 0
    assert "SECRET_KEY or SECRET_KEY_FILE must be set" in result.stderr


def test_settings_refuse_to_start_with_a_bad_variable(production_env):
    result = manage(["check"], {**production_env, "REDIS_URL": "http://127.0.0.1:6379"})
    assert result.returncode != 0
    assert "REDIS_URL must be a URL with scheme" in result.stderr


def test_debug_defaults_to_off_with_secure_cookies(production_env):
    code = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.ALLOWED_HOSTS)"
    )
    result = manage(["shell", "--verbosity", "0", "-c", code], production_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True", "['proofdesk.example.org']"]


# --- SQLite, however it is named --------------------------------------------------------

PRINT_SQLITE_OPTIONS = (
    "import json; from django.db import connection; "
    "print(json.dumps(connection.settings_dict['OPTIONS']))"
)

# Six threads, each with its own connection, read then write in one transaction: the
# pattern of a grade commit. Deferred transactions fail at once with "database is locked"
# when two try to upgrade their read lock; IMMEDIATE ones wait their turn.
CONCURRENT_COMMITS = """
import json, threading
from django.db import connection, connections, transaction
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE commits (n INTEGER)")
start, errors = threading.Barrier(6), []
def commit_many():
    try:
        start.wait()
        for _ in range(15):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM commits")
                cursor.execute("INSERT INTO commits VALUES (1)")
    except Exception as exc:
        errors.append(str(exc))
    finally:
        connections.close_all()
threads = [threading.Thread(target=commit_many) for _ in range(6)]
for thread in threads: thread.start()
for thread in threads: thread.join()
with connection.cursor() as cursor:
    cursor.execute("SELECT count(*) FROM commits")
    print(json.dumps({"rows": cursor.fetchone()[0], "errors": errors}))
"""


@pytest.fixture
def sqlite_url_env(production_env, tmp_path):
    return {**production_env, "DATABASE_URL": f"sqlite:///{tmp_path / 'url.sqlite3'}"}


def test_sqlite_options_apply_when_named_by_database_url(sqlite_url_env, production_env):
    unset = {k: v for k, v in production_env.items() if k != "DATABASE_URL"}
    for env in (sqlite_url_env, unset):
        result = manage(["shell", "--verbosity", "0", "-c", PRINT_SQLITE_OPTIONS], env)
        assert result.returncode == 0, result.stderr
        options = json.loads(result.stdout)
        assert options["transaction_mode"] == "IMMEDIATE"
        assert options["timeout"] >= 5


def test_concurrent_commits_on_a_sqlite_database_url_all_succeed(sqlite_url_env):
    result = manage(["shell", "--verbosity", "0", "-c", CONCURRENT_COMMITS], sqlite_url_env)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome == {"rows": 90, "errors": []}


def test_a_request_warning_is_printed_once_with_debug_on(production_env):
    code = (
        "import logging; logging.getLogger('django.request').warning('Not Found: %s', '/nowhere/')"
    )
    env = {**production_env, "DEBUG": "true"}
    result = manage(["shell", "--verbosity", "0", "-c", code], env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("Not Found: /nowhere/") == 1, result.stderr
