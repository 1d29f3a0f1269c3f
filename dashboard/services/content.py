"""Editing Pages: admin-written public pages at ``/p/<slug>``, with shortcodes.

- ``save_page`` / ``delete_page`` / ``list_pages`` / ``get_published``: the pages themselves; every
  change is audited, and only a published page is ever shown to the public.
- ``parse_shortcodes``: splits a body into ``Html`` text and ``Shortcode`` segments
  (``[real-time-map]``, ``[real-time-legend]``, ``[parking_logix only="..." show="..." filter="..."
  name="..."]``). An unknown shortcode or a bad parameter becomes a ``Notice`` with a harmless
  message (never the raw input), so a typo shows up on the page instead of breaking it.
- ``render_html``: a body chunk as sanitised HTML (nh3: no script, no ``on*`` attributes, no
  ``javascript:`` URLs). Markdown bodies are rendered with Python-Markdown first, so HTML written
  inside them gets the same sanitising.

No Flask or Dash here: pages call these inside a ``session_scope``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import markdown
import nh3
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.services import audit, occupancy
from dashboard.services.errors import NotFound, ValidationFailed
from dashboard.services.occupancy import Figure, LiveStore, Staleness
from models import BodyFormat, ContentPage, LotGroup, OccupancySource

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,119}$")
MAX_TITLE = 200
ENTITY = "content_page"

SHORTCODES = frozenset({"real-time-map", "real-time-legend", "parking_logix"})
# A shortcode: ``[name`` then anything up to ``]``; not a Markdown link (``[text](url)``).
_SHORTCODE_RE = re.compile(r"\[([A-Za-z][\w-]*)((?:\s[^\[\]]*)?)\](?!\()")
_PARAM_RE = re.compile(r'\s*([a-z_]+)="([^"]*)"\s*')
# What a Parking Logix parameter value may contain: names, commas, spaces and simple punctuation.
_VALUE_RE = re.compile(r"^[\w .,'&()/-]*$")
MAX_VALUE = 200
LOGIX_PARAMS = frozenset({"only", "show", "filter", "name"})
LOGIX_SHOW = frozenset({"all", "open", "closed"})


@dataclass(frozen=True)
class PageView:
    id: int
    slug: str
    title: str
    body: str
    body_format: str
    is_published: bool
    updated_by_id: int | None
    updated_at: datetime | None


@dataclass(frozen=True)
class Html:
    """Body text between shortcodes; rendered with ``render_html`` before it is shown."""

    text: str


@dataclass(frozen=True)
class Shortcode:
    name: str
    params: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Notice:
    """A shortcode that could not be used; ``message`` never repeats the raw input."""

    message: str


Segment = Html | Shortcode | Notice


@dataclass(frozen=True)
class LogixGroup:
    id: int
    name: str
    is_closed: bool


# --- pages -------------------------------------------------------------------------------------


def _view(row: ContentPage) -> PageView:
    return PageView(
        id=row.id,
        slug=row.slug,
        title=row.title,
        body=row.body,
        body_format=str(row.body_format),
        is_published=bool(row.is_published),
        updated_by_id=row.updated_by_id,
        updated_at=row.updated_at,
    )


def list_pages(session: Session) -> list[PageView]:
    return [_view(row) for row in session.scalars(select(ContentPage).order_by(ContentPage.slug))]


def get_page(session: Session, page_id: int) -> PageView:
    row = session.get(ContentPage, page_id)
    if row is None:
        raise NotFound("That page no longer exists.")
    return _view(row)


def get_published(session: Session, slug: str) -> PageView | None:
    """The page the public may see at ``/p/<slug>``: None if unknown or not published."""
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        return None
    row = session.scalar(select(ContentPage).where(ContentPage.slug == slug))
    if row is None or not row.is_published:
        return None
    return _view(row)


def save_page(
    session: Session,
    *,
    slug: str,
    title: str,
    body: str,
    body_format: str,
    is_published: bool,
    actor_id: int | None,
    page_id: int | None = None,
) -> PageView:
    """Create (``page_id`` None) or update a page. Slugs are unique; the change is audited."""
    slug = (slug or "").strip()
    title = (title or "").strip()
    body = body or ""
    errors: dict[str, str] = {}
    if not SLUG_RE.match(slug):
        errors["slug"] = "lower-case letters, digits and hyphens, starting with a letter or digit"
    if not title:
        errors["title"] = "a title is required"
    elif len(title) > MAX_TITLE:
        errors["title"] = f"at most {MAX_TITLE} characters"
    try:
        fmt = BodyFormat(body_format)
    except ValueError:
        errors["body_format"] = "markdown or html"
        fmt = BodyFormat.MARKDOWN
    row = None
    if page_id is not None:
        row = session.get(ContentPage, page_id)
        if row is None:
            raise NotFound("That page no longer exists.")
    if "slug" not in errors:
        clash = session.scalar(select(ContentPage.id).where(ContentPage.slug == slug))
        if clash is not None and (row is None or clash != row.id):
            errors["slug"] = "another page already uses this address"
    if errors:
        raise ValidationFailed(errors)
    values = {
        "slug": slug,
        "title": title,
        "body": body,
        "body_format": fmt,
        "is_published": bool(is_published),
    }
    if row is None:
        row = ContentPage(**values, updated_by_id=actor_id)
        session.add(row)
        session.flush()
        action, changed = "content_page.create", sorted(values)
    else:
        changed = sorted(name for name, value in values.items() if getattr(row, name) != value)
        for name, value in values.items():
            setattr(row, name, value)
        row.updated_by_id = actor_id
        action = "content_page.update"
    if changed or action.endswith("create"):
        audit.record(
            session,
            actor_id=actor_id,
            action=action,
            entity_type=ENTITY,
            entity_id=str(row.id),
            changes={"slug": slug, "fields": changed, "is_published": bool(is_published)},
        )
    session.flush()
    return _view(row)


def delete_page(session: Session, page_id: int, *, actor_id: int | None) -> None:
    row = session.get(ContentPage, page_id)
    if row is None:
        raise NotFound("That page no longer exists.")
    audit.record(
        session,
        actor_id=actor_id,
        action="content_page.delete",
        entity_type=ENTITY,
        entity_id=str(row.id),
        changes={"slug": row.slug},
    )
    session.delete(row)
    session.flush()


# --- shortcodes --------------------------------------------------------------------------------


def _params(raw: str) -> dict[str, str] | None:
    """``key="value"`` pairs; None if anything else is in there (unquoted, stray text)."""
    params: dict[str, str] = {}
    position = 0
    while position < len(raw):
        match = _PARAM_RE.match(raw, position)
        if match is None or match.end() == position:
            return None if raw[position:].strip() else params
        key, value = match.groups()
        if key in params:
            return None
        params[key] = value
        position = match.end()
    return params


def _logix_params(raw: dict[str, str]) -> dict[str, object] | str:
    """The validated ``[parking_logix]`` parameters, or a harmless message saying what is wrong.

    - ``only``: comma-separated lot group (or Parking Logix) names to list, nothing else;
    - ``show``: ``all`` (default), ``open`` or ``closed`` groups;
    - ``filter``: a case-insensitive part of the group name;
    - ``name``: a heading above the list.
    """
    unknown = set(raw) - LOGIX_PARAMS
    if unknown:
        return "Unknown parameter in a parking_logix shortcode (allowed: only, show, filter, name)."
    for value in raw.values():
        if len(value) > MAX_VALUE or not _VALUE_RE.match(value):
            return "A parking_logix parameter has characters or a length that is not allowed."
    show = raw.get("show", "all").strip().lower() or "all"
    if show not in LOGIX_SHOW:
        return 'The parking_logix "show" parameter must be all, open or closed.'
    only = [name.strip() for name in raw.get("only", "").split(",") if name.strip()]
    return {
        "only": only,
        "show": show,
        "filter": raw.get("filter", "").strip(),
        "name": raw.get("name", "").strip(),
    }


def _shortcode(name: str, raw_params: str) -> Segment:
    if name not in SHORTCODES:
        return Notice("Unknown shortcode: it is not shown.")
    params = _params(raw_params)
    if params is None:
        return Notice('A shortcode has badly written parameters (use key="value").')
    if name == "parking_logix":
        checked = _logix_params(params)
        return Notice(checked) if isinstance(checked, str) else Shortcode(name, checked)
    if params:
        return Notice(f"The {name} shortcode takes no parameters.")
    return Shortcode(name, {})


def parse_shortcodes(text: str | None) -> list[Segment]:
    """The body as ``Html`` / ``Shortcode`` / ``Notice`` segments, in order (empty text dropped).
    The live map is one set of components with fixed ids, so a second ``[real-time-map]`` is a
    notice rather than a map that would never update."""
    segments: list[Segment] = []
    text = text or ""
    position = 0
    for match in _SHORTCODE_RE.finditer(text):
        if match.start() > position:
            segments.append(Html(text[position : match.start()]))
        segment = _shortcode(match.group(1), match.group(2))
        if segment == Shortcode("real-time-map") and segment in segments:
            segment = Notice("The real-time map is already on this page: it is shown once.")
        segments.append(segment)
        position = match.end()
    if position < len(text):
        segments.append(Html(text[position:]))
    return [s for s in segments if not (isinstance(s, Html) and not s.text.strip())]


# --- rendering ---------------------------------------------------------------------------------


MARKDOWN_EXTENSIONS = ["extra", "sane_lists"]  # tables, fenced code, footnotes, attribute lists


def render_html(body: str | None, body_format: str) -> str:
    """A body chunk as HTML that is safe to put in the page: Markdown is rendered first (HTML
    written inside Markdown included), and whatever the format, nh3 has the last word. The page
    turns it into components (``dashboard.components.rich_text``), never into raw HTML."""
    body = body or ""
    markup = (
        body if body_format == BodyFormat.HTML else markdown.markdown(body, extensions=MARKDOWN_EXTENSIONS)
    )
    clean = nh3.clean(markup, url_schemes={"http", "https", "mailto", "tel"})
    return f'<div class="content-html">{clean}</div>'


# --- the parking_logix list --------------------------------------------------------------------


def parking_logix_groups(session: Session, params: dict[str, object]) -> list[LogixGroup]:
    """Lot groups that have a Parking Logix API key (by design, the only ones listed), filtered."""
    rows = session.execute(
        select(LotGroup.id, LotGroup.name, LotGroup.parking_logix_name, LotGroup.is_closed)
        .where(LotGroup.parking_logix_api_key.is_not(None), LotGroup.parking_logix_api_key != "")
        .order_by(LotGroup.name)
    ).all()
    listed = params.get("only") or []
    only = (
        {str(n).casefold() for n in listed} if isinstance(listed, list | tuple | set | frozenset) else set()
    )
    needle = str(params.get("filter", "") or "").casefold()
    show = params.get("show", "all")
    groups = []
    for group_id, name, logix_name, closed in rows:
        # Forgiving, unlike the sync's exact match: a Parking Logix name may end in a space.
        names = {name.casefold(), (logix_name or "").strip().casefold()}
        if only and not (names & only):
            continue
        if needle and needle not in name.casefold():
            continue
        if (show == "open" and closed) or (show == "closed" and not closed):
            continue
        groups.append(LogixGroup(id=group_id, name=name, is_closed=bool(closed)))
    return groups


def logix_figures(
    session: Session, store: LiveStore, staleness: Staleness, now: datetime, group_ids: list[int]
) -> dict[int, Figure]:
    """Each listed group's Parking Logix figure where one is live (a group without one is listed
    with "no live data", not as a bare link that looks like a figure failed to load)."""
    states = occupancy.group_states(session, store, staleness, now, group_ids)
    return {
        state.group_id: figure
        for state in states
        for figure in state.sources
        if figure.source == OccupancySource.PARKING_LOGIX
    }
