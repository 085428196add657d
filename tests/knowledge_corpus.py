"""A fixed knowledge base for search and e-level tests: ten articles over the sample concerns' topics."""

from __future__ import annotations

from registry.db import Sessions
from registry.knowledge import create_article, publish_article

CORPUS = [
    ("Reset a forgotten password", "account-access", ["password", "login"],
     "If you forgot your password, open the sign-in page and choose **Forgot password**. "
     "We e-mail you a reset link that is valid for one hour.\n\n"
     "- Check your spam folder if the e-mail does not arrive.\n- The link works once."),
    ("Unlock a locked account", "account-access", ["locked", "login"],
     "After five failed sign-in attempts your account is locked for 30 minutes. "
     "Wait, then sign in again, or reset your password to unlock it at once."),
    ("Set up two-factor authentication on a new phone", "account-access", ["2fa", "authenticator"],
     "Moved to a new phone? Use one of your backup codes to sign in, then scan the new QR code "
     "with your authenticator app under Settings > Security."),
    ("Request a refund", "billing", ["refund"],
     "Refunds go back to the card or account you paid with within 5 working days after we approve them. "
     "You see the refund on your statement as a credit."),
    ("Download your invoices", "billing", ["invoice"],
     "All invoices are in the portal under Billing > Invoices. You can download each invoice as PDF "
     "or all invoices of a year as one ZIP file for your accounting."),
    ("Change your payment method", "billing", ["payment", "direct debit"],
     "Go to Billing > Payment method to switch between credit card and direct debit. "
     "The change applies from the next invoice."),
    ("Track your order", "orders", ["tracking", "delivery"],
     "Every shipped order has a tracking number in the shipping confirmation e-mail. "
     "Open the tracking link to see where your parcel is and when the delivery is expected."),
    ("Return an item", "orders", ["return"],
     "You can return items within 30 days. Print the return label from your order page, "
     "pack the item and drop the parcel at any pick-up point."),
    ("Fix sync problems between desktop and phone", "technical", ["sync"],
     "If your data does not sync, sign out of the app on both devices, update to the latest version "
     "and sign in again. Sync needs a network connection on both devices."),
    ("Opening hours and holidays", "general", ["hours"],
     "Our shops are open Monday to Saturday from 9:00 to 18:00. On public holidays the opening hours "
     "are shown on each shop's page."),
]


def load_corpus(sessions: Sessions, *, publish: bool = True) -> dict[str, int]:
    """Write the corpus (published unless told otherwise) and return article ids by title."""
    ids: dict[str, int] = {}
    with sessions.begin() as session:
        for title, category, tags, body in CORPUS:
            article = create_article(session=session, title=title, body=body, owner_email="kb@desk.example",
                                     category=category, tags=tags)
            if publish:
                publish_article(session=session, article_id=article.id)
            ids[title] = article.id
    return ids
