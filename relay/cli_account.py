"""``rmon-relay account create``: a subscriber made by the operator, validated like sign-up."""

from __future__ import annotations

from relay.auth import Auth
from relay.settings import RelaySettings
from relay.store import open_store


async def create_account(settings: RelaySettings, email: str, name: str, password: str) -> str:
    """Create a subscriber and return its id; raises ApiError like the sign-up API.

    The operator accepts the licence on the subscriber's behalf.
    """
    store = await open_store(settings.db_url)
    try:
        account = await Auth(settings, store).sign_up(email, name, password, licence_accepted=True)
    finally:
        await store.close()
    return account.id
