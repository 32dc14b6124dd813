"""End to end: the app served on a free local port, driven by headless Chromium (Playwright).

Chromium comes from the system (Debian's `chromium`; `make browser` installs it), not from
`playwright install`. Screenshots go to test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

from assistant.webapp import BackgroundServer, create_server

from conftest import ROOT, write_docx

pytestmark = [pytest.mark.browser]

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
ANSWER_TIMEOUT_MS = 60_000
DELAWARE_QUESTION = "How does Delaware support students' transitions from middle school to high school?"


def chromium_path() -> str:
    found = os.environ.get("ESSA_QA_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("chromium not found: install Debian's chromium (make browser) or set ESSA_QA_CHROMIUM")
    return found


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def real_app(real_assistant, shared_plans):
    with BackgroundServer(create_server(real_assistant, shared_plans)) as server:
        yield server


# Every page records the Content-Security-Policy violations it sees, so a test can assert the
# app runs under its own policy: the DOM event, and the console line Chromium writes for each.
CSP_WATCH = """window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
});"""


def watch_csp(context) -> list[str]:
    """Start recording CSP violations in every page of `context`; returns the console's list."""
    seen: list[str] = []
    context.add_init_script(CSP_WATCH)
    context.on("console", lambda m: "Content Security Policy" in m.text and seen.append(m.text))
    return seen


def assert_no_csp_violations(seen: list[str], *pages) -> None:
    reported = list(seen)
    for page in pages:
        reported += page.evaluate("window.__cspViolations || []")
    assert reported == []


def ask(page, question: str) -> None:
    page.locator("#essa-question textarea").fill(question)
    page.locator("#essa-ask").click()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


