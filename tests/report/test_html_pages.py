"""`plan --html` and `report --html` over the sandbox tenant, opened in a real browser.

One module-wide tenant holds two hostile names: a mail folder `<script>alert(1)</script>` and
a OneDrive shortcut `"><img src=x onerror=...>` (a shortcut is skipped by the run and named by
the plan's findings, so both pages show it). The plan (`--source graph`, so that folders and
file names are read), a run, a verify and the report are run through the command line; both
pages are then opened in one headless Chromium session driven by Selenium through the Debian
chromedriver. The browser's console log and its DevTools network events
(https://chromedevtools.github.io/devtools-protocol/tot/Network/#event-requestWillBeSent,
read through the `goog:loggingPrefs` capability) must show no error and no request but the
page's own; the DOM must hold the hostile names as text and no element they would inject.
Screenshots and a PDF print of each page are kept under pytest's temporary folder.
"""

from __future__ import annotations

import base64
import html as html_module
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hirondelle.cli import main
from hirondelle.sandbox.mime import MessageRecipe
from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import SandboxFolder, Tenant, TenantSpec, message_from_recipe
from hirondelle.workloads.demo import SECRET_ENV

SCRIPT_NAME = "<script>alert(1)</script>"
IMG_NAME = '"><img src=x onerror=alert(2)>'
SPEC = TenantSpec(
    seed=3, users=2, messages=6, large_messages=0, files_per_drive=2, large_file_bytes=0
)
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def hostile_tenant() -> Tenant:
    tenant = Tenant.generate(SPEC)
    user = tenant.users[0]
    folder = SandboxFolder("hostile-folder", user.id, SCRIPT_NAME, tenant.root_folder_id(user.id))
    tenant.add_folder(folder)
    when = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
    recipe = MessageRecipe(
        seed="hostile",
        kind="plain",
        subject=SCRIPT_NAME,
        sender=("Eve", "eve@example.test"),
        to=((user.display_name, user.mail),),
        date=when,
        message_id="<hostile@example.test>",
    )
    tenant.add_message(
        message_from_recipe(recipe, "hostile-message", user.id, folder.id, when), recipe
    )
    drive = next(d for d in tenant.drives.drives if d.owner_id == user.id)
    tenant.drives.add_item(
        drive.id,
        "hostile-shortcut",
        IMG_NAME,
        drive.root_id,
        "remote",
        when,
        remote={
            "id": "remote-hostile",
            "name": IMG_NAME,
            "folder": {"childCount": 0},
            "parentReference": {"driveId": "b!elsewhere", "driveType": "business"},
        },
    )
    return tenant


@dataclass
class Pages:
    directory: Path
    plan: Path
    report: Path
    plan_exit: int
    logins: dict[str, str]
    tenant: Tenant


