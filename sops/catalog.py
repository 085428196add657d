"""The e-level actions and message templates SOPs may name, until their registries own these lists."""

KNOWN_ACTIONS: frozenset[str] = frozenset({"classify", "kb_answer", "password_reset", "order_status"})
KNOWN_TEMPLATES: frozenset[str] = frozenset(
    {"acknowledge", "kb_answer", "password_reset", "ask_details", "resolution", "survey", "complaint_received"}
)