@pytest.mark.real
def test_ask_delaware_open_page_and_map(browser, real_app):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    csp = watch_csp(context)
    page = context.new_page()
    response = page.goto(real_app.url)
    assert "'nonce-" in response.headers["content-security-policy"]
    ask(page, DELAWARE_QUESTION)
    card = page.locator("#essa-chat .essa-card").first
    card.wait_for(timeout=ANSWER_TIMEOUT_MS)
    answer = page.locator("#essa-chat .essa-answer").first
    assert len(answer.inner_text().strip()) > 40
    assert "essa-abstained" not in (answer.get_attribute("class") or "")
    states = page.locator("#essa-chat .essa-card .essa-state").all_inner_texts()
    assert "Delaware" in states
    assert page.locator("#essa-chat .essa-card mark").count() >= 1  # the cited sentence is marked
    shot(page, "ask-delaware.png")
    answer.scroll_into_view_if_needed()
    page.locator("#essa-chat").screenshot(path=str(ARTIFACTS / "ask-delaware-answer.png"))

    page.locator("#essa-chat .essa-card button.essa-copy").first.click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("Delaware, Delaware Consolidated State Plan") and "&#" not in copied
    page.locator("#essa-chat button.essa-copy-md").first.click()
    assert page.evaluate("navigator.clipboard.readText()").startswith("**Q:** How does Delaware")

    # The citation's page opens in the viewer panel, from the keyboard: the page image with the
    # quoted words boxed, scrolled into view, and a link to the whole file.
    link = page.locator("#essa-chat .essa-card a.essa-open").first
    href = link.get_attribute("href")
    assert href.startswith("viewer/DE.pdf?page=") and "quote=" in href and href.endswith("#q")
    with context.expect_event("response", predicate=lambda r: "/page-image/DE.pdf/" in r.url) as served:
        link.focus()
        page.keyboard.press("Enter")
    assert served.value.status == 200 and served.value.headers["content-type"] == "image/png"
    assert len(context.pages) == 1  # the panel, not a new tab
    viewer = page.frame_locator("#essa-viewer-frame")
    mark = viewer.locator("mark.box").first
    mark.wait_for(timeout=ANSWER_TIMEOUT_MS)
    assert viewer.get_by_text("The quoted words are marked on").count() == 1
    assert "plans/DE.pdf#page=" in viewer.get_by_role("link", name="Whole file ↗").get_attribute("href")
    assert mark.evaluate("m => { const r = m.getBoundingClientRect();"
                         " return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight; }")
    # The words boxed on the page image are the card's marked quote: the panel states it below.
    card_quote = " ".join(page.locator("#essa-chat .essa-card mark").first.inner_text().split())
    assert " ".join(viewer.locator("blockquote.quote").inner_text().split()) == card_quote
    viewer.get_by_role("link", name="Zoom in +").click()
    viewer.locator("text=100%").wait_for(timeout=ANSWER_TIMEOUT_MS)
    assert viewer.locator("mark.box").count() >= 1
    shot(page, "viewer-panel.png")

    # The answer's share link opens a read-only copy, with the same cards, for a colleague.
    with context.expect_page() as opened:
        page.locator("#essa-chat a.essa-permalink").first.click()
    shared = opened.value
    shared.wait_for_load_state()
    assert "/answer/" in shared.url and "read-only" in shared.locator("body").inner_text()
    assert shared.locator(".essa-card").count() == page.locator("#essa-chat .essa-card").count()
    shared.locator("button.essa-copy").first.click()
    assert shared.evaluate("navigator.clipboard.readText()").startswith("Delaware, ")  # app.js ran
    shot(shared, "shared-answer.png")
    cards = shared.locator(".essa-card").count()
    shared.close()
    # A colleague's fresh browser, not logged into anything of ours, opens the same link.
    colleague = browser.new_context()
    fresh = colleague.new_page()
    fresh.goto(shared_url := page.locator("#essa-chat a.essa-permalink").first.evaluate("a => a.href"))
    assert fresh.locator(".essa-card").count() == cards and "/answer/" in shared_url
    assert fresh.locator(".essa-card mark").first.inner_text().strip()
    colleague.close()

    # A follow-up keeps the conversation and has its own citations.
    ask(page, "What about Nevada?")
    page.locator("#essa-chat [id^='t2-c']").first.wait_for(timeout=ANSWER_TIMEOUT_MS)
    assert page.locator("#essa-chat [id^='t1-c']").count() >= 1
    assert "Nevada" in page.locator("#essa-chat [id^='t2-c'] .essa-state").all_inner_texts()
    page.locator("#essa-chat .essa-answer").nth(1).scroll_into_view_if_needed()
    page.locator("#essa-chat").screenshot(path=str(ARTIFACTS / "follow-up.png"))

    page.get_by_role("tab", name="Map").click()
    tile = page.locator("#essa-map .essa-cell[data-state='DE'][data-category='transitions']")
    tile.wait_for(timeout=30_000)
    assert page.locator("#essa-map .essa-cell").count() == 3 * 7
    tile.click()
    page.locator("#essa-cell .essa-card").first.wait_for(timeout=30_000)
    assert "Delaware" in page.locator("#essa-cell .essa-card .essa-state").all_inner_texts()
    # Every state on the US tile grid; an indexed one lists its passages across the approaches.
    assert page.locator("#essa-map .essa-tile").count() == 53
    assert "not fetched" in page.locator("#essa-map .essa-tile[aria-label^='Texas']").inner_text()
    page.locator("#essa-map .essa-tile[data-state='NV']").click()
    page.get_by_text("Nevada: the approaches in its plan").wait_for(timeout=30_000)
    assert page.locator("#essa-cell h4").count() == 7
    shot(page, "map.png")

    page.get_by_role("tab", name="Compare").click()
    page.get_by_label("Topic or question").fill("support for students moving into high school")
    page.get_by_role("button", name="Compare", exact=True).click()
    page.locator("#essa-compare .essa-compare-col").first.wait_for(timeout=ANSWER_TIMEOUT_MS)
    assert page.locator("#essa-compare .essa-compare-col h3").all_inner_texts() == [
        "Delaware", "Massachusetts", "Nevada"]
    shot(page, "compare.png")

    page.get_by_role("tab", name="Check").click()
    page.get_by_label("Draft").fill("Delaware uses a minimum n-size of 25 students for accountability. "
                                    "Nevada runs the Read by Grade 3 program.")
    page.locator("#essa-check-button").click()
    page.locator("#essa-check .essa-claim").nth(1).wait_for(timeout=ANSWER_TIMEOUT_MS)
    assert page.locator("#essa-check .essa-verdict").all_inner_texts() == ["Contradicted", "Supported"]
    assert page.locator("#essa-check .essa-claim .essa-card mark").count() == 2  # each cited sentence
    shot(page, "check.png")

    page.get_by_role("tab", name="Evaluate").click()
    page.get_by_role("button", name="Run evaluation").click()  # the fast subset, as the box is ticked
    status = page.get_by_text(re.compile(r"\d+ questions in [\d.]+ s; headline retrieval config"))
    status.wait_for(timeout=300_000)
    assert page.get_by_text("answers citing a relevant passage", exact=True).count() >= 1
    assert page.get_by_text(re.compile(r"^\s*[01]\.\d{3}\s*$")).count() >= 10  # measured numbers
    shot(page, "evaluate.png")
    page.get_by_role("tab", name="Ask").click()
    page.get_by_role("button", name="Filters").click()
    page.locator("#essa-state-filter input").click()  # the dropdown's list and its check icons
    page.get_by_role("option").first.wait_for(timeout=30_000)
    assert_no_csp_violations(csp, page)
    context.close()