def _invoke(config: Path, *args: str) -> Any:
    result = CliRunner().invoke(main, ["-c", str(config), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pages]:
    directory = tmp_path_factory.mktemp("pages")
    tenant = hostile_tenant()
    with (
        SandboxServer(tenant, tls=True, limits=Limits(enabled=False)) as sandbox,
        pytest.MonkeyPatch.context() as environment,
    ):
        # the sandbox's public test secret, taken back after the module's tests
        environment.setenv(SECRET_ENV, sandbox.client_secret)
        logins = {u.upn: f"login-{n}@cible.test" for n, u in enumerate(tenant.users)}
        (directory / "users.csv").write_text(
            "source_upn,target_login\n" + "".join(f"{k},{v}\n" for k, v in logins.items()),
            encoding="utf-8",
        )
        config = directory / "hirondelle.toml"
        config.write_text(
            f"""[source]
tenant_id = "{sandbox.tenant_id}"
client_id = "{sandbox.client_id}"
client_secret_env = "{SECRET_ENV}"
graph_url = "{sandbox.graph_url}"
authority = "{sandbox.authority}"
ca_file = "{sandbox.ca_file}"

[state]
url = "sqlite:///state/hirondelle.sqlite"
audit_dir = "audit"

[users]
file = "users.csv"

[targets.mail]
kind = "archive"
path = "archive/mail"

[targets.files]
kind = "archive"
path = "archive/files"
""",
            encoding="utf-8",
        )
        plan = _invoke(
            config,
            "plan",
            "--source",
            "graph",
            "--html",
            str(directory / "plan.html"),
            "--window",
            "1h",
            "--lang",
            "fr",
        )
        ran = _invoke(config, "run", "--workers", "1")
        assert ran.exit_code == 0, ran.output
        verified = _invoke(config, "verify")
        assert verified.exit_code == 0, verified.output
        report = _invoke(config, "report", "--html", str(directory / "report.html"), "--lang", "en")
        assert report.exit_code == 0, report.output
        yield Pages(
            directory,
            directory / "plan.html",
            directory / "report.html",
            plan.exit_code,
            logins,
            tenant,
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER), (
        "apt-get install chromium chromium-driver (./test installs them)"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,2400"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@dataclass
class Opened:
    text: str
    console: list[dict[str, Any]]
    requests: list[str]
    screenshot: Path


def open_page(browser: Any, page: Path, artefacts: Path) -> Opened:
    browser.get_log("browser"), browser.get_log("performance")  # drop the earlier pages' logs
    browser.get(page.as_uri())
    requests = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
    screenshot = artefacts / f"{page.stem}.png"
    browser.save_screenshot(str(screenshot))
    pdf = artefacts / f"{page.stem}.pdf"
    pdf.write_bytes(base64.b64decode(browser.print_page()))
    print(f"\n{page.name}: screenshot {screenshot}, printed {pdf}")
    return Opened(
        browser.find_element("tag name", "body").text,
        browser.get_log("browser"),
        requests,
        screenshot,
    )


def assert_self_contained(browser: Any, opened: Opened, page: Path) -> None:
    errors = [e for e in opened.console if e["level"] in ("SEVERE", "WARNING")]
    assert errors == [], errors
    assert opened.requests == [page.as_uri()], opened.requests
    injected = browser.execute_script(
        "return [document.scripts.length, document.images.length,"
        " document.querySelectorAll('[onerror], iframe, object, embed, link').length]"
    )
    assert injected == [0, 0, 0]
    assert SCRIPT_NAME in opened.text or IMG_NAME in opened.text


def cell_texts(browser: Any, table: str, column: int) -> list[str]:
    rows = browser.find_elements("css selector", f"#{table} tbody tr")
    return [r.find_elements("tag name", "td")[column].text for r in rows]


def test_the_plan_page_is_self_contained_in_french_with_the_plan_s_figures(
    pages: Pages, browser: Any, tmp_path: Path
) -> None:
    html = pages.plan.read_text(encoding="utf-8")
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert csp is not None and "default-src 'none'" in html_module.unescape(csp.group(1))
    assert SCRIPT_NAME not in html and IMG_NAME not in html  # escaped in the source
    opened = open_page(browser, pages.plan, tmp_path)
    assert_self_contained(browser, opened, pages.plan)
    text = opened.text
    assert "Plan de migration" in text and "Estimation de la durée" in text  # French
    assert SCRIPT_NAME in text and IMG_NAME in text  # the folder and the shortcut, as text
    # totals per workload: one row each, and the items column adds up to the footer
    workloads = browser.find_elements("css selector", "#workload-table tbody tr")
    assert [w.get_attribute("data-workload") for w in workloads] == ["mail", "files"]
    items = [int(re.sub(r"\D", "", t)) for t in cell_texts(browser, "workload-table", 3)]
    total = browser.find_element("id", "total-items").text
    assert sum(items) == int(re.sub(r"\D", "", total)) > 0
    # owners sorted by size, the largest first; every selected user listed with its login
    owners = cell_texts(browser, "owner-table", 0)
    assert {u.upn for u in pages.tenant.users} <= set(owners)
    footer = browser.find_elements("css selector", "#workload-table tfoot td")[1].text
    assert int(footer) == len(owners)  # every owner once, whatever its workloads
    logins = dict(
        zip(
            cell_texts(browser, "login-table", 0),
            cell_texts(browser, "login-table", 1),
            strict=True,
        )
    )
    for upn, login in pages.logins.items():
        assert logins[upn] == login
    # findings: blockers first; the shortcut named with where it lands
    severities = cell_texts(browser, "finding-counts", 0)
    order = {"BLOQUANTS": 0, "AVERTISSEMENTS": 1, "INFORMATIONS": 2}
    assert [order[s] for s in severities] == sorted(order[s] for s in severities)
    assert ("BLOQUANTS" in severities) == (pages.plan_exit == 1)
    # a renamed folder or file is named with the path it takes on the target
    renamed = browser.find_elements("css selector", "table[data-kind=renamed] tbody tr")
    pairs = {(c[1].text, c[2].text) for r in renamed for c in [r.find_elements("tag name", "td")]}
    assert any(source == SCRIPT_NAME for source, _ in pairs), pairs
    assert all(target and target != source for source, target in pairs), pairs
    # the sandbox's shared folders, named with their target paths
    shared = cell_texts(browser, "shared-table", 2)
    assert shared and all(path.startswith("OneDrive/") for path in shared), shared
    # waves of one hour: every owner in exactly one wave
    waves = cell_texts(browser, "wave-table", 5)
    assert sorted(o for w in waves for o in w.split(", ")) == sorted(owners)
    assert len(browser.find_elements("css selector", "figure.chart svg")) == 2


def test_the_run_report_shows_owners_skips_verify_and_throughput_in_english(
    pages: Pages, browser: Any, tmp_path: Path
) -> None:
    html = pages.report.read_text(encoding="utf-8")
    assert IMG_NAME not in html
    opened = open_page(browser, pages.report, tmp_path)
    assert_self_contained(browser, opened, pages.report)
    text = opened.text
    assert "Migration report" in text
    # every user and workload has its row, finished
    rows = browser.find_elements("css selector", "#owner-table tbody tr")
    seen = {
        (r.find_elements("tag name", "td")[0].text, r.find_elements("tag name", "td")[1].text)
        for r in rows
    }
    assert {(u.upn, w) for u in pages.tenant.users for w in ("Mail", "Files")} <= seen
    assert set(cell_texts(browser, "owner-table", 2)) == {"finished"}
    # the shortcut skipped, named by its readable path
    skipped = cell_texts(browser, "skip-list", 2)
    assert any(IMG_NAME in path for path in skipped), skipped
    # verify ran clean and the report says so
    assert set(cell_texts(browser, "verify-table", 1)) == {"verified"}
    mail = browser.find_element("css selector", "#workload-table tr[data-workload=mail]")
    copied = int(re.sub(r"\D", "", mail.find_elements("tag name", "td")[1].text))
    assert copied == sum(
        len(pages.tenant.messages(u.id, f.id))
        for u in pages.tenant.users
        for f in pages.tenant.folders(u.id)
        if not f.hidden
    )
