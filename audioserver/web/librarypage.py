"""What the library page shows beyond the JSON: where a page is in the
list, its Previous link, the page sizes and the formats to filter by."""

from aiohttp import web
from yarl import URL

from ..models import SORT_COLUMNS, AudioRecord, ListQuery
from .listing import FORMAT_FAMILIES, query_params

PAGE_SIZES = (10, 25, 50, 100, 250)
# No name in the library is longer (names.py): anything longer is no delete of ours.
MAX_NAME_BYTES = 255
# The family a stored format is filtered by: ?format=wav finds all three.
FAMILY_OF = {member: family for family, members in FORMAT_FAMILIES.items()
             for member in members}


async def page_context(request: web.Request, db, viewer, query: ListQuery,
                       records: list[AudioRecord]) -> dict:
    """The page's own context: `start` (1-based) of its first row,
    `previous_url`, the page sizes and the format choices."""
    start = 1
    if records and query.after is not None:
        first = records[0]
        start += await db.rows_before(query, (_sort_value(first, query), first.name), viewer)
    return {"start": start, "previous_url": _previous_url(request, query, records, start),
            "deleted": await deleted_notice(request, db),
            "page_sizes": sorted({*PAGE_SIZES, query.limit}),
            "format_choices": format_choices(await db.formats(viewer),
                                             request.query.getall("format", []))}


async def deleted_notice(request: web.Request, db) -> str | None:
    """The name in ?deleted=, which a delete from our own pages redirects
    to, when the browser says this navigation came from our own origin and
    the name is indeed not in the library. A link from another site, or a
    URL typed in, shows nothing: nobody can make this page announce a text
    of their choosing. (The name is escaped like every other.)"""
    name = request.query.get("deleted")
    if not name or request.headers.get("Sec-Fetch-Site") != "same-origin":
        return None
    if len(name.encode()) > MAX_NAME_BYTES or await db.exists(name):
        return None
    return name


def format_choices(present: list[str], chosen: list[str]) -> list[tuple[str, str, tuple]]:
    """(value, label, members) for each format family present, then any
    chosen in the URL that is not: it stays offered, to be unticked."""
    families = []
    for stored in present:
        family = FAMILY_OF.get(stored, stored)
        if family not in families:
            families.append(family)
    values = [family.lower() for family in families]
    values += [value.lower() for value in chosen
               if value.lower() not in values and value.lower() not in ("json", "html")]
    return [(value, value.upper(), tuple(m for m in FORMAT_FAMILIES.get(value.upper(), ())
                                         if m != value.upper()))
            for value in values]


def _previous_url(request: web.Request, query: ListQuery, records: list[AudioRecord],
                  start: int) -> URL | None:
    """The rows before this page, when there are any."""
    if not records or start == 1:
        return None
    first = records[0]
    previous = query.previous_page(_sort_value(first, query), first.name)
    return request.app.router["list"].url_for().with_query(query_params(previous))


def _sort_value(record: AudioRecord, query: ListQuery):
    return getattr(record, SORT_COLUMNS[query.sort])


def next_exists(query: ListQuery, more: bool) -> bool:
    """Whether rows follow this page: a Previous page came from some."""
    return query.after is not None if query.backward else more