@pytest.mark.real
def test_phone_width_has_no_sideways_scroll(browser, real_app):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    csp = watch_csp(context)
    page = context.new_page()
    page.goto(real_app.url)
    ask(page, DELAWARE_QUESTION)
    page.locator("#essa-chat .essa-card").first.wait_for(timeout=ANSWER_TIMEOUT_MS)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1
    shot(page, "phone.png")
    assert_no_csp_violations(csp, page)
    context.close()


@pytest.mark.real
def test_keyboard_only_question(browser, real_app):
    page = browser.new_page()
    page.goto(real_app.url)
    box = page.locator("#essa-question textarea")
    box.focus()
    page.keyboard.type(DELAWARE_QUESTION)
    page.keyboard.press("Enter")
    page.locator("#essa-chat .essa-card").first.wait_for(timeout=ANSWER_TIMEOUT_MS)
    page.close()


HOSTILE = ("The Vermont agency <script>window.__pwned = 1</script> supports transitions to high "
           "school with <img src=x onerror=\"window.__pwned = 2\"> mentors for every ninth grader. "
           "Templates like ${window.__pwned = 3} and {{value}} and [a link](javascript:alert(1)) "
           "are only text.")


@pytest.fixture(scope="module")
def hostile_app(tmp_path_factory, hash_settings):
    from assistant.api import Assistant
    from assistant.embedders import HashEmbedder
    from assistant.indexing import build_index

    plans = tmp_path_factory.mktemp("hostile_plans")
    write_docx(plans / "VT.docx", [("h1", "Section 6: Supporting All Students"),
                                   ("h2", "6.1 Transitions"), ("p", HOSTILE)])
    index = tmp_path_factory.mktemp("hostile_index")
    build_index(plans, index, HashEmbedder(), hash_settings)
    assistant = Assistant.load(index, settings=hash_settings)
    with BackgroundServer(create_server(assistant, plans)) as server:
        yield server


