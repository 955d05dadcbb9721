"""The README's search view, pasted into a fresh ``django-admin startproject`` site, serves a page of rows.

As a new user would try it: the view copied from README.md as it stands, a template,
a URL, ``reindex rebuild``, then a request, each in a real subprocess.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PRODUCTS_INDEX = """
from reindex import IndexDefinition

from shop.models import Product


class ProductIndex(IndexDefinition):
    alias = "products"
    mappings = {"properties": {"name": {"type": "text"}}}

    def get_queryset(self):
        return Product.objects.all()

    def prepare(self, product):
        return {"name": product.name}
"""

TEMPLATE = "{% if unavailable %}unavailable{% endif %}{% for product in page %}[{{ product.name }}]{% endfor %}"

REQUEST = """
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
response = Client().get("/search/", {"q": "p1 p2 p3"})
print(response.status_code, response.content.decode())
"""


def readme_block(marker: str) -> str:
    """The fenced code block of README.md whose first line is ``marker``."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return next(block for block in blocks if block.startswith(marker))


def paste_view(project: Path) -> None:
    (project / "shop" / "views.py").write_text(readme_block("# shop/views.py"))
    (project / "shop" / "indexes.py").write_text(PRODUCTS_INDEX)
    templates = project / "shop" / "templates" / "shop"
    templates.mkdir(parents=True, exist_ok=True)
    (templates / "search.html").write_text(TEMPLATE)
    urls = project / "mysite" / "urls.py"
    text = urls.read_text().replace("urlpatterns = [", "from shop.views import search\n\nurlpatterns = [")
    urls.write_text(text.replace("urlpatterns = [", "urlpatterns = [\n    path('search/', search),", 1))


def run(project: Path, es_url: str, *command: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "HOME": str(project), "REINDEX_ES_URL": es_url}
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=120)


def test_the_readme_view_serves_a_page_of_rows_in_a_fresh_project(fresh_project, es_url):
    paste_view(fresh_project)
    built = run(fresh_project, es_url, "reindex", "--settings", "mysite.settings", "rebuild", "products")
    assert built.returncode == 0, built.stderr
    served = run(fresh_project, es_url, sys.executable, "manage.py", "shell", "-c", REQUEST)
    assert served.returncode == 0, served.stderr
    status, _, content = served.stdout.strip().splitlines()[-1].partition(" ")  # after Django 5.2's own lines
    assert status == "200"
    assert sorted(re.findall(r"\[(\w+)\]", content)) == ["p1", "p2", "p3"]


def test_with_the_server_down_the_readme_view_answers_503(fresh_project):
    paste_view(fresh_project)
    served = run(fresh_project, "http://127.0.0.1:9", sys.executable, "manage.py", "shell", "-c", REQUEST)
    assert served.returncode == 0, served.stderr
    assert served.stdout.strip().splitlines()[-1] == "503 unavailable"
