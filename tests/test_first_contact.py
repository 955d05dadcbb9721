"""A new user's first hour: the README's code pasted into a site fresh from ``django-admin startproject``."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, in_shell, project_env, start_project

README = (ROOT / "README.md").read_text()

SHOP_MODELS = """
from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=100)


class Product(models.Model):
    name = models.CharField(max_length=100)
    category = models.ForeignKey(Category, on_delete=models.CASCADE)
"""

SEARCH_TEMPLATE = (
    "{% if unavailable %}unavailable{% endif %}"
    "{% for product in page %}<li>{{ product.name }} ({{ product.category.name }})</li>{% endfor %}"
)

SEED = """
from shop.models import Category, Product
kitchen = Category.objects.create(name="Kitchen")
garden = Category.objects.create(name="Garden")
Product.objects.create(name="Copper Teapot", category=kitchen)
Product.objects.create(name="Enamel Teapot", category=kitchen)
Product.objects.create(name="Garden Hose", category=garden)
"""

REQUEST = """
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
response = Client().get("/search/", {"q": "teapot"})
print(response.status_code)
print(response.content.decode())
"""


def readme_block(first_line: str) -> str:
    """The README's code block that begins with ``first_line``."""
    [block] = [b for b in re.findall(r"```python\n(.*?)```", README, re.S) if b.startswith(first_line)]
    return block


@pytest.fixture(scope="module")
def readme_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh ``startproject`` site with the README's settings, definition and view pasted in as shown."""
    files = {
        "models.py": SHOP_MODELS,
        "indexes.py": readme_block("# shop/indexes.py"),
        "views.py": readme_block("# shop/views.py"),
        "templates/shop/search.html": SEARCH_TEMPLATE,
    }
    root = start_project(tmp_path_factory.mktemp("readme"), files, "\n" + readme_block("REINDEX = "))
    urls = root / "mysite" / "urls.py"
    urls.write_text(
        urls.read_text() + "\nfrom shop import views\n\nurlpatterns.append(path('search/', views.search))\n"
    )
    in_shell(root, SEED)
    return root


def test_the_readme_view_finds_rows_through_the_alias_it_rebuilt(readme_site, es_url):
    reindex = Path(sys.executable).parent / "reindex"
    rebuild = [str(reindex), "--settings", "mysite.settings", "rebuild"]  # as the README runs it
    env = project_env(readme_site, REINDEX_ES_URL=es_url)
    built = subprocess.run(rebuild, env=env, cwd=readme_site, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr

    status, page = in_shell(readme_site, REQUEST, REINDEX_ES_URL=es_url).split("\n", 1)

    assert status == "200"
    assert sorted(re.findall(r"<li>(.*?)</li>", page)) == ["Copper Teapot (Kitchen)", "Enamel Teapot (Kitchen)"]


def test_with_the_server_down_the_readme_view_answers_503_and_says_so(readme_site):
    status, page = in_shell(readme_site, REQUEST, REINDEX_ES_URL="http://127.0.0.1:9").split("\n", 1)

    assert (status, page.strip()) == ("503", "unavailable")


def test_importing_the_readme_view_makes_no_network_call(readme_site):
    with socket.socket() as down:  # listens, but answers nothing: a connection would be accepted
        down.bind(("127.0.0.1", 0))
        down.listen()
        down.settimeout(0.5)
        url = f"http://127.0.0.1:{down.getsockname()[1]}"

        output = in_shell(readme_site, "import shop.views; print('imported')", REINDEX_ES_URL=url)

        assert output.strip() == "imported"
        with pytest.raises(TimeoutError):
            down.accept()


def run_reindex(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``reindex ARGS`` typed in the project's root, as the README shows it."""
    reindex = Path(sys.executable).parent / "reindex"
    return subprocess.run(
        [str(reindex), *args], env=project_env(project, **env), cwd=project, capture_output=True, text=True
    )


def test_update_in_a_site_that_tracks_no_changes_says_what_to_set(fresh_project, es_url):
    done = run_reindex(fresh_project, "--settings", "mysite.settings", "update", REINDEX_ES_URL=es_url)
    named = run_reindex(fresh_project, "--settings", "mysite.settings", "update", "shopproducts", REINDEX_ES_URL=es_url)

    how = "set updated_field (the model's last-updated field) or define changed_since() in its definition"
    assert (done.returncode, done.stderr) == (
        2,
        f"reindex: error: no definition tracks its changes (shopproducts): {how}; "
        "or re-send every row of one with: update NAME --all\n",
    )
    assert (named.returncode, named.stderr) == (
        2,
        f"reindex: error: shopproducts: changes are not tracked: {how}; "
        "or re-send every row with: update shopproducts --all\n",
    )


def test_a_typo_in_the_settings_module_names_the_missing_module(fresh_project):
    done = run_reindex(fresh_project, "--settings", "mysite.settngs", "list")

    assert done.returncode == 2
    assert done.stderr == (
        f"reindex: error: cannot import settings module 'mysite.settngs': "
        f"there is no module 'settngs' in {fresh_project / 'mysite'}\n"
    )


def test_a_host_name_that_does_not_resolve_is_one_whole_line(fresh_project):
    done = run_reindex(
        fresh_project, "--settings", "mysite.settings", "--es-url", "http://search.invalid:9200", "status"
    )

    assert done.returncode == 2
    assert done.stderr.startswith("reindex: error: cannot reach the search server at http://search.invalid:9200: ")
    assert re.search(r"Failed to resolve 'search.invalid' \(\[Errno -?\d+\] [^()]+\)\n$", done.stderr)
