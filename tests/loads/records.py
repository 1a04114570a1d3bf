"""The contacts the sync tests write: one module, records keyed on Email."""

from __future__ import annotations

from typing import Any

MODULE = "contacts"


def contact(n: int, **changes: Any) -> dict[str, Any]:
    return {"Email": f"c{n}@example.com", "Nombre": f"Contacto {n}", "Ciudad": "Medellín", **changes}