def test_plan_text_with_script_is_shown_as_text(browser, hostile_app):
    page = browser.new_page()
    csp = watch_csp(page.context)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(hostile_app.url)
    ask(page, "How does Vermont support transitions to high school with mentors?")
    passage = page.locator("#essa-chat .essa-card .essa-passage").first
    passage.wait_for(timeout=ANSWER_TIMEOUT_MS)
    text = passage.inner_text()
    assert "<script>window.__pwned = 1</script>" in text
    assert "${window.__pwned = 3}" in text and "{{value}}" in text
    assert "[a link](javascript:alert(1))" in text
    assert page.locator("#essa-chat .essa-card img").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert dialogs == []
    # The section viewer (in the panel beside the chat) escapes too.
    page.locator("#essa-chat .essa-card a.essa-open").first.click()
    cited = page.frame_locator("#essa-viewer-frame").locator("p.cited")
    cited.wait_for(timeout=ANSWER_TIMEOUT_MS)
    assert "<script>window.__pwned = 1</script>" in cited.inner_text()
    assert page.frame(name="essa-viewer-frame").evaluate("typeof window.__pwned") == "undefined"
    shot(page, "hostile-viewer.png")
    assert_no_csp_violations(csp, page)
    page.close()


@pytest.fixture(scope="module")
def protected_app(fixture_assistant, fixture_plans):
    app = create_server(fixture_assistant, fixture_plans, auth=("editor", "s3cret"))
    with BackgroundServer(app) as server:
        yield server


def test_login_then_ask_under_the_policy(browser, protected_app):
    from playwright.sync_api import expect

    context = browser.new_context()
    csp = watch_csp(context)
    page = context.new_page()
    page.goto(protected_app.url)
    page.get_by_label("username").fill("editor")
    page.get_by_label("password").fill("s3cret")
    page.get_by_role("button", name="Login").click()
    ask(page, "How does Rhode Island help ninth graders with mentors?")
    page.locator("#essa-chat .essa-card").first.wait_for(timeout=ANSWER_TIMEOUT_MS)
    assert "Rhode Island" in page.locator("#essa-chat .essa-card .essa-state").all_inner_texts()
    copy = page.locator("#essa-chat .essa-card button.essa-copy").first
    copy.click()
    expect(copy).to_have_text(re.compile("Copied|Copy failed"))  # static/app.js is loaded and ran
    assert_no_csp_violations(csp, page)
    context.close()


# ------------------------------------------------------------ the Facts tab (real plans)
# What the real index states (Assistant.facts() on DE.pdf, MA.pdf, NV.docx): n-size 15, 20 and 10;
# the achievement weight 25% (DE) and 60% (MA), not stated by NV. The tests read the values off
# the page and compare them with real_assistant.facts(), so they follow the extraction.

FACTS_TABLE = "#essa-facts table.essa-facts-table"


def open_facts(browser, app, **context_options):
    """A fresh page on the Facts tab with the table (loaded on page load) shown."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **context_options)
    csp = watch_csp(context)
    page = context.new_page()
    page.goto(app.url)
    page.get_by_role("tab", name="Facts").click()
    page.locator(f"{FACTS_TABLE} tbody tr").first.wait_for(timeout=ANSWER_TIMEOUT_MS)
    return context, page, csp


def facts_rows(page) -> list[str]:
    """The state codes of the table's rows, top to bottom ("Delaware (DE)" -> "DE")."""
    return [re.search(r"\((\w\w)\)\s*$", t).group(1)
            for t in page.locator(f"{FACTS_TABLE} tbody th[scope='row']").all_inner_texts()]


def facts_column(page, label: str) -> int:
    """The index (State is 0) of the column headed `label`."""
    headings = [" ".join(t.split()).rstrip(" ▲▼") for t in
                page.locator(f"{FACTS_TABLE} thead th").all_inner_texts()]
    return headings.index(label)


def show_facts(page, filter_text: str) -> None:
    box = page.locator("#essa-facts-filter textarea, #essa-facts-filter input").first
    box.fill(filter_text)
    page.locator("#essa-facts-button").click()


