"""The staff navigation bar: every staff page in one list, each shown to the roles the role matrix lets in."""

from __future__ import annotations

from dataclasses import dataclass

from api.deps import Principal
from web.access import RULES, role_of
from web.templating import templates


@dataclass(frozen=True)
class StaffPage:
    """A page of the bar: its label, address, and the paths under it that count as being on it."""

    label: str
    href: str
    also: tuple[str, ...] = ()


# In the order of the bar. A page shows once the app serves it with a rule in RULES (pages that later work
# adds need no change here beyond their line), and only to the roles that rule lets open it.
STAFF_PAGES = (
    StaffPage("Queue", "/queue", also=("/concerns",)),
    StaffPage("Customers", "/customers"),
    StaffPage("Inbound mail", "/customers/mail"),
    StaffPage("Knowledge base", "/kb/articles", also=("/kb",)),
    StaffPage("SOPs", "/sops"),
    StaffPage("Reports", "/reports"),
    StaffPage("Ideas", "/ideas"),
    StaffPage("Audit", "/audit"),
    StaffPage("Ops", "/ops"),
    StaffPage("Admin", "/admin"),
)


@dataclass(frozen=True)
class NavLink:
    label: str
    href: str
    current: bool


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def staff_links(principal: Principal | None, path: str = "") -> list[NavLink]:
    """The bar's links for this caller (none for customers and visitors), the page at `path` marked current."""
    if principal is None or principal.kind != "user":
        return []
    role = role_of(principal)
    pages = [p for p in STAFF_PAGES if role in RULES.get(f"GET {p.href}", ())]
    # The longest matching prefix wins, so /customers/mail is Inbound mail and not Customers.
    best, length = None, -1
    for page in pages:
        for prefix in (page.href, *page.also):
            if _under(path, prefix) and len(prefix) > length:
                best, length = page, len(prefix)
    return [NavLink(p.label, p.href, p is best) for p in pages]


templates.env.globals["staff_links"] = staff_links
