"""Delivery of new content into chats: sending, pacing, captions, /notify and /latest."""