@pytest.mark.real
def test_facts_table_and_value_opens_its_quote(browser, real_app, real_assistant):
    from playwright.sync_api import expect

    facts = real_assistant.facts()
    states = list(dict.fromkeys(f.state for f in facts))
    assert states == ["DE", "MA", "NV"]
    context, page, csp = open_facts(browser, real_app)
    # One row per indexed state, one column per fact in the schema (and State).
    assert facts_rows(page) == states
    specs = real_assistant.fact_schema.facts
    assert page.locator(f"{FACTS_TABLE} thead th").count() == 1 + len(specs)
    stated = sum(f.stated for f in facts)
    assert page.locator(f"{FACTS_TABLE} tbody a.essa-open").count() == stated
    assert page.locator(f"{FACTS_TABLE} tbody td.essa-unstated").count() == len(facts) - stated
    summary = page.locator("#essa-facts .essa-facts > p").first.inner_text()
    assert f"{len(states)} state(s) × {len(specs)} fact(s); {stated} values stated" in summary

    # Delaware's n-size (a PDF page): the cell shows the value, its tooltip the quote.
    de = next(f for f in facts if f.state == "DE" and f.fact == "n_size")
    column = facts_column(page, "Minimum n-size")
    cell = page.locator(f"{FACTS_TABLE} tbody tr").nth(states.index("DE")).locator("th, td").nth(column)
    link = cell.locator("a.essa-open")
    assert link.inner_text().strip() == de.value_label == "15 students"
    assert link.get_attribute("title") == de.citation.quote[:300]
    href = link.get_attribute("href")
    assert href.startswith(f"viewer/DE.pdf?page={de.citation.page}&") and href.endswith("#q")
    assert f"page {de.citation.page}" in cell.locator(".essa-fact-where").inner_text()
    with context.expect_event("response", predicate=lambda r: "/page-image/DE.pdf/" in r.url) as served:
        link.click()
    assert served.value.status == 200 and served.value.headers["content-type"] == "image/png"
    assert len(context.pages) == 1  # the Facts tab's own panel, not a new tab
    viewer = page.frame_locator("#essa-facts-viewer-frame")
    mark = viewer.locator("mark.box").first
    mark.wait_for(timeout=ANSWER_TIMEOUT_MS)
    expect(viewer.locator("p.status")).to_have_text(f"The quoted words are marked on page {de.citation.page}.")
    assert " ".join(viewer.locator("blockquote.quote").inner_text().split()) == " ".join(de.citation.quote.split())
    assert mark.evaluate("m => { const r = m.getBoundingClientRect();"
                         " return r.width > 0 && r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight; }")
    # The Ask tab's panel (hidden) was left alone: the link went to the frame on this tab.
    assert page.locator("#essa-viewer-frame").get_attribute("src") == "about:blank"
    page.locator("#essa-facts-viewer").scroll_into_view_if_needed()
    shot(page, "facts-viewer.png")

    # Nevada's n-size (a DOCX paragraph): its section, with the quote marked in the text.
    nv = next(f for f in facts if f.state == "NV" and f.fact == "n_size")
    link = page.locator(f"{FACTS_TABLE} tbody tr").nth(states.index("NV")).locator("th, td").nth(column) \
        .locator("a.essa-open")
    assert link.inner_text().strip() == nv.value_label
    link.click()
    marked = viewer.locator("p.cited mark#q")
    marked.wait_for(timeout=ANSWER_TIMEOUT_MS)
    assert " ".join(marked.inner_text().split()) == " ".join(nv.citation.quote.split())
    assert viewer.locator("h1").inner_text() == "NV.docx"
    page.locator("#essa-facts").scroll_into_view_if_needed()
    shot(page, "facts.png")
    assert_no_csp_violations(csp, page)
    context.close()


