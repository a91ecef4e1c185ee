"""/web: a one-time sign-in link to the web gallery; /web logout signs every browser out."""

from __future__ import annotations

import logging

from telegram import LinkPreviewOptions, Update

from db import web_access
from handlers.context import Context

log = logging.getLogger(__name__)
USAGE = "Usage: /web for a sign-in link to the web gallery, /web logout to sign every browser out."
IN_GROUP = (
    "Send /web to me in a private chat: a sign-in link posted here would let everyone in this group in."
)


async def web_command(update: Update, context: Context) -> None:
    """Answer with a sign-in link valid 10 minutes (private chats only), or end every session."""
    words = [word.lower() for word in context.args or []]
    if words == ["logout"]:
        await web_access.end_all_sessions()
        log.info("web gallery: every session ended from chat")
        await update.effective_message.reply_text(
            "Signed out: every browser needs a new /web link to open the gallery."
        )
        return
    if words:
        await update.effective_message.reply_text(USAGE)
        return
    if update.effective_chat.type != "private":
        await update.effective_message.reply_text(IN_GROUP)
        return
    web = context.bot_data.extras.get("web")
    if web is None or not web.get("url"):
        off = web.get("why_off") if web else None
        await update.effective_message.reply_text(off or "The web gallery is off (WEB_PORT=0).")
        return
    token = await web_access.new_link_token()
    log.info("web gallery: sign-in link sent to chat %s", update.effective_chat.id)  # never the token
    await update.effective_message.reply_text(
        f"Open this link within 10 minutes to sign in to the web gallery (it works once):\n"
        f"{web['url']}/login/{token}",
        # A link preview would fetch, and so spend, the link before the owner opens it.
        link_preview_options=LinkPreviewOptions(is_disabled=True),
    )
