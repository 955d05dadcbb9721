"""Booting the site's Django for the command line: settings module, ``sys.path``, ``django.setup()``."""

from __future__ import annotations

import os
import sys
import traceback

from reindex.errors import ConfigurationError


def setup_django(settings_module: str | None = None, pythonpath: str | None = None) -> None:
    """Import the site's settings and run ``django.setup()``, once.

    Raises ConfigurationError with one line saying what went wrong.
    """
    import django
    from django.apps import apps
    from django.conf import settings

    if pythonpath:
        sys.path.insert(0, os.path.abspath(pythonpath))
    _add_working_directory()
    if settings_module:
        os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    if apps.ready:
        return
    if not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise ConfigurationError("no Django settings: pass --settings or set DJANGO_SETTINGS_MODULE")
    module = os.environ.get("DJANGO_SETTINGS_MODULE", "")
    try:
        django.setup()
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            raise ConfigurationError(settings_not_found(module, exc.name)) from exc
        raise ConfigurationError(f"cannot set up Django: {last_line(exc)}") from exc
    except Exception as exc:
        raise ConfigurationError(f"cannot set up Django with {module!r}: {last_line(exc)}") from exc


def settings_not_found(module: str, missing: str) -> str:
    """Why the settings module ``module`` was not found: its package's folder, or the directory, lacks it."""
    package, _, leaf = missing.rpartition(".")
    found = sys.modules.get(package) if package else None
    if found is not None and getattr(found, "__path__", None):
        return f"cannot import settings module {module!r}: there is no module {leaf!r} in {next(iter(found.__path__))}"
    return (
        f"cannot import settings module {module!r} from {os.getcwd()} or sys.path: "
        "run from the project's root (where manage.py is), or pass --pythonpath DIR"
    )


def _add_working_directory() -> None:
    """Put the current directory on ``sys.path``, as ``python -m`` and manage.py do.

    A console script does not have it there, so ``reindex --settings mysite.settings``
    run from the project's root would not find ``mysite``. Appended, not prepended,
    so that the directory never shadows an installed package.
    """
    cwd = os.getcwd()
    if not any(os.path.abspath(entry or os.curdir) == cwd for entry in sys.path):
        sys.path.append(cwd)


def last_line(exc: BaseException) -> str:
    """The ``Type: message`` line of an exception, as a traceback ends."""
    return traceback.format_exception_only(type(exc), exc)[-1].strip()