@pytest.mark.real
def test_facts_headings_sort_rows_with_unstated_last(browser, real_app, real_assistant):
    by = {(f.state, f.fact): f for f in real_assistant.facts()}
    assert by[("DE", "achievement_weight")].value == 25 and by[("MA", "achievement_weight")].value == 60
    assert not by[("NV", "achievement_weight")].stated
    context, page, csp = open_facts(browser, real_app)
    assert facts_rows(page) == ["DE", "MA", "NV"]

    def heading(label):
        th = page.locator(f"{FACTS_TABLE} thead th").nth(facts_column(page, label))
        return th, th.locator("button.essa-sort")

    # Numbers as numbers: the minimum n-size (NV 10, DE 15, MA 20).
    th, button = heading("Minimum n-size")
    assert th.get_attribute("aria-sort") == "none"
    button.click()
    assert th.get_attribute("aria-sort") == "ascending"
    assert facts_rows(page) == ["NV", "DE", "MA"]
    button.click()
    assert th.get_attribute("aria-sort") == "descending"
    assert facts_rows(page) == ["MA", "DE", "NV"]

    # "not stated" goes last both ways (NV states no achievement weight); the other heading resets.
    weight, button = heading("Achievement weight")
    button.click()
    assert weight.get_attribute("aria-sort") == "ascending" and th.get_attribute("aria-sort") == "none"
    assert facts_rows(page) == ["DE", "MA", "NV"]
    button.click()
    assert weight.get_attribute("aria-sort") == "descending"
    assert facts_rows(page) == ["MA", "DE", "NV"]
    last = page.locator(f"{FACTS_TABLE} tbody tr").last.locator("th, td").nth(facts_column(page, "Achievement weight"))
    assert last.inner_text().strip() == "not stated"
    # The cells moved with their rows: Massachusetts's row still carries Massachusetts's value.
    first = page.locator(f"{FACTS_TABLE} tbody tr").first.locator("th, td").nth(facts_column(page, "Minimum n-size"))
    assert first.inner_text().startswith(by[("MA", "n_size")].value_label)

    # Words as words: the State column, by its code, back to A-Z after Z-A.
    state, button = heading("State")
    button.click()
    assert facts_rows(page) == ["DE", "MA", "NV"]
    button.click()
    assert state.get_attribute("aria-sort") == "descending" and facts_rows(page) == ["NV", "MA", "DE"]
    shot(page, "facts-sorted.png")
    assert_no_csp_violations(csp, page)
    context.close()


@pytest.mark.real
def test_facts_filter_keeps_matching_states_and_reports_bad_words(browser, real_app, real_assistant):
    from playwright.sync_api import expect

    by = {(f.state, f.fact): f for f in real_assistant.facts()}
    below_20 = [s for s in ("DE", "MA", "NV") if by[(s, "n_size")].value < 20]
    assert below_20 == ["DE", "NV"]  # Massachusetts's is 20: the filter has something to drop
    context, page, csp = open_facts(browser, real_app)
    rows = page.locator(f"{FACTS_TABLE} tbody tr")
    expect(rows).to_have_count(3)
    show_facts(page, "n-size below 20")
    expect(rows).to_have_count(2)
    assert facts_rows(page) == below_20
    assert page.locator("#essa-facts .essa-facts > p").first.inner_text().startswith("2 state(s)")
    csv = page.get_by_role("link", name="Download CSV")
    assert "filter=n-size%20below%2020" in csv.get_attribute("href")

    # Two conditions: n-size below 20 and the rating is stars: Nevada alone.
    show_facts(page, "n-size below 20 and rating is stars")
    expect(rows).to_have_count(1)
    assert facts_rows(page) == ["NV"]

    # Words it cannot read: one line saying so, no table, no traceback.
    show_facts(page, "banana split")
    error = page.locator("#essa-facts .essa-error")
    error.wait_for(timeout=ANSWER_TIMEOUT_MS)
    assert error.count() == 1
    text = error.inner_text().strip()
    assert text.startswith("cannot read the filter") and "\n" not in text
    assert page.locator(FACTS_TABLE).count() == 0
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and "File \"" not in body
    shot(page, "facts-filter-error.png")

    # A filter no state meets says so; an empty one shows every state again.
    show_facts(page, "n-size below 5")
    expect(page.locator("#essa-facts")).to_contain_text("No state meets “n-size below 5”.")
    show_facts(page, "")
    expect(rows).to_have_count(3)
    assert_no_csp_violations(csp, page)
    context.close()


@pytest.mark.real
def test_facts_download_links_serve_the_table(browser, real_app, real_assistant):
    import csv as csvlib
    import io

    from playwright.sync_api import expect

    facts = real_assistant.facts()
    context, page, csp = open_facts(browser, real_app)
    link = page.get_by_role("link", name="Download CSV")
    assert link.get_attribute("href") == "facts.csv"  # relative: works under a path prefix too
    response = page.request.get(link.evaluate("a => a.href"))
    assert response.status == 200 and response.headers["content-type"].startswith("text/csv")
    assert 'filename="essa-facts.csv"' in response.headers["content-disposition"]
    text = response.text()
    assert text.splitlines()[0].startswith("state,fact,label,value")
    rows = list(csvlib.DictReader(io.StringIO(text)))
    assert len(rows) == len(facts)
    de = next(r for r in rows if r["state"] == "DE" and r["fact"] == "n_size")
    assert de["value"] == "15"

    md = page.get_by_role("link", name="Download Markdown")
    response = page.request.get(md.evaluate("a => a.href"))
    assert response.status == 200 and response.headers["content-type"].startswith("text/markdown")
    assert "The proposed n-size is n=15." in response.text()

    # The links carry the tab's filter: the file holds the states the table shows.
    show_facts(page, "n-size below 20")
    expect(page.locator(f"{FACTS_TABLE} tbody tr")).to_have_count(2)
    response = page.request.get(page.get_by_role("link", name="Download CSV").evaluate("a => a.href"))
    assert response.status == 200
    kept = {r["state"] for r in csvlib.DictReader(io.StringIO(response.text()))}
    assert kept == {"DE", "NV"}
    assert_no_csp_violations(csp, page)
    context.close()


@pytest.mark.real
def test_facts_sort_compares_decimal_values_as_numbers(browser, real_app):
    context, page, _ = open_facts(browser, real_app)
    column = facts_column(page, "Achievement weight")
    # The sort keys _fact_cell writes for 9.5%, 10% and 25% (floats: str(10.0) == "10.0").
    page.evaluate("""([table, column]) => {
        const keys = ["25.0", "10.0", "9.5"];
        document.querySelectorAll(table + " tbody tr").forEach((r, i) => { r.cells[column].dataset.sort = keys[i]; });
    }""", [FACTS_TABLE, column])
    page.locator(f"{FACTS_TABLE} thead th").nth(column).locator("button.essa-sort").click()
    keys = page.locator(f"{FACTS_TABLE} tbody tr").evaluate_all(
        f"rows => rows.map(r => r.cells[{column}].dataset.sort)")
    context.close()
    assert keys == ["9.5", "10.0", "25.0"]


@pytest.mark.real
def test_facts_docx_quote_is_not_under_the_viewer_toolbar(browser, real_app):
    context, page, _ = open_facts(browser, real_app)
    column = facts_column(page, "Minimum n-size")
    page.locator(f"{FACTS_TABLE} tbody tr").nth(facts_rows(page).index("NV")).locator("th, td").nth(column) \
        .locator("a.essa-open").click()
    viewer = page.frame_locator("#essa-facts-viewer-frame")
    viewer.locator("p.cited mark#q").wait_for(timeout=ANSWER_TIMEOUT_MS)
    frame = page.frame(name="essa-facts-viewer-frame")
    gap = frame.evaluate("document.querySelector('mark#q').getBoundingClientRect().top"
                         " - document.querySelector('nav.bar').getBoundingClientRect().bottom")
    context.close()
    assert gap >= 0  # the quote's first line is below the toolbar, not behind it
